//! The command line, as clap derive structs. Nothing here does any work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

mod agent;
mod cluster;
mod credits;
mod dashboard;
mod leave;
mod secret;
mod volume;

pub use agent::{
    AgentCommand, ApprovalsCommand, AutomationSetting, Switch, TokenCommand, TokenCreateArgs,
};
pub use cluster::{ClusterCommand, NetworkCommand};
pub use credits::{AttestArgs, CreditsCommand, OperatorCommand};
pub use dashboard::DashboardArgs;
pub use leave::{ExportArgs, ForgetArgs, ImportArgs};
pub use secret::{SecretCommand, SecretSetArgs};
pub use volume::VolumeCommand;

/// Drive a Univrs orchestrator cluster.
#[derive(Debug, Parser)]
#[command(name = "ui", version, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Daemon to talk to [default: env UNIVRS_SERVER, else `server` in
    /// config.toml, else http://127.0.0.1:9090]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Configuration directory (identity, policy, config.toml) [default: env
    /// UNIVRS_CONFIG_DIR, else $XDG_CONFIG_HOME/univrs]
    #[arg(long, global = true, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// How to print results: tables for people, JSON for programs.
    #[arg(short, long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns and short sentences.
    Table,
    /// The server's JSON (or a JSON object for local commands) on stdout.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create your identity and the default configuration and policy files.
    Init(InitArgs),
    /// Show, export or import your identity.
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Show the configuration or where it lives.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show or change your trust, limits and automation policy; push the
    /// automation policy to the daemon.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Create or update a workload from a manifest and wait until it runs.
    Deploy(DeployArgs),
    /// Change how many replicas of a workload run.
    Scale(ScaleArgs),
    /// List workloads, or show one workload and its instances.
    Status(StatusArgs),
    /// Print the logs of a workload's instances.
    Logs(LogsArgs),
    /// Delete a workload and stop its instances.
    Delete(DeleteArgs),
    /// List your volumes, or wipe one.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Inspect nodes, or cordon, uncordon and drain them.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Show the cluster as the node asked sees it: gossip, peers, reachability.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Join tokens and members of the cluster (admin keys).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Your mutual-credit account: balance, history, transfers.
    #[command(subcommand)]
    Credits(CreditsCommand),
    /// Vouch for another operator with an attestation signed by your key.
    Attest(AttestArgs),
    /// Prove, with your key, that you operate a node.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Serve MCP on stdin/stdout for an AI agent, acting as you (every tool
    /// call is a request signed with your identity, naming the agent); pushes
    /// your automation policy first.
    Mcp(McpArgs),
    /// Tokens for AI agents that call the daemon without your key.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// List, approve or deny the agent calls waiting for your approval.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Read the daemon's audit log of mutating calls, or verify its hash chain.
    Audit(AuditArgs),
    /// Your secrets: sealed on this machine to the nodes you trust; the
    /// cluster keeps only ciphertext.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Write one archive of everything you have on the cluster: manifests,
    /// policies, agent tokens (ids only), approvals, credit history and your
    /// audit entries.
    Export(ExportArgs),
    /// Re-apply an archive of `ui export` to this cluster: your workloads and
    /// policies.
    Import(ImportArgs),
    /// Remove every workload, approval, policy and agent token you have on
    /// the cluster (the audit log keeps its entries).
    Forget(ForgetArgs),
    /// Serve the web dashboard on 127.0.0.1, signing its calls with your
    /// identity; prints (and opens) the one URL that opens it.
    Dashboard(DashboardArgs),
    /// Check the daemon's health (exits 1 when degraded).
    Health,
    /// Print the client's version.
    Version,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// `ui init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing identity (the old key is lost unless exported).
    #[arg(long)]
    pub force: bool,
}

/// `ui identity ...`.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Print your public key.
    Show,
    /// Print your identity, still encrypted under its passphrase, as armored text.
    Export,
    /// Import an identity exported with `ui identity export`.
    Import {
        /// File holding the armored identity (`-` for standard input).
        file: PathBuf,
        /// Replace an existing identity.
        #[arg(long)]
        force: bool,
    },
}

/// `ui config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration in effect.
    Show,
    /// Print the configuration directory.
    Path,
}

