//! One module per command group, and the [`Context`] they share.
//!
//! - [`init`]: `ui init`. [`identity`]: `ui identity ...`.
//! - [`config`]: `ui config ...`. [`policy`]: `ui policy ...`.
//! - [`deploy`]: `ui deploy`. [`workload`]: `ui scale`, `ui delete`.
//!   [`limits`]: `policy/limits.toml` enforced before deploy, scale and
//!   credits send.
//! - [`status`]: `ui status`. [`logs`]: `ui logs`. [`volume`]: `ui volume ...`.
//! - [`node`]: `ui node ...` (with `status --sort reputation`).
//!   [`network`]: `ui network ...`.
//! - [`credits`]: `ui credits ...`, amounts in exact milli-units.
//!   [`attest`]: `ui attest`, a signed vouch for another operator.
//!   [`operator`]: `ui operator prove`, the proof that you run a node.
//! - [`misc`]: `ui health`, `ui version`, `ui completions`.
//! - [`audit`]: `ui audit`. [`mcp`]: `ui mcp`.
//! - [`automation`]: `ui policy automation | ai | push`, the automation
//!   policy and its push to the daemon.
//! - [`agent`]: `ui agent token ...`. [`approvals`]: `ui approvals ...`.

pub mod agent;
pub mod approvals;
pub mod attest;
pub mod audit;
pub mod automation;
pub mod cluster;
pub mod config;
pub mod credits;
pub mod deploy;
pub mod identity;
pub mod init;
pub mod leave;
pub mod limits;
pub mod logs;
pub mod mcp;
pub mod misc;
pub mod network;
pub mod node;
pub mod operator;
pub mod policy;
pub mod secret;
pub mod status;
pub mod trust_push;
pub mod volume;
pub mod workload;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use user_config::paths::ConfigDir;

use crate::cli::{Cli, Command, GlobalArgs, OutputFormat};
use crate::client::ApiClient;

/// The server used when nothing else names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9090";

/// The environment variable naming the server.
pub const SERVER_ENV: &str = "UNIVRS_SERVER";

/// Picks the server URL: the `--server` flag, else `UNIVRS_SERVER`, else
/// `server` in config.toml, else [`DEFAULT_SERVER`]. Empty values count as unset.
pub fn resolve_server(flag: Option<&str>, env: Option<&str>, config: Option<&str>) -> String {
    [flag, env, config]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SERVER)
        .to_owned()
}

/// What every command may need: the global flags, resolved lazily.
#[derive(Debug)]
pub struct Context {
    global: GlobalArgs,
}

impl Context {
    /// A context for these global flags.
    pub fn new(global: GlobalArgs) -> Self {
        Self { global }
    }

    /// `table` or `json`.
    pub fn output(&self) -> OutputFormat {
        self.global.output
    }

    /// The configuration directory (flag, `UNIVRS_CONFIG_DIR`, XDG).
    pub fn config_dir(&self) -> anyhow::Result<ConfigDir> {
        ConfigDir::resolve(self.global.config_dir.as_deref())
            .context("finding the configuration directory")
    }

    /// The server URL (see [`resolve_server`]).
    pub fn server(&self) -> anyhow::Result<String> {
        let flag = self.global.server.as_deref();
        let env = std::env::var(SERVER_ENV).ok();
        let given = [flag, env.as_deref()]
            .into_iter()
            .flatten()
            .any(|s| !s.trim().is_empty());
        let from_config = if given {
            None
        } else {
            crate::profile::load_config(&self.config_dir()?)?.server
        };
        Ok(resolve_server(flag, env.as_deref(), from_config.as_deref()))
    }

    /// A client that signs with the user's identity (asks for its passphrase
    /// unless `UNIVRS_PASSPHRASE` is set), for the server's kept audience.
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        let key = self.signing_key()?;
        self.client_with_key(key)
    }

    /// The user's signing key (asks for its passphrase unless
    /// `UNIVRS_PASSPHRASE` is set), for commands that need it more than once.
    pub fn signing_key(&self) -> anyhow::Result<SigningKey> {
        crate::profile::signing_key(&self.config_dir()?)
    }

    /// A client that signs with `key`, for the audience `config.toml` keeps
    /// for the server (learned from its `GET /api/v1/info` and kept on first
    /// use; see [`kept_audience`]).
    pub fn client_with_key(&self, key: SigningKey) -> anyhow::Result<ApiClient> {
        let client = ApiClient::new(&self.server()?, Some(key))?;
        kept_audience(&self.config_dir()?, client)
    }

    /// A client that does not sign (for `/health`).
    pub fn unsigned_client(&self) -> anyhow::Result<ApiClient> {
        Ok(ApiClient::new(&self.server()?, None)?)
    }
}

