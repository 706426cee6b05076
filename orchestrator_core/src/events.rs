//! What the reconciler did, for whoever listens (logs, tests, the event hub).

use observability::events::{Event, Topic};
use orchestrator_shared_types::{InstanceId, InstanceStatus, NodeId, WorkloadId};
use serde_json::json;

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

impl ReconcileEvent {
    /// The event as published on the event hub (and the WebSocket).
    pub fn to_hub_event(&self) -> Event {
        match self {
            ReconcileEvent::InstanceStarted {
                workload,
                instance,
                node,
                generation,
            } => Event::new(
                Topic::Instances,
                "started",
                json!({"workload": workload, "instance": instance, "node": node, "generation": generation}),
            ),
            ReconcileEvent::InstanceStatusChanged {
                workload,
                instance,
                status,
                reason,
            } => Event::new(
                Topic::Instances,
                "status_changed",
                json!({"workload": workload, "instance": instance, "status": status, "reason": reason}),
            ),
            ReconcileEvent::InstanceRestarted {
                workload,
                instance,
                restarts,
            } => Event::new(
                Topic::Instances,
                "restarted",
                json!({"workload": workload, "instance": instance, "restarts": restarts}),
            ),
            ReconcileEvent::InstanceRemoved {
                workload,
                instance,
                reason,
            } => Event::new(
                Topic::Instances,
                "removed",
                json!({"workload": workload, "instance": instance, "reason": reason}),
            ),
            ReconcileEvent::PlacementFailed {
                workload,
                count,
                reason,
            } => Event::new(
                Topic::Workloads,
                "placement_failed",
                json!({"workload": workload, "count": count, "reason": reason}),
            ),
            ReconcileEvent::RolledBack {
                workload,
                generation,
            } => Event::new(
                Topic::Workloads,
                "rolled_back",
                json!({"workload": workload, "generation": generation}),
            ),
            ReconcileEvent::WorkloadRemoved { workload } => {
                Event::new(Topic::Workloads, "removed", json!({"workload": workload}))
            }
            ReconcileEvent::Reconciled { workload, actions } => Event::new(
                Topic::Workloads,
                "reconciled",
                json!({"workload": workload, "actions": actions}),
            ),
        }
    }
}
