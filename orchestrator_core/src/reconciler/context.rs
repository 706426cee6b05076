//! What a reconcile pass works with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use cluster_manager_interface::ClusterManager;
use container_runtime_interface::ContainerRuntime;
use observability::events::EventHub;
use observability::metrics::Metrics;
use orchestrator_shared_types::WorkloadId;
use scheduler_interface::Scheduler;
use state_store_interface::StateStore;
use tokio::sync::broadcast;

use crate::api::WorkloadStatus;
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
    /// Workloads with replicas no node could take (how many, and the
    /// scheduler's reason for the first); retried when nodes change.
    unplaced: Mutex<HashMap<WorkloadId, (u32, String)>>,
    /// Instance counts per workload (with the generation they were counted
    /// at) as of the last pass that changed something, so that status
    /// queries need not read the store.
    statuses: RwLock<HashMap<WorkloadId, (u64, WorkloadStatus)>>,
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
            unplaced: Mutex::new(HashMap::new()),
            statuses: RwLock::new(HashMap::new()),
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

    /// Records that `count` replicas of `id` wait for a node, and why
    /// (`None`: none wait).
    pub fn set_unplaced(&self, id: WorkloadId, unplaced: Option<(u32, String)>) {
        let mut map = self.unplaced.lock().unwrap_or_else(PoisonError::into_inner);
        match unplaced {
            Some(why) => {
                map.insert(id, why);
            }
            None => {
                map.remove(&id);
            }
        }
    }

    /// How many replicas of `id` wait for a node, and why.
    pub fn unplaced_reason(&self, id: &WorkloadId) -> Option<(u32, String)> {
        self.unplaced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Records the instance counts of workload `id` at `generation`.
    pub fn set_status(&self, id: WorkloadId, generation: u64, status: WorkloadStatus) {
        let mut map = self
            .statuses
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        map.insert(id, (generation, status));
    }

    /// Forgets the counts of a deleted workload.
    pub fn forget_status(&self, id: &WorkloadId) {
        self.statuses
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// The counts of workload `id` if they were taken at `generation`.
    pub fn status(&self, id: &WorkloadId, generation: u64) -> Option<WorkloadStatus> {
        let map = self.statuses.read().unwrap_or_else(PoisonError::into_inner);
        map.get(id)
            .filter(|(g, _)| *g == generation)
            .map(|(_, s)| s.clone())
    }

    /// Whether workload `id` has replicas waiting for a node.
    pub fn is_unplaced(&self, id: &WorkloadId) -> bool {
        self.unplaced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(id)
    }

    /// Workloads waiting for a node.
    pub fn unplaced(&self) -> Vec<WorkloadId> {
        self.unplaced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }
}