/// `client` signing for the audience `config.toml` keeps for its server in
/// `[audiences]`; when there is none yet, the server's own (`GET
/// /api/v1/info`), which is then kept. A kept audience is never replaced
/// silently: a server that later answers for another cluster refuses the
/// requests (`audience_mismatch`), and `ui` says how to accept the change.
pub fn kept_audience(dir: &ConfigDir, client: ApiClient) -> anyhow::Result<ApiClient> {
    let mut config = crate::profile::load_config(dir)?;
    let server = client.server().to_owned();
    if let Some(audience) = config.audiences.get(&server) {
        return Ok(client.with_audience(audience.clone()));
    }
    let audience = match client.audience() {
        Ok(audience) => audience,
        // An unreachable server says so as for any other call.
        Err(e @ crate::client::ClientError::Transport { .. }) => return Err(e.into()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "learning the audience to sign for from {server}{} (a daemon older than \
                 signing scheme v2 does not answer it)",
                orchestrator_api::routes::INFO
            )))
        }
    };
    config.audiences.insert(server.clone(), audience);
    if let Err(e) = config.save(dir) {
        eprintln!(
            "warning: could not keep the audience of {server} in {}: {e}",
            dir.config_file().display()
        );
    }
    Ok(client)
}

/// What to do about an `audience_mismatch` refusal, for the error message.
pub fn audience_hint(err: &anyhow::Error) -> Option<String> {
    let mismatch = err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<crate::client::ClientError>(),
            Some(crate::client::ClientError::Api { code: Some(code), .. }) if code == "audience_mismatch"
        )
    });
    mismatch.then(|| {
        "the server now answers for another cluster or node than the audience ui keeps \
         for it in config.toml [audiences]. If that is expected (the node was re-created \
         or joined a cluster), delete the server's line under [audiences] and run the \
         command again; otherwise check that --server names the daemon you meant"
            .to_owned()
    })
}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context::new(cli.global);
    match cli.command {
        Command::Init(args) => init::run(&ctx, &args),
        Command::Identity(cmd) => identity::run(&ctx, &cmd),
        Command::Config(cmd) => config::run(&ctx, &cmd),
        Command::Policy(cmd) => policy::run(&ctx, &cmd),
        Command::Deploy(args) => deploy::run(&ctx, &args),
        Command::Scale(args) => workload::scale(&ctx, &args),
        Command::Status(args) => status::run(&ctx, &args),
        Command::Logs(args) => logs::run(&ctx, &args),
        Command::Delete(args) => workload::delete(&ctx, &args),
        Command::Volume(cmd) => volume::run(&ctx, &cmd),
        Command::Node(cmd) => node::run(&ctx, &cmd),
        Command::Network(cmd) => network::run(&ctx, &cmd),
        Command::Cluster(cmd) => cluster::run(&ctx, &cmd),
        Command::Credits(cmd) => credits::run(&ctx, &cmd),
        Command::Attest(args) => attest::run(&ctx, &args),
        Command::Operator(cmd) => operator::run(&ctx, &cmd),
        Command::Mcp(args) => mcp::run(&ctx, &args),
        Command::Dashboard(args) => crate::dashboard::run(&ctx, &args),
        Command::Audit(args) => audit::run(&ctx, &args),
        Command::Agent(cmd) => agent::run(&ctx, &cmd),
        Command::Approvals(cmd) => approvals::run(&ctx, &cmd),
        Command::Secret(cmd) => secret::run(&ctx, &cmd),
        Command::Export(args) => leave::export(&ctx, &args),
        Command::Import(args) => leave::import(&ctx, &args),
        Command::Forget(args) => leave::forget(&ctx, &args),
        Command::Health => misc::health(&ctx),
        Command::Version => misc::version(&ctx),
        Command::Completions(args) => misc::completions(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_resolution_order() {
        let (flag, env, cfg) = (Some("http://flag"), Some("http://env"), Some("http://cfg"));
        assert_eq!(resolve_server(flag, env, cfg), "http://flag");
        assert_eq!(resolve_server(None, env, cfg), "http://env");
        assert_eq!(resolve_server(None, None, cfg), "http://cfg");
        assert_eq!(resolve_server(None, None, None), DEFAULT_SERVER);
        assert_eq!(resolve_server(Some(""), Some("  "), cfg), "http://cfg");
    }
}
