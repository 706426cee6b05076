//! The orchestrator core: the reconciler that makes the cluster match what was
//! asked (SPEC §6), the library API the front-ends call, and the wiring of the
//! `orchestrator_daemon` binary.
//!
//! - [`cluster`]: many nodes — the node agent, the routing runtime, request
//!   forwarding to the control plane, and `/api/v1/network`.
//! - [`audit`]: the tamper-evident log of every mutating API call.
//! - [`trust`]: the evidence log and reputation engine of the control plane.
//! - [`agents`]: AI agents' automation policies, revoked tokens and approvals.
//! - [`api`]: [`Orchestrator`] — apply, scale, roll back, delete, query.
//! - [`reconciler`]: the `select!` loop and the Sense → Compare → Plan →
//!   Actuate pass, one workload at a time.
//! - [`rest`]: the signed REST API, WebSocket events, health and metrics routes.
//! - [`queue`]: the de-duplicating work queue with bounded concurrency and
//!   jittered exponential back-off.
//! - [`nodes`]: the reconciler's view of membership.
//! - [`events`]: what the reconciler did, as a broadcast.
//! - [`config`]: pacing of the reconciler.
//! - [`daemon`]: configuration and wiring of the `orchestrator_daemon` binary.
//! - [`error`]: this crate's error type.

pub mod agents;
pub mod api;
pub mod audit;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod error;
pub mod events;
pub mod nodes;
pub mod queue;
pub mod reconciler;
pub mod rest;
pub mod trust;

pub use api::{Orchestrator, WorkloadStatus};
pub use config::ReconcilerConfig;
pub use error::{Error, Result};
pub use events::ReconcileEvent;
pub use reconciler::Deps;
