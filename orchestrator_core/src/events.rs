//! What the reconciler did, for whoever listens (logs, tests, the event hub).

use orchestrator_shared_types::{InstanceId, InstanceStatus, NodeId, WorkloadId};

/// One action of the reconciler, published after it took effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReconcileEvent {
    /// An instance was placed and its containers started.
    InstanceStarted {
        /// Workload.
        workload: WorkloadId,
        /// Instance.
        instance: InstanceId,
        /// Node.
        node: NodeId,
        /// Generation it runs.
        generation: u64,
    },
    /// An instance's status changed as observed.
    InstanceStatusChanged {
        /// Workload.
        workload: WorkloadId,
        /// Instance.
        instance: InstanceId,
        /// New status.
        status: InstanceStatus,
        /// Why.
        reason: Option<String>,
    },
    /// An instance's containers were restarted.
    InstanceRestarted {
        /// Workload.
        workload: WorkloadId,
        /// Instance.
        instance: InstanceId,
        /// Restart count after this restart.
        restarts: u32,
    },
    /// An instance was removed (scale down, update, delete, duplicate).
    InstanceRemoved {
        /// Workload.
        workload: WorkloadId,
        /// Instance.
        instance: InstanceId,
        /// Why.
        reason: String,
    },
    /// Replicas could not be placed.
    PlacementFailed {
        /// Workload.
        workload: WorkloadId,
        /// How many.
        count: usize,
        /// Scheduler's reason.
        reason: String,
    },
    /// A rollout failed and the workload went back to its previous template.
    RolledBack {
        /// Workload.
        workload: WorkloadId,
        /// New generation (carrying the previous template).
        generation: u64,
    },
    /// A workload has no instances left after its deletion.
    WorkloadRemoved {
        /// Workload.
        workload: WorkloadId,
    },
    /// One reconcile pass ended.
    Reconciled {
        /// Workload.
        workload: WorkloadId,
        /// Actions taken.
        actions: usize,
    },
}
