//! [`InMemoryStore`]: the state store kept in process memory, for tests.
//!
//! One `RwLock` guards maps keyed by id plus secondary indexes (instances by
//! workload and by node, workloads by owner and name), so that the indexed
//! lists cost what they return, not a scan. Records are kept by kind, then by
//! key, so a list of one kind is ordered and touches that kind only. Changes
//! are published while the write lock is still held: they come out in write
//! order, and a watcher that reads on receipt waits for the lock and so sees
//! the write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use orchestrator_shared_types::{
    InstanceId, Node, NodeId, PublicKey, WorkloadDefinition, WorkloadId, WorkloadInstance,
};
use tokio::sync::broadcast;

use crate::{check_record_key, check_record_kind, Result, StateStore, StoreChange, StoreError};

/// Capacity of the change feed; a watcher further behind than this lags.
const WATCH_CAPACITY: usize = 4096;

/// A [`StateStore`] in memory. Nothing survives the process.
#[derive(Debug)]
pub struct InMemoryStore {
    state: RwLock<State>,
    initialized: AtomicBool,
    changes: broadcast::Sender<StoreChange>,
}

#[derive(Debug, Default)]
struct State {
    nodes: BTreeMap<NodeId, Node>,
    workloads: BTreeMap<WorkloadId, WorkloadDefinition>,
    workloads_by_name: HashMap<(PublicKey, String), WorkloadId>,
    instances: BTreeMap<InstanceId, WorkloadInstance>,
    instances_by_workload: HashMap<WorkloadId, BTreeSet<InstanceId>>,
    instances_by_node: HashMap<NodeId, BTreeSet<InstanceId>>,
    /// Records: kind, then key, to value. A kind with no record has no entry.
    records: HashMap<String, BTreeMap<String, String>>,
}

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryStore {
    /// An empty store. Like every store it must be [initialised](StateStore::initialize)
    /// before use.
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(WATCH_CAPACITY);
        Self {
            state: RwLock::new(State::default()),
            initialized: AtomicBool::new(false),
            changes,
        }
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        if !self.initialized.load(Ordering::Acquire) {
            return Err(StoreError::NotInitialized);
        }
        // A panic while holding the lock cannot leave the maps half-written:
        // every write validates before it mutates, so the poison is ignored.
        Ok(self
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        if !self.initialized.load(Ordering::Acquire) {
            return Err(StoreError::NotInitialized);
        }
        Ok(self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Publishes changes; called with the write lock held so order is kept.
    fn publish(&self, changes: impl IntoIterator<Item = StoreChange>) {
        for change in changes {
            // An error only means nobody watches right now.
            if self.changes.send(change).is_err() {
                tracing::trace!("no watcher for store change");
            }
        }
    }
}

impl State {
    /// The workload other than `w` that owns `w`'s name, if any.
    fn name_owner(&self, w: &WorkloadDefinition) -> Option<WorkloadId> {
        self.workloads_by_name
            .get(&(w.owner, w.spec.name.clone()))
            .copied()
            .filter(|existing| *existing != w.id)
    }

    /// Fails if any workload of `batch`, applied in order, would take a name
    /// held by another workload (stored or earlier in the batch).
    fn check_names(&self, batch: &[WorkloadDefinition]) -> Result<()> {
        // Names as they stand after the items checked so far.
        let mut names: HashMap<(PublicKey, String), Option<WorkloadId>> = HashMap::new();
        let mut renamed: HashMap<WorkloadId, (PublicKey, String)> = HashMap::new();
        for w in batch {
            let key = (w.owner, w.spec.name.clone());
            let holder = match names.get(&key) {
                Some(holder) => *holder,
                None => self.workloads_by_name.get(&key).copied(),
            };
            if let Some(existing) = holder.filter(|existing| *existing != w.id) {
                return Err(StoreError::NameTaken {
                    name: w.spec.name.clone(),
                    existing,
                });
            }
            // Free the name this id held before (stored or earlier in the batch).
            let old = renamed.get(&w.id).cloned().or_else(|| {
                self.workloads
                    .get(&w.id)
                    .map(|o| (o.owner, o.spec.name.clone()))
            });
            if let Some(old) = old {
                if old != key {
                    names.insert(old, None);
                }
            }
            names.insert(key.clone(), Some(w.id));
            renamed.insert(w.id, key);
        }
        Ok(())
    }

    fn put_workload(&mut self, w: &WorkloadDefinition) {
        if let Some(old) = self.workloads.insert(w.id, w.clone()) {
            if old.owner != w.owner || old.spec.name != w.spec.name {
                self.workloads_by_name.remove(&(old.owner, old.spec.name));
            }
        }
        self.workloads_by_name
            .insert((w.owner, w.spec.name.clone()), w.id);
    }

    fn put_instance(&mut self, i: &WorkloadInstance) {
        if let Some(old) = self.instances.insert(i.id, i.clone()) {
            self.unindex_instance(&old);
        }
        self.instances_by_workload
            .entry(i.workload_id)
            .or_default()
            .insert(i.id);
        self.instances_by_node
            .entry(i.node_id)
            .or_default()
            .insert(i.id);
    }

    fn delete_instance(&mut self, id: &InstanceId) -> Option<WorkloadInstance> {
        let old = self.instances.remove(id)?;
        self.unindex_instance(&old);
        Some(old)
    }

    fn unindex_instance(&mut self, old: &WorkloadInstance) {
        if let Some(set) = self.instances_by_workload.get_mut(&old.workload_id) {
            set.remove(&old.id);
            if set.is_empty() {
                self.instances_by_workload.remove(&old.workload_id);
            }
        }
        if let Some(set) = self.instances_by_node.get_mut(&old.node_id) {
            set.remove(&old.id);
            if set.is_empty() {
                self.instances_by_node.remove(&old.node_id);
            }
        }
    }

    fn instances_in<'a>(
        &'a self,
        ids: Option<&'a BTreeSet<InstanceId>>,
    ) -> impl Iterator<Item = WorkloadInstance> + 'a {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.instances.get(id).cloned())
    }
}

