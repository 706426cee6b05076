//! [`EtcdStore`]: the state store in an etcd cluster, so that several control
//! planes can share one state (feature `etcd`).
//!
//! Design:
//! - **Keys.** Everything lives under a prefix (`EtcdConfig::prefix`), so
//!   clusters and tests can share one etcd: nodes, workloads and instances by
//!   id, a name index of workloads and two instance indexes, records by
//!   hex-encoded kind and raw key ([`keys`] has the layout). Values are the
//!   shared types as JSON. Lists are range reads; keys sort as ids do
//!   (record kinds and the count of keys: `inventory`).
//! - **Writes.** A write that does not depend on what is stored (a node, a
//!   record, a delete of either) is a transaction of one operation (and the
//!   fence, if any). Every read-modify-write (workload names, instance
//!   indexes, deletes that must count) is one transaction guarded by the mod
//!   revision of every key it read (and the fence), tried again
//!   when another writer got there first ([`txn`]). Every read is
//!   linearizable (etcd's default), so a write is seen by any read after it.
//! - **Batches** are atomic within etcd's limit of operations per transaction
//!   (`--max-txn-ops`, default 128; [`EtcdConfig::max_txn_ops`] must not be
//!   above the cluster's). The contract asks for batches of a hundred
//!   instances (three keys each), and the reconciler writes a workload's
//!   replicas in one batch, so a larger batch is *split*, not refused: it is
//!   written as several transactions of whole items, in order, each atomic.
//!   What is lost beyond the limit: if a later transaction fails (etcd
//!   unreachable, or, for workloads, a name taken by another writer between
//!   two transactions), the earlier ones stay written and the call returns
//!   the error; a reader may see the first part before the rest; the watch
//!   reports the parts separately. A name clash within the batch or with what
//!   is stored is still refused before anything is written. An item that
//!   appears twice in one transaction is written once, with its last value,
//!   and reported once.
//! - **Change feed.** [`StateStore::watch`] is fed by one etcd watch on the
//!   prefix, run by a task started by `initialize` ([`watch`]), so writes by
//!   other control planes are reported too, in revision order, once etcd has
//!   them. After a broken watch it watches again from the revision after the
//!   last one seen (nothing missed, nothing twice); if that revision was
//!   compacted it lists the store and publishes a put of every entity and a
//!   delete of every entity it knew that is gone. The task stops when the
//!   store is dropped.
//! - **Leader election and fencing.** Control planes sharing a prefix elect
//!   one leader with etcd's election API ([`EtcdStore::campaign`]): each
//!   candidate's key lives on a lease it keeps alive, and the winner's
//!   [`Leadership`] signals `lost` *before* etcd can expire that lease, so a
//!   leader whose renewals stopped reaching etcd stops acting before anyone
//!   else can win ([`election`] has the timing argument). Because a paused or
//!   partitioned process may still act late, the leader also fences its store
//!   ([`EtcdStore::set_fence`]): every write then compares the create
//!   revision of its leader key, so once a newer leader exists the old
//!   leader's writes all fail with `StoreError::Fenced` (`etcd::fence`).
//!
//! Why `etcd-client`: the maintained async (tokio, tonic) client of the etcd
//! v3 API, with transactions, watches, compaction, leases and the election
//! API; its build compiles etcd's protobufs with `protoc`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, ConnectOptions, GetOptions, KeyValue, TxnOp, TxnOpResponse};
use orchestrator_shared_types::{
    InstanceId, Node, NodeId, PublicKey, WorkloadDefinition, WorkloadId, WorkloadInstance,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{broadcast, Mutex};
use tokio_util::sync::CancellationToken;

use crate::{check_record_key, check_record_kind, Result, StateStore, StoreChange, StoreError};

mod config;
pub mod election;
mod fence;
mod inventory;
mod keys;
mod lease;
mod observe;
mod once;
mod retry;
mod txn;
mod watch;

pub use config::EtcdConfig;
pub use election::Leadership;
pub use fence::Fence;
use keys::Keys;

/// Capacity of the change feed; a watcher further behind than this lags.
const WATCH_CAPACITY: usize = 4096;

/// A [`StateStore`] in an etcd cluster. Must be [initialised](StateStore::initialize)
/// before use; dropping it stops its change feed.
pub struct EtcdStore {
    client: Client,
    /// The same cluster without a request timeout, for campaigns alone
    /// (`election.rs`): a campaign waits as long as another leads, and one
    /// cut by a timeout is cleaned up by etcd deleting the candidate's key,
    /// which a campaign sent again with the same lease has taken up.
    campaigner: Client,
    keys: Keys,
    config: EtcdConfig,
    initialized: AtomicBool,
    /// Held while initialising, so the feed is started once.
    starting: Mutex<()>,
    changes: broadcast::Sender<StoreChange>,
    /// Every write compares this leader key's create revision ([`fence`]).
    fence: std::sync::RwLock<Option<Fence>>,
    /// Stops the feed task, the leader observers and the leases.
    cancel: CancellationToken,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.config.endpoints)
            .field("prefix", &self.keys.root())
            .finish_non_exhaustive()
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl EtcdStore {
    /// Connects to the cluster at `endpoints` with keys under `prefix` and
    /// etcd's default limits ([`EtcdConfig::new`]).
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self> {
        Self::connect_with(EtcdConfig::new(endpoints, prefix)).await
    }

    /// Connects as `config` says. Nothing is read until `initialize`.
    pub async fn connect_with(config: EtcdConfig) -> Result<Self> {
        config.validate()?;
        let untimed = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5));
        let options = untimed.clone().with_timeout(config.request_timeout);
        let connecting = format!("connecting to {}", config.endpoints.join(","));
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(etcd_failed(&connecting))?;
        let campaigner = Client::connect(&config.endpoints, Some(untimed))
            .await
            .map_err(etcd_failed(&connecting))?;
        let (changes, _) = broadcast::channel(WATCH_CAPACITY);
        Ok(Self {
            client,
            campaigner,
            keys: Keys::new(&config.prefix),
            config,
            initialized: AtomicBool::new(false),
            starting: Mutex::new(()),
            changes,
            fence: std::sync::RwLock::new(None),
            cancel: CancellationToken::new(),
        })
    }

    /// The configuration it was connected with.
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    fn ready(&self) -> Result<()> {
        if self.initialized.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(StoreError::NotInitialized)
        }
    }

    async fn get_value<T: DeserializeOwned>(
        &self,
        kind: &'static str,
        key: String,
    ) -> Result<Option<T>> {
        self.ready()?;
        let resp = self
            .kv(&format!("reading {kind}"), |mut kv| {
                let key = key.clone();
                async move { kv.get(key, None).await }
            })
            .await?;
        resp.kvs()
            .first()
            .map(|kv| decode(kind, &key, kv.value()))
            .transpose()
    }

    /// Every key-value under `prefix`, in key order.
    async fn range(&self, what: &str, prefix: String) -> Result<Vec<KeyValue>> {
        self.ready()?;
        let mut resp = self
            .kv(&format!("listing {what}"), |mut kv| {
                let prefix = prefix.clone();
                async move { kv.get(prefix, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        Ok(resp.take_kvs())
    }

    async fn list_values<T: DeserializeOwned>(
        &self,
        kind: &'static str,
        prefix: String,
    ) -> Result<Vec<T>> {
        self.range(kind, prefix)
            .await?
            .iter()
            .map(|kv| decode(kind, &String::from_utf8_lossy(kv.key()), kv.value()))
            .collect()
    }

    /// Deletes one key; whether it existed.
    async fn delete_key(&self, what: &str, key: String) -> Result<bool> {
        let resp = self
            .write_one(&format!("deleting {what}"), TxnOp::delete(key, None))
            .await?;
        Ok(resp
            .op_responses()
            .iter()
            .any(|op| matches!(op, TxnOpResponse::Delete(deleted) if deleted.deleted() > 0)))
    }

    async fn put_key(&self, what: &str, key: String, value: Vec<u8>) -> Result<()> {
        self.write_one(&format!("writing {what}"), TxnOp::put(key, value, None))
            .await?;
        Ok(())
    }
}

/// Maps an etcd-client error to [`StoreError::Etcd`], saying what was done.
fn etcd_failed(what: &str) -> impl FnOnce(etcd_client::Error) -> StoreError + '_ {
    move |e| StoreError::Etcd(format!("{what}: {e}"))
}

fn encode(kind: &'static str, value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| StoreError::Codec { kind, source })
}

fn decode<T: DeserializeOwned>(kind: &'static str, key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|source| {
        tracing::warn!(key, error = %source, "undecodable {kind} in etcd");
        StoreError::Codec { kind, source }
    })
}

