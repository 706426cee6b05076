//! The status of each workload as the reconciler last counted it.
//!
//! The reconciler owns the counts: its passes write them into a
//! [`StatusBoard`], and everyone else (the library API, and through it REST
//! and MCP) reads them through a [`StatusReader`], which cannot write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use orchestrator_shared_types::{WorkloadDefinition, WorkloadId};
use state_store_interface::StateStore;

use crate::error::Result;

/// Counts of a workload's instances: the wire type of the API, counted here.
pub use orchestrator_api::WorkloadStatus;

/// What the reconciler knows about each workload's status. Written by passes only.
#[derive(Default)]
pub struct StatusBoard {
    /// Workloads with replicas no node could take (how many, and the
    /// scheduler's reason for the first); retried when nodes change.
    unplaced: Mutex<HashMap<WorkloadId, (u32, String)>>,
    /// Instance counts per workload (with the generation they were counted
    /// at) as of the last pass that changed something, so that status
    /// queries need not read the store.
    counts: RwLock<HashMap<WorkloadId, (u64, WorkloadStatus)>>,
}

impl StatusBoard {
    /// Records that `count` replicas of `id` wait for a node, and why
    /// (`None`: none wait).
    pub(crate) fn set_unplaced(&self, id: WorkloadId, unplaced: Option<(u32, String)>) {
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

    /// Workloads waiting for a node.
    pub fn unplaced(&self) -> Vec<WorkloadId> {
        self.unplaced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// Whether workload `id` has replicas waiting for a node.
    pub fn is_unplaced(&self, id: &WorkloadId) -> bool {
        self.unplaced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(id)
    }

    /// Records the instance counts of workload `id` at `generation`.
    pub(crate) fn set(&self, id: WorkloadId, generation: u64, status: WorkloadStatus) {
        self.counts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (generation, status));
    }

    /// Forgets the counts of a deleted workload.
    pub(crate) fn forget(&self, id: &WorkloadId) {
        self.counts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// The counts of workload `id` if they were taken at `generation`.
    pub fn get(&self, id: &WorkloadId, generation: u64) -> Option<WorkloadStatus> {
        let map = self.counts.read().unwrap_or_else(PoisonError::into_inner);
        map.get(id)
            .filter(|(g, _)| *g == generation)
            .map(|(_, s)| s.clone())
    }
}

/// A read-only handle on the reconciler's [`StatusBoard`].
#[derive(Clone)]
pub struct StatusReader {
    board: Arc<StatusBoard>,
    store: Arc<dyn StateStore>,
}

impl StatusReader {
    /// A reader of `board`, counting from `store` what the board has not seen.
    pub(crate) fn new(board: Arc<StatusBoard>, store: Arc<dyn StateStore>) -> Self {
        Self { board, store }
    }

    /// The status of `w`: the reconciler's counts when it has seen this
    /// generation (else the stored instances, counted now), plus the replicas
    /// that wait for a node.
    pub async fn workload_status(&self, w: &WorkloadDefinition) -> Result<WorkloadStatus> {
        let mut s = match self.board.get(&w.id, w.generation) {
            Some(mut s) => {
                s.desired = w.spec.replicas;
                s
            }
            None => {
                let records = self.store.list_instances_by_workload(&w.id).await?;
                WorkloadStatus::count(w, &records)
            }
        };
        if let Some((n, reason)) = self.board.unplaced_reason(&w.id) {
            s.unscheduled = n;
            s.reason = Some(reason);
        }
        Ok(s)
    }

    /// How many replicas of `id` wait for a node, and why.
    pub fn unplaced_reason(&self, id: &WorkloadId) -> Option<(u32, String)> {
        self.board.unplaced_reason(id)
    }
}
