//! Errors of the daemon: configuration that does not hold, and the parts
//! that could not be opened or started, each with its cause.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration (flags, environment, file) is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The configuration file could not be read.
    #[error("reading {}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML of the expected shape.
    #[error("{}", path.display())]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// A file or directory of the data directory could not be read or written.
    #[error("{what} {}", path.display())]
    DataDir {
        /// What was being done (`creating data directory`, `writing node key`, …).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node key file is not a key.
    #[error("{} holds {len} bytes, expected a 32-byte key", path.display())]
    BadNodeKey {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The API's address could not be bound.
    #[error("binding the API to {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bound API socket could not tell its address.
    #[error("reading the API's address")]
    LocalAddr(#[source] std::io::Error),
    /// An HTTP client (agent calls, forwarding, probes) could not be built.
    #[error("creating the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The node's TLS identity (certificate from its key) could not be made.
    #[error("setting up mutual TLS between nodes")]
    Tls(#[source] peer_tls::Error),
    /// The cluster identity in the data directory could not be read or written.
    #[error("cluster identity: {0}")]
    ClusterIdentity(String),
    /// The admission service could not start.
    #[error("starting cluster admission")]
    Admission(#[source] orchestrator_admission::Error),
    /// Joining with `--join` failed: the token was refused or the control
    /// plane could not be reached. Nothing was joined.
    #[error("joining the cluster: {0}")]
    Join(String),
    /// The youki runtime cannot start on this host.
    #[error(
        "the youki container runtime cannot start: {0}. Run the daemon as root on a host \
         with cgroups mounted, or pass --runtime mock for simulated containers (tests and \
         demos; nothing runs)"
    )]
    Youki(String),
    /// Gossip could not start.
    #[error("starting gossip on {addr}")]
    Gossip {
        /// Where it was to listen.
        addr: String,
        /// Why.
        #[source]
        source: cluster_manager_interface::ClusterError,
    },
    /// The gossip key file could not be used.
    #[error(transparent)]
    GossipKeys(#[from] crate::gossip_keys::KeyFileError),
    /// The node agent's control-plane term file could not be read.
    #[error("opening the node agent's control-plane term")]
    AgentTerm(#[source] node_agent::term::TermError),
    /// The metrics registry could not be created.
    #[error("creating the metrics registry")]
    Metrics(#[source] observability::error::Error),
    /// The audit log does not verify or cannot be opened.
    #[error(
        "the audit log has been altered or cannot be read — keep it as evidence, move it out \
         of {} and start again for a new log",
        dir.display()
    )]
    Audit {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: orchestrator_audit::AuditError,
    },
    /// The evidence log could not be replayed.
    #[error("reading the evidence log")]
    Trust(#[source] orchestrator_trust::TrustError),
    /// The approvals queue could not be read.
    #[error("reading the approvals queue")]
    Agents(#[source] orchestrator_agents::AgentError),
    /// The signal handlers could not be installed.
    #[error("installing signal handlers")]
    Signals(#[source] std::io::Error),
    /// The reconciler or the library API failed.
    #[error(transparent)]
    Core(#[from] orchestrator_core::Error),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] state_store_interface::StoreError),
    /// The container runtime failed.
    #[error(transparent)]
    Runtime(#[from] container_runtime_interface::RuntimeError),
    /// The cluster manager failed.
    #[error(transparent)]
    Cluster(#[from] cluster_manager_interface::ClusterError),
    /// `orchestrator_daemon migrate` was refused or failed.
    #[cfg(feature = "etcd")]
    #[error(transparent)]
    Migrate(#[from] crate::migrate::MigrateError),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
