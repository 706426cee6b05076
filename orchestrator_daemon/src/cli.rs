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
    /// Copy a stopped SQLite control plane's state into etcd, for a cluster
    /// moving to several control planes (`--store etcd`), and check the copy.
    ///
    /// `orchestrator_daemon migrate --from sqlite:/var/lib/univrs --to
    /// etcd:http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379
    /// --etcd-prefix /univrs`
    ///
    /// Stop the daemon first. Copied: nodes, workloads, instances, every
    /// record, the audit log (`audit.log`, its chain checked before and
    /// after), and the cluster's identity: its id is the credit ledger's
    /// (the cluster id, or `standalone-NODEKEY` for a standalone node), and
    /// the ledger's authority key (the node key) goes into etcd, so the
    /// control planes keep the ledger. The prefix must be empty: nothing is
    /// written otherwise. Each set is checked by count and SHA-256 read back
    /// from etcd; it prints a table and `verified`, or fails naming what
    /// differs. After a failed copy, delete the prefix (`etcdctl del
    /// --prefix P/`) before retrying. Then start the control planes with
    /// `--store etcd` and the same endpoints and prefix, and do not start
    /// the old daemon again. Needs a daemon built with `--features etcd`.
    Migrate {
        /// `sqlite:PATH`: the stopped daemon's data directory, or the
        /// `state.db` in it.
        #[arg(long)]
        from: String,
        /// `etcd:URL[,URL...]`: the etcd cluster's client URLs.
        #[arg(long)]
        to: String,
        /// The key prefix in etcd, the control planes' `--etcd-prefix`
        /// [default: /univrs].
        #[arg(long = "etcd-prefix")]
        etcd_prefix: Option<String>,
        /// The cluster id the source ran with, if it was given by
        /// `--cluster-id` rather than kept in its `cluster.json` [default:
        /// cluster.json's, else the standalone node's ledger id].
        #[arg(long = "cluster-id")]
        cluster_id: Option<String>,
    },
}
