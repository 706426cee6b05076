//! The orchestrator core: the reconciler that makes the cluster match what was
//! asked (SPEC §6), its work queue, and the library API the front-ends call.
//!
//! It depends on the interface crates (`*_interface`,
//! `orchestrator_shared_types`) and `observability` only: it never names a
//! concrete runtime, store, cluster manager or scheduler, and knows nothing of
//! HTTP. The daemon (`orchestrator_daemon`) wires concrete backends into
//! [`Deps`]; the REST API (`orchestrator_rest`) and the trust service
//! (`orchestrator_trust`) sit on top of [`Orchestrator`] and [`events`].
//!
//! - [`api`]: [`Orchestrator`] — apply, scale, roll back, delete, query —
//!   and the per-owner quotas it enforces ([`OwnerQuotas`]).
//! - [`reconciler`]: the `select!` loop and the Sense → Compare → Plan →
//!   Actuate pass, one workload at a time.
//! - [`queue`]: the de-duplicating work queue with bounded concurrency and
//!   jittered exponential back-off.
//! - [`nodes`]: the reconciler's view of membership.
//! - [`run_duration`]: how long containers ran, from the runtime's exits.
//! - [`events`]: what the reconciler did, as a broadcast.
//! - [`run_duration`]: how long containers ran, for `/metrics`.
//! - [`config`]: pacing of the reconciler, and the quotas.
//! - [`error`]: this crate's error type.

pub mod api;
pub mod config;
pub mod error;
pub mod events;
pub mod nodes;
pub mod queue;
pub mod reconciler;
pub mod run_duration;

pub use api::quota::{OwnerQuotas, OwnerUsage};
pub use api::{Orchestrator, WorkloadStatus};
pub use config::ReconcilerConfig;
pub use error::{Error, Result};
pub use events::ReconcileEvent;
pub use reconciler::Deps;
