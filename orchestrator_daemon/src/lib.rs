//! The `orchestrator_daemon` binary's wiring, and the only crate that names
//! concrete backends: the youki and mock runtimes, chitchat and the mock
//! cluster manager, the SQLite and in-memory stores, the simple and mycelial
//! schedulers. It turns configuration into `Arc<dyn Trait>`s and hands them
//! to the core ([`orchestrator_core::Deps`]), the REST API
//! (`orchestrator_rest`), the node agent (`node_agent`) and the trust
//! service (`orchestrator_trust`). Nothing depends on this crate.
//!
//! Typed configuration merged from flags,
//! environment and a file ([`config`]; the youki settings in
//! `runtime_config`), the data directory kept private ([`data_dir`]), the
//! node's own key ([`node_key`]) and the proof of its
//! operator (`operator`), building and running the components ([`run`]; the
//! scheduler and the reputation it reads in [`scheduler`]), and the gossip
//! series of `/metrics` in cluster mode ([`gossip_metrics`]), and the gossip
//! key file, re-read on SIGHUP ([`gossip_keys`]), changed by the control
//! plane ([`key_store`]) when it rotates the key after a removal
//! ([`key_rotation`]). Cluster mode
//! has its settings in `cluster_config`, the cluster identity it creates or
//! joins with a token in [`cluster_identity`], and its wiring (gossip, a
//! worker's router, what join tokens carry) in `cluster_run`, and its end of
//! the encrypted overlay between nodes in `overlay`. Several control planes
//! on etcd run as `ha` says, and `migrate` (feature `etcd`) moves a SQLite
//! control plane's state there.

mod cluster_config;
pub mod cluster_identity;
mod cluster_run;
pub mod config;
mod control;
pub mod data_dir;
mod directory;
mod dns;
pub mod duration;
pub mod error;
#[cfg(feature = "etcd")]
mod forward;
pub mod gossip_keys;
pub mod gossip_metrics;
#[cfg(feature = "etcd")]
mod ha;
pub mod key_rotation;
pub mod key_store;
mod lifecycle;
#[cfg(feature = "etcd")]
pub mod migrate;
pub mod node_key;
mod open;
mod operator;
mod overlay;
pub mod run;
mod runtime_config;
pub mod scheduler;
pub mod settings;
mod simulated;

pub use config::{DaemonConfig, LogFormat, RuntimeKind, SchedulerKind, StoreKind};
pub use error::{Error, Result};
pub use open::build_deps;
pub use run::{run_until_signal, Daemon, Shutdown};
pub use runtime_config::{DEFAULT_WARM_NETWORKS, MAX_WARM_NETWORKS};
pub use settings::Settings;