/// `ui policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the trust, limits and automation policies.
    Show,
    /// Trust an operator's key.
    Trust {
        /// The operator's public key.
        key: String,
    },
    /// Deny an operator's key.
    Deny {
        /// The operator's public key.
        key: String,
    },
    /// Set resource and credit limits (only the ones given change); `ui
    /// deploy`, `ui scale` and `ui credits send` refuse to go past them.
    Limits(LimitsArgs),
    /// Set what AI agents may do with one MCP tool (policy/automation.toml).
    Automation {
        /// The MCP tool, e.g. `delete_workload`.
        tool: String,
        /// What agents may do with it.
        #[arg(value_enum)]
        setting: AutomationSetting,
    },
    /// Allow (`on`) or refuse (`off`) AI agents acting for you (`[ai] enabled`
    /// of config.toml).
    Ai {
        /// `on` or `off`.
        #[arg(value_enum)]
        state: Switch,
    },
    /// Send your automation policy, `[ai] enabled` and your trust policy to
    /// the daemon, which enforces them on every agent call and on every
    /// workload you own, whichever client created it.
    Push,
}

/// `ui policy limits`.
#[derive(Debug, Args)]
pub struct LimitsArgs {
    /// Most CPU all your workloads may request (e.g. `4`, `2500m`).
    #[arg(long, value_name = "QUANTITY")]
    pub max_cpu: Option<String>,
    /// Most memory all your workloads may request (e.g. `8Gi`).
    #[arg(long, value_name = "QUANTITY")]
    pub max_memory: Option<String>,
    /// Most replicas of one workload.
    #[arg(long, value_name = "N")]
    pub max_replicas: Option<u32>,
    /// Most workloads.
    #[arg(long, value_name = "N")]
    pub max_workloads: Option<u32>,
    /// How far, in credit units, `ui credits send` may take your balance
    /// (less holds) below zero; `none` removes the limit.
    #[arg(long, value_name = "UNITS")]
    pub credit_limit: Option<String>,
}

/// `ui deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The manifest (YAML or JSON).
    pub manifest: PathBuf,
    /// Return once the server accepted the manifest.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for every replica to run.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
}

/// `ui scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Workload name (or id).
    pub name: String,
    /// Replicas wanted.
    pub replicas: u32,
}

/// `ui status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show this workload and its instances instead of the list.
    pub name: Option<String>,
}

/// `ui logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Workload name (or id).
    pub name: String,
    /// Keep streaming new lines until Ctrl-C or the server ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each container.
    #[arg(long, value_name = "N")]
    pub tail: Option<u32>,
}

/// `ui delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Workload name (or id).
    pub name: String,
}

/// `ui node ...`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List nodes, or show one (also `ui node list`).
    #[command(visible_alias = "list")]
    Status {
        /// Node id (hex).
        id: Option<String>,
        /// Order the list (not with a node id); `reputation` also shows each
        /// node's operator and reputation as you see it.
        #[arg(long, value_enum, value_name = "KEY", conflicts_with = "id")]
        sort: Option<NodeSort>,
    },
    /// Stop placing new instances on a node.
    Cordon {
        /// Node id (hex).
        id: String,
    },
    /// Allow new instances on a node again.
    Uncordon {
        /// Node id (hex).
        id: String,
    },
    /// Cordon a node and move its instances elsewhere.
    Drain {
        /// Node id (hex).
        id: String,
    },
    /// Remove a member from the cluster (admin): every node drops it, its
    /// requests and gossip are refused, and the gossip key is rotated to the
    /// others (same as `ui cluster remove`).
    Remove {
        /// Node id (hex).
        id: String,
    },
}

/// How `ui node status --sort` orders the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NodeSort {
    /// By composite reputation, highest first, as you see it: attestations
    /// count through the operators of your `policy/trust.toml`.
    Reputation,
}

