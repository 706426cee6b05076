//! The `Scheduler` contract (SPEC §5, §7) and, behind features, its schedulers.
//!
//! - [`Scheduler`]: place instances of a workload on nodes; each placement it
//!   returns is already *bound* (its resources reserved), so concurrent calls can
//!   never over-commit a node. Reservations are released with
//!   [`Scheduler::release`] and recorded for placements made elsewhere (start-up,
//!   a node that returns) with [`Scheduler::record_placements`].
//! - `simple` (feature): `SimpleScheduler` — readiness, cordon, resource fit,
//!   node selector and affinity, taints and tolerations, then spread or bin-pack
//!   scoring over a bounded sample of feasible nodes.
//! - `mycelial` (feature): `MycelialScheduler` — the simple scheduler's filters
//!   plus the workload owner's trust rules, then seeded weighted sampling by
//!   reputation² × fit over a bounded sample of the nodes that pass them, with
//!   a little exploration for users without rules.
//! - `testsuite` (feature): the contract tests every scheduler runs.

use std::sync::Arc;

use async_trait::async_trait;
use orchestrator_shared_types::{
    HostPort, InstanceId, Node, NodeId, OrchestrationError, Resources, WorkloadDefinition,
};

#[cfg(feature = "mycelial")]
pub mod mycelial;
#[cfg(feature = "simple")]
pub mod simple;
#[cfg(feature = "testsuite")]
pub mod testsuite;

#[cfg(feature = "mycelial")]
pub use crate::mycelial::{MycelialScheduler, MycelialSchedulerConfig};
#[cfg(feature = "simple")]
pub use simple::{ScoringStrategy, SimpleScheduler, SimpleSchedulerConfig};

/// What to place.
#[derive(Clone, Debug)]
pub struct ScheduleRequest {
    /// The workload whose instances are placed.
    pub workload: Arc<WorkloadDefinition>,
    /// Ids of the new instances to place; reservations are keyed by them.
    pub instances: Vec<InstanceId>,
    /// Where the workload's existing instances are (for spread and `max_per_node`).
    pub existing: Vec<(InstanceId, NodeId)>,
}

/// Where one instance goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleDecision {
    /// Placed and bound on this node.
    AssignNode(NodeId),
    /// No node fits; the reason says which filter excluded how many nodes.
    NoPlacement(String),
    /// The scheduler failed for this instance.
    Error(String),
}

/// A placement made outside [`Scheduler::schedule`] that must count as reserved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The instance.
    pub instance: InstanceId,
    /// Its node.
    pub node: NodeId,
    /// What it reserves.
    pub resources: Resources,
    /// The ports it takes on its node (`WorkloadSpec::host_ports`).
    pub host_ports: Vec<HostPort>,
}

/// Failures of a scheduler as a whole (per-instance failures are decisions).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The request is malformed.
    #[error("invalid schedule request for workload {workload}: {reason}")]
    InvalidRequest {
        /// Workload name.
        workload: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<SchedulerError> for OrchestrationError {
    fn from(e: SchedulerError) -> Self {
        OrchestrationError::Scheduler(e.to_string())
    }
}

/// Result with [`SchedulerError`].
pub type Result<T, E = SchedulerError> = std::result::Result<T, E>;

/// Places instances on nodes: Filter → Score → Bind.
#[async_trait]
pub trait Scheduler: Send + Sync + 'static {
    /// One decision per `req.instances`, in the same order. Every `AssignNode`
    /// is already bound: the node's reserved resources include the instance.
    async fn schedule(
        &self,
        req: &ScheduleRequest,
        nodes: &[Node],
    ) -> Result<Vec<ScheduleDecision>>;
    /// Frees what `instance` reserved; releasing an unknown instance does nothing.
    fn release(&self, instance: InstanceId);
    /// Counts placements made elsewhere as reserved (idempotent per instance).
    fn record_placements(&self, placements: &[Placement]);
    /// What is reserved on `node` now.
    fn reserved(&self, node: &NodeId) -> Resources;
}
