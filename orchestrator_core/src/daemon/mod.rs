//! The `orchestrator_daemon` wiring: typed configuration merged from flags,
//! environment and a file ([`config`]; the youki settings in
//! `runtime_config`), the node's own key ([`node_key`]) and the proof of its
//! operator (`operator`), building and running the components ([`run`]; the
//! scheduler and the reputation it reads in [`scheduler`]), and the gossip
//! series of `/metrics` in cluster mode ([`gossip_metrics`]). Cluster mode
//! has its settings in `cluster_config` and its wiring (gossip, a worker's
//! router) in `cluster_run`.

mod cluster_config;
mod cluster_run;
pub mod config;
pub mod gossip_metrics;
pub mod node_key;
mod open;
mod operator;
pub mod run;
mod runtime_config;
pub mod scheduler;

pub use config::{DaemonConfig, FileConfig, LogFormat, RuntimeKind, SchedulerKind, StoreKind};
pub use open::build_deps;
pub use run::{run_until_signal, Daemon};
