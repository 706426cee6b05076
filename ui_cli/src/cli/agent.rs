//! The arguments of the AI-agent commands: `ui agent ...`, `ui approvals ...`,
//! and the automation settings of `ui policy ...`.

use clap::{Args, Subcommand, ValueEnum};

/// `ui agent ...`.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create or revoke agent tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `ui agent token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Push your automation policy, then sign a token letting an agent use
    /// some tools as you until it expires (printed on stdout).
    Create(TokenCreateArgs),
    /// Make the daemon refuse a token from now on.
    Revoke {
        /// The token's id (32 hex characters, printed by `ui agent token create`).
        id: String,
    },
}

/// `ui agent token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The agent's name, recorded with each of its calls (1 to 64 characters
    /// of A-Z a-z 0-9 . _ -).
    #[arg(long)]
    pub name: String,
    /// The MCP tools it may use, comma-separated (e.g.
    /// `list_workloads,scale_workload`), or `*` for every tool.
    #[arg(long, value_name = "TOOLS")]
    pub tools: String,
    /// How long it stays valid: a number and a unit, `s`, `m`, `h` or `d`
    /// (at most 90d).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub expires: String,
}

/// `ui approvals ...`.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List the agent calls waiting for your approval.
    List {
        /// Every approval, decided ones included.
        #[arg(long)]
        all: bool,
    },
    /// Run a waiting agent call, as you.
    Approve {
        /// The approval's id.
        id: String,
    },
    /// Refuse a waiting agent call.
    Deny {
        /// The approval's id.
        id: String,
    },
}

/// What `ui policy automation TOOL ...` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutomationSetting {
    /// The agent may call the tool on its own.
    Autonomous,
    /// Each call waits for your approval.
    RequireApproval,
    /// The agent may never call the tool.
    Forbidden,
    /// Remove the tool from every list (it then requires approval).
    Unset,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command, PolicyCommand};

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ui").chain(args.iter().copied()))
    }

    #[test]
    fn token_create_defaults_to_a_day() {
        let cli =
            parse(&["agent", "token", "create", "--name", "bot", "--tools", "*"]).expect("parses");
        let Command::Agent(AgentCommand::Token(TokenCommand::Create(a))) = cli.command else {
            panic!("not token create")
        };
        assert_eq!((a.name.as_str(), a.tools.as_str()), ("bot", "*"));
        assert_eq!(a.expires, "24h");
        assert!(parse(&["agent", "token", "create", "--name", "bot"]).is_err());
        assert!(matches!(
            parse(&["agent", "token", "revoke", "ab"])
                .expect("parses")
                .command,
            Command::Agent(AgentCommand::Token(TokenCommand::Revoke { .. }))
        ));
    }

    #[test]
    fn approvals_subcommands() {
        assert!(matches!(
            parse(&["approvals", "list"]).expect("parses").command,
            Command::Approvals(ApprovalsCommand::List { all: false })
        ));
        assert!(matches!(
            parse(&["approvals", "list", "--all"])
                .expect("parses")
                .command,
            Command::Approvals(ApprovalsCommand::List { all: true })
        ));
        assert!(matches!(
            parse(&["approvals", "approve", "x"])
                .expect("parses")
                .command,
            Command::Approvals(ApprovalsCommand::Approve { .. })
        ));
        assert!(matches!(
            parse(&["approvals", "deny", "x"]).expect("parses").command,
            Command::Approvals(ApprovalsCommand::Deny { .. })
        ));
        assert!(parse(&["approvals", "approve"]).is_err());
    }

    #[test]
    fn policy_automation_ai_and_push() {
        let cli =
            parse(&["policy", "automation", "drain_node", "require-approval"]).expect("parses");
        let Command::Policy(PolicyCommand::Automation { tool, setting }) = cli.command else {
            panic!("not policy automation")
        };
        assert_eq!(tool, "drain_node");
        assert_eq!(setting, AutomationSetting::RequireApproval);
        assert!(parse(&["policy", "automation", "drain_node", "maybe"]).is_err());
        assert!(matches!(
            parse(&["policy", "ai", "on"]).expect("parses").command,
            Command::Policy(PolicyCommand::Ai { state: Switch::On })
        ));
        assert!(parse(&["policy", "ai", "yes"]).is_err());
        assert!(matches!(
            parse(&["policy", "push"]).expect("parses").command,
            Command::Policy(PolicyCommand::Push)
        ));
    }

    #[test]
    fn mcp_always_names_an_agent() {
        let Command::Mcp(m) = parse(&["mcp"]).expect("parses").command else {
            panic!("not mcp")
        };
        assert_eq!(m.agent, "mcp-stdio");
    }
}
