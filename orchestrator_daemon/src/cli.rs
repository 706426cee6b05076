//! The command line of `orchestrator_daemon`: a subcommand, the configuration
//! file, and the settings (`orchestrator_daemon::settings`), each of which
//! also reads an environment variable.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use orchestrator_daemon::settings::Settings;

/// The Univrs orchestrator node daemon.
#[derive(Debug, Parser)]
#[command(name = "orchestrator_daemon", version, about = "The Univrs orchestrator node daemon", long_about = None)]
pub struct Cli {
    /// Something else than running the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Configuration file (TOML); flags and environment override it.
    #[arg(long, env = "UNIVRS_CONFIG_FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Every setting, from flags and environment.
    #[command(flatten)]
    pub settings: Settings,
}

/// What `orchestrator_daemon` can do besides running.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print this node's id (creating its key in the data directory if
    /// needed), for its operator to prove with `ui operator prove NODE_ID`.
    NodeId,
    /// Print a join token for a new node, from this control plane (the
    /// daemon must run: the CLI asks it over its API, signing with the node
    /// key of the data directory, so the token is recorded by the one
    /// process that keeps the state). The token is a secret.
    JoinToken {
        /// How long it is valid, e.g. `30m`, `1h`, `2d` or seconds [default: 1h].
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The role it admits.
        #[arg(long, default_value = "worker")]
        role: String,
        /// The daemon's API address [default: --api-addr of the configuration,
        /// else 127.0.0.1:9090].
        #[arg(long = "api-addr")]
        api_addr: Option<String>,
    },
}