fn instance_put(i: &WorkloadInstance) -> StoreChange {
    StoreChange::InstancePut {
        id: i.id,
        workload_id: i.workload_id,
    }
}

#[async_trait]
impl StateStore for InMemoryStore {
    async fn initialize(&self) -> Result<()> {
        self.initialized.store(true, Ordering::Release);
        Ok(())
    }

    async fn health_check(&self) -> Result<()> {
        self.read().map(drop)
    }

    async fn put_node(&self, node: &Node) -> Result<()> {
        let mut state = self.write()?;
        state.nodes.insert(node.id, node.clone());
        self.publish([StoreChange::NodePut(node.id)]);
        Ok(())
    }

    async fn get_node(&self, id: &NodeId) -> Result<Option<Node>> {
        Ok(self.read()?.nodes.get(id).cloned())
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        Ok(self.read()?.nodes.values().cloned().collect())
    }

    async fn delete_node(&self, id: &NodeId) -> Result<bool> {
        let mut state = self.write()?;
        let existed = state.nodes.remove(id).is_some();
        if existed {
            self.publish([StoreChange::NodeDeleted(*id)]);
        }
        Ok(existed)
    }

    async fn put_workload(&self, workload: &WorkloadDefinition) -> Result<()> {
        let mut state = self.write()?;
        if let Some(existing) = state.name_owner(workload) {
            return Err(StoreError::NameTaken {
                name: workload.spec.name.clone(),
                existing,
            });
        }
        state.put_workload(workload);
        self.publish([StoreChange::WorkloadPut(workload.id)]);
        Ok(())
    }

    async fn put_workloads_batch(&self, workloads: &[WorkloadDefinition]) -> Result<()> {
        let mut state = self.write()?;
        state.check_names(workloads)?;
        for w in workloads {
            state.put_workload(w);
        }
        self.publish(workloads.iter().map(|w| StoreChange::WorkloadPut(w.id)));
        Ok(())
    }

    async fn get_workload(&self, id: &WorkloadId) -> Result<Option<WorkloadDefinition>> {
        Ok(self.read()?.workloads.get(id).cloned())
    }