#[async_trait]
impl StateStore for EtcdStore {
    async fn initialize(&self) -> Result<()> {
        let _starting = self.starting.lock().await;
        if self.initialized.load(Ordering::Acquire) {
            return Ok(());
        }
        watch::spawn_feed(
            self.client.clone(),
            self.keys.clone(),
            self.changes.clone(),
            self.cancel.child_token(),
        )
        .await?;
        self.initialized.store(true, Ordering::Release);
        Ok(())
    }

    async fn health_check(&self) -> Result<()> {
        self.ready()?;
        // A linearizable read: it needs the cluster's quorum.
        self.client
            .kv_client()
            .get(
                self.keys.root(),
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_keys_only()
                        .with_limit(1),
                ),
            )
            .await
            .map_err(etcd_failed("checking the cluster answers"))?;
        Ok(())
    }

    async fn put_node(&self, node: &Node) -> Result<()> {
        self.put_key("a node", self.keys.node(&node.id), encode("node", node)?)
            .await
    }

    async fn get_node(&self, id: &NodeId) -> Result<Option<Node>> {
        self.get_value("node", self.keys.node(id)).await
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.list_values("node", self.keys.nodes()).await
    }

    async fn delete_node(&self, id: &NodeId) -> Result<bool> {
        self.delete_key("a node", self.keys.node(id)).await
    }

    async fn put_workload(&self, workload: &WorkloadDefinition) -> Result<()> {
        self.ready()?;
        self.put_workloads(std::slice::from_ref(workload)).await
    }

    async fn put_workloads_batch(&self, workloads: &[WorkloadDefinition]) -> Result<()> {
        self.ready()?;
        self.put_workloads(workloads).await
    }

    async fn get_workload(&self, id: &WorkloadId) -> Result<Option<WorkloadDefinition>> {
        self.get_value("workload", self.keys.workload(id)).await
    }

    async fn get_workload_by_name(
        &self,
        owner: &PublicKey,
        name: &str,
    ) -> Result<Option<WorkloadDefinition>> {
        self.ready()?;
        let name_key = self.keys.workload_name(owner, name);
        // The name and the workload are two reads: if the workload was
        // renamed in between, look the name up again.
        for _ in 0..self.config.max_attempts {
            let read = self.read_keys(std::slice::from_ref(&name_key)).await?;
            let Some((id, _)) = read.get(&name_key) else {
                return Ok(None);
            };
            let id = txn::parse_id(&name_key, id)?;
            let found: Option<WorkloadDefinition> = self.get_workload(&id).await?;
            match found {
                Some(w) if w.owner == *owner && w.spec.name == name => return Ok(Some(w)),
                _ => continue,
            }
        }
        Ok(None)
    }

    async fn list_workloads(&self) -> Result<Vec<WorkloadDefinition>> {
        self.list_values("workload", self.keys.workloads()).await
    }

    async fn delete_workload(&self, id: &WorkloadId) -> Result<bool> {
        self.ready()?;
        self.remove_workload(id).await
    }

    async fn put_instance(&self, instance: &WorkloadInstance) -> Result<()> {
        self.ready()?;
        self.put_instances(std::slice::from_ref(instance)).await
    }

    async fn put_instances_batch(&self, instances: &[WorkloadInstance]) -> Result<()> {
        self.ready()?;
        self.put_instances(instances).await
    }

    async fn get_instance(&self, id: &InstanceId) -> Result<Option<WorkloadInstance>> {
        self.get_value("instance", self.keys.instance(id)).await
    }

    async fn list_instances_by_workload(&self, id: &WorkloadId) -> Result<Vec<WorkloadInstance>> {
        self.list_values("instance", self.keys.instances_of_workload(id))
            .await
    }

    async fn list_instances_by_node(&self, id: &NodeId) -> Result<Vec<WorkloadInstance>> {
        self.list_values("instance", self.keys.instances_on_node(id))
            .await
    }

    async fn list_instances(&self) -> Result<Vec<WorkloadInstance>> {
        self.list_values("instance", self.keys.instances()).await
    }

    async fn delete_instance(&self, id: &InstanceId) -> Result<bool> {
        self.ready()?;
        Ok(self.remove_instances(std::slice::from_ref(id)).await? > 0)
    }

    async fn delete_instances_batch(&self, ids: &[InstanceId]) -> Result<usize> {
        self.ready()?;
        self.remove_instances(ids).await
    }

    async fn put_record(&self, kind: &str, key: &str, value: &str) -> Result<()> {
        check_record_key(kind, key)?;
        self.put_key(
            "a record",
            self.keys.record(kind, key),
            value.as_bytes().to_vec(),
        )
        .await
    }

    async fn get_record(&self, kind: &str, key: &str) -> Result<Option<String>> {
        check_record_key(kind, key)?;
        self.ready()?;
        let key = self.keys.record(kind, key);
        let resp = self
            .kv("reading a record", |mut kv| {
                let key = key.clone();
                async move { kv.get(key, None).await }
            })
            .await?;
        resp.kvs()
            .first()
            .map(|kv| record_text(&key, kv.value()))
            .transpose()
    }

    async fn list_records(&self, kind: &str) -> Result<Vec<(String, String)>> {
        check_record_kind(kind)?;
        let kvs = self.range("records", self.keys.records(kind)).await?;
        kvs.iter()
            .map(|kv| {
                let full = String::from_utf8_lossy(kv.key());
                let key =
                    self.keys
                        .record_key(kind, kv.key())
                        .ok_or_else(|| StoreError::ForeignKey {
                            key: full.clone().into_owned(),
                            reason: "a record key must be UTF-8".into(),
                        })?;
                Ok((key.to_owned(), record_text(&full, kv.value())?))
            })
            .collect()
    }

    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool> {
        check_record_key(kind, key)?;
        self.delete_key("a record", self.keys.record(kind, key))
            .await
    }

    async fn list_record_kinds(&self) -> Result<Vec<String>> {
        self.record_kinds().await
    }

    fn watch(&self) -> broadcast::Receiver<StoreChange> {
        self.changes.subscribe()
    }
}

fn record_text(key: &str, value: &[u8]) -> Result<String> {
    String::from_utf8(value.to_vec()).map_err(|_| StoreError::ForeignKey {
        key: key.to_owned(),
        reason: "a record value must be UTF-8 text".into(),
    })
}
