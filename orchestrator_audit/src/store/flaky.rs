//! A store that fails record writes on demand: [`InMemoryStore`] behind a
//! switch, for the tests of what an append does when the store fails it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use orchestrator_shared_types::{
    InstanceId, Node, NodeId, PublicKey, WorkloadDefinition, WorkloadId, WorkloadInstance,
};
use state_store_interface::{InMemoryStore, Result, StateStore, StoreChange, StoreError};
use tokio::sync::{broadcast, Semaphore};

/// What the next record writes do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Puts {
    /// They are written.
    Work,
    /// They fail, writing nothing.
    Fail,
    /// They are written, then reported failed (a timeout after the commit).
    LandThenFail,
    /// Each waits for a permit of [`Flaky::gate`], then is written.
    Wait,
}

/// [`InMemoryStore`] whose `put_record` obeys [`Flaky::set`].
pub(super) struct Flaky {
    inner: InMemoryStore,
    puts: Mutex<Puts>,
    /// Permits for [`Puts::Wait`].
    pub(super) gate: Semaphore,
}

impl Flaky {
    /// An initialised store whose writes work.
    pub(super) async fn new() -> Arc<Self> {
        let inner = InMemoryStore::new();
        inner.initialize().await.unwrap();
        Arc::new(Self {
            inner,
            puts: Mutex::new(Puts::Work),
            gate: Semaphore::new(0),
        })
    }

    /// What the next record writes do.
    pub(super) fn set(&self, puts: Puts) {
        *self.puts.lock().unwrap() = puts;
    }

    fn injected() -> StoreError {
        StoreError::Worker("injected failure".into())
    }
}

#[async_trait]
impl StateStore for Flaky {
    async fn put_record(&self, kind: &str, key: &str, value: &str) -> Result<()> {
        let puts = *self.puts.lock().unwrap();
        match puts {
            Puts::Work => self.inner.put_record(kind, key, value).await,
            Puts::Fail => Err(Self::injected()),
            Puts::LandThenFail => {
                self.inner.put_record(kind, key, value).await?;
                Err(Self::injected())
            }
            Puts::Wait => {
                self.gate.acquire().await.unwrap().forget();
                self.inner.put_record(kind, key, value).await
            }
        }
    }
    async fn get_record(&self, kind: &str, key: &str) -> Result<Option<String>> {
        self.inner.get_record(kind, key).await
    }
    async fn list_records(&self, kind: &str) -> Result<Vec<(String, String)>> {
        self.inner.list_records(kind).await
    }
    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool> {
        self.inner.delete_record(kind, key).await
    }
    async fn list_record_kinds(&self) -> Result<Vec<String>> {
        self.inner.list_record_kinds().await
    }

    async fn initialize(&self) -> Result<()> {
        self.inner.initialize().await
    }
    async fn health_check(&self) -> Result<()> {
        self.inner.health_check().await
    }
    async fn put_node(&self, node: &Node) -> Result<()> {
        self.inner.put_node(node).await
    }
    async fn get_node(&self, id: &NodeId) -> Result<Option<Node>> {
        self.inner.get_node(id).await
    }
    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.inner.list_nodes().await
    }
    async fn delete_node(&self, id: &NodeId) -> Result<bool> {
        self.inner.delete_node(id).await
    }
    async fn put_workload(&self, workload: &WorkloadDefinition) -> Result<()> {
        self.inner.put_workload(workload).await
    }
    async fn put_workloads_batch(&self, workloads: &[WorkloadDefinition]) -> Result<()> {
        self.inner.put_workloads_batch(workloads).await
    }
    async fn get_workload(&self, id: &WorkloadId) -> Result<Option<WorkloadDefinition>> {
        self.inner.get_workload(id).await
    }
    async fn get_workload_by_name(
        &self,
        owner: &PublicKey,
        name: &str,
    ) -> Result<Option<WorkloadDefinition>> {
        self.inner.get_workload_by_name(owner, name).await
    }
    async fn list_workloads(&self) -> Result<Vec<WorkloadDefinition>> {
        self.inner.list_workloads().await
    }
    async fn delete_workload(&self, id: &WorkloadId) -> Result<bool> {
        self.inner.delete_workload(id).await
    }
    async fn put_instance(&self, instance: &WorkloadInstance) -> Result<()> {
        self.inner.put_instance(instance).await
    }
    async fn put_instances_batch(&self, instances: &[WorkloadInstance]) -> Result<()> {
        self.inner.put_instances_batch(instances).await
    }
    async fn get_instance(&self, id: &InstanceId) -> Result<Option<WorkloadInstance>> {
        self.inner.get_instance(id).await
    }
    async fn list_instances_by_workload(&self, id: &WorkloadId) -> Result<Vec<WorkloadInstance>> {
        self.inner.list_instances_by_workload(id).await
    }
    async fn list_instances_by_node(&self, id: &NodeId) -> Result<Vec<WorkloadInstance>> {
        self.inner.list_instances_by_node(id).await
    }
    async fn list_instances(&self) -> Result<Vec<WorkloadInstance>> {
        self.inner.list_instances().await
    }
    async fn delete_instance(&self, id: &InstanceId) -> Result<bool> {
        self.inner.delete_instance(id).await
    }
    async fn delete_instances_batch(&self, ids: &[InstanceId]) -> Result<usize> {
        self.inner.delete_instances_batch(ids).await
    }
    fn watch(&self) -> broadcast::Receiver<StoreChange> {
        self.inner.watch()
    }
}