    async fn get_workload_by_name(
        &self,
        owner: &PublicKey,
        name: &str,
    ) -> Result<Option<WorkloadDefinition>> {
        let state = self.read()?;
        Ok(state
            .workloads_by_name
            .get(&(*owner, name.to_owned()))
            .and_then(|id| state.workloads.get(id))
            .cloned())
    }

    async fn list_workloads(&self) -> Result<Vec<WorkloadDefinition>> {
        Ok(self.read()?.workloads.values().cloned().collect())
    }

    async fn delete_workload(&self, id: &WorkloadId) -> Result<bool> {
        let mut state = self.write()?;
        let Some(old) = state.workloads.remove(id) else {
            return Ok(false);
        };
        state.workloads_by_name.remove(&(old.owner, old.spec.name));
        self.publish([StoreChange::WorkloadDeleted(*id)]);
        Ok(true)
    }

    async fn put_instance(&self, instance: &WorkloadInstance) -> Result<()> {
        let mut state = self.write()?;
        state.put_instance(instance);
        self.publish([instance_put(instance)]);
        Ok(())
    }

    async fn put_instances_batch(&self, instances: &[WorkloadInstance]) -> Result<()> {
        let mut state = self.write()?;
        for i in instances {
            state.put_instance(i);
        }
        self.publish(instances.iter().map(instance_put));
        Ok(())
    }

    async fn get_instance(&self, id: &InstanceId) -> Result<Option<WorkloadInstance>> {
        Ok(self.read()?.instances.get(id).cloned())
    }

    async fn list_instances_by_workload(&self, id: &WorkloadId) -> Result<Vec<WorkloadInstance>> {
        let state = self.read()?;
        Ok(state
            .instances_in(state.instances_by_workload.get(id))
            .collect())
    }

    async fn list_instances_by_node(&self, id: &NodeId) -> Result<Vec<WorkloadInstance>> {
        let state = self.read()?;
        Ok(state
            .instances_in(state.instances_by_node.get(id))
            .collect())
    }

    async fn list_instances(&self) -> Result<Vec<WorkloadInstance>> {
        Ok(self.read()?.instances.values().cloned().collect())
    }

    async fn delete_instance(&self, id: &InstanceId) -> Result<bool> {
        let mut state = self.write()?;
        let Some(old) = state.delete_instance(id) else {
            return Ok(false);
        };
        self.publish([StoreChange::InstanceDeleted {
            id: old.id,
            workload_id: old.workload_id,
        }]);
        Ok(true)
    }

    async fn delete_instances_batch(&self, ids: &[InstanceId]) -> Result<usize> {
        let mut state = self.write()?;
        let deleted: Vec<WorkloadInstance> = ids
            .iter()
            .filter_map(|id| state.delete_instance(id))
            .collect();
        self.publish(deleted.iter().map(|old| StoreChange::InstanceDeleted {
            id: old.id,
            workload_id: old.workload_id,
        }));
        Ok(deleted.len())
    }

    async fn put_record(&self, kind: &str, key: &str, value: &str) -> Result<()> {
        check_record_key(kind, key)?;
        self.write()?
            .records
            .entry(kind.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn get_record(&self, kind: &str, key: &str) -> Result<Option<String>> {
        check_record_key(kind, key)?;
        Ok(self
            .read()?
            .records
            .get(kind)
            .and_then(|records| records.get(key))
            .cloned())
    }

    async fn list_records(&self, kind: &str) -> Result<Vec<(String, String)>> {
        check_record_kind(kind)?;
        Ok(self
            .read()?
            .records
            .get(kind)
            .map(|records| {
                records
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool> {
        check_record_key(kind, key)?;
        let mut state = self.write()?;
        let Some(records) = state.records.get_mut(kind) else {
            return Ok(false);
        };
        let existed = records.remove(key).is_some();
        if records.is_empty() {
            state.records.remove(kind);
        }
        Ok(existed)
    }

    async fn list_record_kinds(&self) -> Result<Vec<String>> {
        // A kind whose last record is deleted loses its entry (delete_record).
        let mut kinds: Vec<String> = self.read()?.records.keys().cloned().collect();
        kinds.sort_unstable();
        Ok(kinds)
    }

    fn watch(&self) -> broadcast::Receiver<StoreChange> {
        self.changes.subscribe()
    }
}
