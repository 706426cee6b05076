//! What a reconcile pass works with.

use std::sync::Arc;

use cluster_manager_interface::ClusterManager;
use container_runtime_interface::ContainerRuntime;
use observability::events::EventHub;
use observability::metrics::Metrics;
use orchestrator_shared_types::WorkloadId;
use scheduler_interface::Scheduler;
use state_store_interface::StateStore;
use tokio::sync::broadcast;

use super::drain::Drains;
use super::status::{StatusBoard, StatusReader, WorkloadStatus};
use crate::config::ReconcilerConfig;
use crate::events::ReconcileEvent;
use crate::nodes::NodeView;

/// The components the orchestrator is wired from.
#[derive(Clone)]
pub struct Deps {
    /// Durable state.
    pub store: Arc<dyn StateStore>,
    /// Runs containers.
    pub runtime: Arc<dyn ContainerRuntime>,
    /// Membership.
    pub cluster: Arc<dyn ClusterManager>,
    /// Placement.
    pub scheduler: Arc<dyn Scheduler>,
    /// Prometheus metrics the reconciler, scheduler and runtime calls update.
    pub metrics: Arc<Metrics>,
    /// Where every node, workload and instance event is published.
    pub events: EventHub,
}

/// Shared by the loop and every reconcile task.
pub struct Ctx {
    /// Components.
    pub deps: Deps,
    /// Pacing.
    pub config: ReconcilerConfig,
    /// Membership as last seen.
    pub nodes: NodeView,
    /// Published actions.
    pub events: broadcast::Sender<ReconcileEvent>,
    /// Serialises read-modify-write of workload records (API and rollback).
    pub workload_writes: tokio::sync::Mutex<()>,
    /// Serialises the placing of new volumes and the marking of volumes
    /// being deleted (`volumes`).
    pub volume_writes: tokio::sync::Mutex<()>,
    /// Nodes being drained; their instances are replaced by their passes.
    pub drains: Drains,
    /// Workload statuses as the passes counted them.
    statuses: Arc<StatusBoard>,
}

impl Ctx {
    /// A context over `deps`.
    pub fn new(deps: Deps, config: ReconcilerConfig, nodes: NodeView) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            deps,
            config,
            nodes,
            events,
            workload_writes: tokio::sync::Mutex::new(()),
            volume_writes: tokio::sync::Mutex::new(()),
            drains: Drains::default(),
            statuses: Arc::new(StatusBoard::default()),
        }
    }

    /// Publishes an event (nobody listening is fine), also to the event hub.
    pub fn emit(&self, event: ReconcileEvent) {
        self.deps.events.publish(event.to_hub_event());
        // A send error only means there is no subscriber right now.
        if self.events.send(event).is_err() {
            tracing::trace!("no subscriber for reconcile events");
        }
    }

    /// A read-only handle on the statuses the passes record.
    pub fn status_reader(&self) -> StatusReader {
        StatusReader::new(Arc::clone(&self.statuses), Arc::clone(&self.deps.store))
    }

    /// Records that `count` replicas of `id` wait for a node, and why
    /// (`None`: none wait).
    pub fn set_unplaced(&self, id: WorkloadId, unplaced: Option<(u32, String)>) {
        self.statuses.set_unplaced(id, unplaced);
    }

    /// How many replicas of `id` wait for a node, and why.
    pub fn unplaced_reason(&self, id: &WorkloadId) -> Option<(u32, String)> {
        self.statuses.unplaced_reason(id)
    }

    /// Records the instance counts of workload `id` at `generation`.
    pub fn set_status(&self, id: WorkloadId, generation: u64, status: WorkloadStatus) {
        self.statuses.set(id, generation, status);
    }

    /// Forgets the counts of a deleted workload.
    pub fn forget_status(&self, id: &WorkloadId) {
        self.statuses.forget(id);
    }

    /// The counts of workload `id` if they were taken at `generation`.
    pub fn status(&self, id: &WorkloadId, generation: u64) -> Option<WorkloadStatus> {
        self.statuses.get(id, generation)
    }

    /// Whether workload `id` has replicas waiting for a node.
    pub fn is_unplaced(&self, id: &WorkloadId) -> bool {
        self.statuses.is_unplaced(id)
    }

    /// Workloads waiting for a node.
    pub fn unplaced(&self) -> Vec<WorkloadId> {
        self.statuses.unplaced()
    }
}