/// `ui completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ui").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = parse(&["status", "-o", "json", "--server", "http://h:1"]).expect("parses");
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert_eq!(cli.global.server.as_deref(), Some("http://h:1"));
        let cli = parse(&["--config-dir", "/tmp/x", "health"]).expect("parses");
        assert_eq!(cli.global.config_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(cli.global.output, OutputFormat::Table);
    }

    #[test]
    fn deploy_defaults_and_flags() {
        let cli = parse(&["deploy", "m.yaml"]).expect("parses");
        let Command::Deploy(d) = cli.command else {
            panic!("not deploy")
        };
        assert_eq!(d.timeout, 120);
        assert!(!d.no_wait);
        let cli = parse(&["deploy", "m.yaml", "--no-wait", "--timeout", "5"]).expect("parses");
        let Command::Deploy(d) = cli.command else {
            panic!("not deploy")
        };
        assert_eq!((d.timeout, d.no_wait), (5, true));
    }

    #[test]
    fn scale_needs_a_number() {
        assert!(parse(&["scale", "hello", "5"]).is_ok());
        let err = parse(&["scale", "hello", "five"]).expect_err("rejects");
        assert_eq!(err.exit_code(), 2);
        assert!(parse(&["scale", "hello"]).is_err());
    }

    #[test]
    fn logs_flags() {
        let cli = parse(&["logs", "hello", "-f", "--tail", "10"]).expect("parses");
        let Command::Logs(l) = cli.command else {
            panic!("not logs")
        };
        assert!(l.follow);
        assert_eq!(l.tail, Some(10));
    }

    #[test]
    fn policy_limits_takes_only_what_is_given() {
        let cli =
            parse(&["policy", "limits", "--max-cpu", "2", "--max-replicas", "9"]).expect("parses");
        let Command::Policy(PolicyCommand::Limits(l)) = cli.command else {
            panic!("not limits")
        };
        assert_eq!(l.max_cpu.as_deref(), Some("2"));
        assert_eq!(l.max_memory, None);
        assert_eq!(l.max_replicas, Some(9));
    }

    #[test]
    fn node_and_completions() {
        assert!(matches!(
            parse(&["node", "status"]).expect("parses").command,
            Command::Node(NodeCommand::Status {
                id: None,
                sort: None
            })
        ));
        assert!(matches!(
            parse(&["node", "status", "--sort", "reputation"])
                .expect("parses")
                .command,
            Command::Node(NodeCommand::Status {
                id: None,
                sort: Some(NodeSort::Reputation)
            })
        ));
        assert!(matches!(
            parse(&["node", "list", "--sort", "reputation"])
                .expect("parses")
                .command,
            Command::Node(NodeCommand::Status {
                id: None,
                sort: Some(NodeSort::Reputation)
            })
        ));
        assert!(parse(&["node", "status", "--sort", "age"]).is_err());
        assert!(parse(&["node", "status", "ab", "--sort", "reputation"]).is_err());
        assert!(matches!(
            parse(&["node", "drain", "ab"]).expect("parses").command,
            Command::Node(NodeCommand::Drain { .. })
        ));
        assert!(parse(&["completions", "bash"]).is_ok());
        assert!(parse(&["completions", "tcsh"]).is_err());
    }

    #[test]
    fn network_subcommands() {
        let network = |word: &str| match parse(&["network", word]).map(|c| c.command) {
            Ok(Command::Network(cmd)) => Some(cmd),
            _ => None,
        };
        assert!(matches!(network("status"), Some(NetworkCommand::Status)));
        assert!(matches!(network("peers"), Some(NetworkCommand::Peers)));
        assert!(matches!(
            network("discover"),
            Some(NetworkCommand::Discover)
        ));
        assert!(network("gossip").is_none());
        assert!(parse(&["network"]).is_err());
        let cli = parse(&["network", "peers", "-o", "json"]).expect("parses");
        assert_eq!(cli.global.output, OutputFormat::Json);
    }

    #[test]
    fn bad_output_format_is_a_usage_error() {
        let err = parse(&["status", "-o", "xml"]).expect_err("rejects");
        assert_eq!(err.exit_code(), 2);
    }
}

/// `ui mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The agent's name, recorded with each of its calls in the audit log.
    #[arg(long, default_value = "mcp-stdio")]
    pub agent: String,
}

/// `ui audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries at or after this time (RFC 3339, e.g. 2026-11-29T10:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Only the calls of this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Check the whole hash chain instead (exits 1 if it is broken).
    #[arg(long)]
    pub verify: bool,
}
