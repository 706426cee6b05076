//! Every workload, held in memory and kept in step by the writer thread.
//!
//! Workloads are few and read on every API request and reconcile pass, so
//! `get_workload`, `get_workload_by_name` and `list_workloads` are answered
//! from here instead of decoding rows. The writer applies a committed write
//! to the cache before it publishes the change or acknowledges the write, in
//! commit order, so a reader never sees a workload the database does not hold
//! nor misses one it acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use orchestrator_shared_types::{PublicKey, WorkloadDefinition, WorkloadId};

/// A committed change to apply to the cache.
#[derive(Debug)]
pub(crate) enum CacheOp {
    /// A workload was written.
    Put(Box<WorkloadDefinition>),
    /// A workload was deleted.
    Delete(WorkloadId),
}

/// The workloads, by id and by (owner, name).
#[derive(Debug, Default)]
pub(crate) struct WorkloadCache {
    by_id: BTreeMap<WorkloadId, WorkloadDefinition>,
    by_name: HashMap<(PublicKey, String), WorkloadId>,
}

/// The cache shared by the store and its writer thread.
pub(crate) type SharedCache = Arc<RwLock<WorkloadCache>>;

impl WorkloadCache {
    /// Applies one committed change.
    pub(crate) fn apply(&mut self, op: CacheOp) {
        match op {
            CacheOp::Put(w) => {
                if let Some(old) = self.by_id.get(&w.id) {
                    self.by_name.remove(&(old.owner, old.spec.name.clone()));
                }
                self.by_name.insert((w.owner, w.spec.name.clone()), w.id);
                self.by_id.insert(w.id, *w);
            }
            CacheOp::Delete(id) => {
                if let Some(old) = self.by_id.remove(&id) {
                    self.by_name.remove(&(old.owner, old.spec.name));
                }
            }
        }
    }

    /// A workload by id.
    pub(crate) fn get(&self, id: &WorkloadId) -> Option<WorkloadDefinition> {
        self.by_id.get(id).cloned()
    }

    /// A workload by owner and name.
    pub(crate) fn get_by_name(&self, owner: &PublicKey, name: &str) -> Option<WorkloadDefinition> {
        self.by_name
            .get(&(*owner, name.to_owned()))
            .and_then(|id| self.get(id))
    }

    /// Every workload, ordered by id.
    pub(crate) fn list(&self) -> Vec<WorkloadDefinition> {
        self.by_id.values().cloned().collect()
    }
}

/// Reads the cache (a poisoned lock is taken over: the data is only ever
/// replaced whole, entry by entry).
pub(crate) fn read<T>(cache: &SharedCache, f: impl FnOnce(&WorkloadCache) -> T) -> T {
    f(&cache.read().unwrap_or_else(PoisonError::into_inner))
}

/// Writes the cache.
pub(crate) fn write<T>(cache: &SharedCache, f: impl FnOnce(&mut WorkloadCache) -> T) -> T {
    f(&mut cache.write().unwrap_or_else(PoisonError::into_inner))
}
