//! The `StateStore` contract (SPEC §5, §10) and, behind features, its backends.
//!
//! - [`StateStore`]: nodes, workloads and instances, batch writes, and a change
//!   feed ([`StateStore::watch`]). A write returns only once it is durable.
//!   Beside them, generic records (JSON text by kind and key) for other
//!   control-plane data, checked by [`check_record_key`].
//! - `memory` (feature): `InMemoryStore`, for tests: maps behind one lock, with
//!   secondary indexes.
//! - `sqlite` (feature): `SqliteStore`, the embedded default: one SQLite file in
//!   WAL mode, versioned migrations (`sqlite::schema`), reads through a
//!   connection pool, writes through one writer thread that commits whatever is
//!   queued in one transaction (group commit, `sqlite::writer`).
//! - `etcd` (feature): `EtcdStore`, the state in an etcd cluster under a key
//!   prefix: each read-modify-write one transaction guarded by the revisions
//!   it read, the change feed an etcd watch (`etcd::watch`); leader election
//!   among the control planes sharing it, and writes fenced by the leader's
//!   key (`etcd::election`, `etcd::fence`).
//! - `testsuite` (feature): the contract tests every store runs
//!   (`testsuite::run_all`).
//!
//! No backend is compiled by default: a crate that needs only the contract
//! turns on no feature.

use async_trait::async_trait;
use orchestrator_shared_types::{
    InstanceId, Node, NodeId, OrchestrationError, PublicKey, WorkloadDefinition, WorkloadId,
    WorkloadInstance,
};
use tokio::sync::broadcast;

#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "testsuite")]
pub mod testsuite;

#[cfg(feature = "etcd")]
pub use etcd::{EtcdConfig, EtcdStore, Fence, Leadership};
#[cfg(feature = "memory")]
pub use memory::InMemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// What changed in the store. Published after the write is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChange {
    /// A workload was created or updated.
    WorkloadPut(WorkloadId),
    /// A workload was deleted.
    WorkloadDeleted(WorkloadId),
    /// An instance was created or updated.
    InstancePut {
        /// The instance.
        id: InstanceId,
        /// Its workload.
        workload_id: WorkloadId,
    },
    /// An instance was deleted.
    InstanceDeleted {
        /// The instance.
        id: InstanceId,
        /// Its workload.
        workload_id: WorkloadId,
    },
    /// A node record was written.
    NodePut(NodeId),
    /// A node record was deleted.
    NodeDeleted(NodeId),
}

/// Failures of a state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another workload of the same owner has this name.
    #[error("workload name {name:?} is already used by workload {existing}")]
    NameTaken {
        /// The name.
        name: String,
        /// The workload that has it.
        existing: WorkloadId,
    },
    /// Opening or migrating the database failed.
    #[error("opening the state store at {path}: {reason}")]
    Open {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
    /// The schema is newer than this binary understands.
    #[error("state store schema version {found} is newer than the supported {supported}")]
    SchemaTooNew {
        /// Version on disk.
        found: i64,
        /// Newest this binary knows.
        supported: i64,
    },
    /// An SQLite call failed.
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No connection could be had from the pool.
    #[cfg(feature = "sqlite")]
    #[error("sqlite connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A stored record could not be encoded or decoded.
    #[cfg(any(feature = "sqlite", feature = "etcd"))]
    #[error("encoding a {kind} record: {source}")]
    Codec {
        /// Kind of record.
        kind: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// An etcd request failed (unreachable, no quorum, timed out, refused).
    #[cfg(feature = "etcd")]
    #[error("etcd: {0}")]
    Etcd(String),
    /// A read-modify-write kept finding that another writer had changed what
    /// it read, and gave up.
    #[cfg(feature = "etcd")]
    #[error(
        "etcd: {operation} gave up after {attempts} attempts, each overtaken by another writer"
    )]
    Contended {
        /// What was being written.
        operation: &'static str,
        /// How many transactions were tried.
        attempts: u32,
    },
    /// An etcd key under the store's prefix holds what this store did not
    /// write (another program, or a corrupted value).
    #[cfg(feature = "etcd")]
    #[error("etcd key {key:?} is not one this store wrote: {reason}")]
    ForeignKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The etcd store's configuration cannot work.
    #[cfg(feature = "etcd")]
    #[error("etcd store configuration: {0}")]
    InvalidConfig(String),
    /// The store is fenced ([`EtcdStore::set_fence`]) and its fence no longer
    /// holds: the leadership it names ended (resigned, or its lease expired
    /// or was revoked, so another control plane may lead), and nothing was
    /// written. Final for this fence: not retried.
    #[cfg(feature = "etcd")]
    #[error(
        "etcd: this control plane no longer leads (its leader key {key:?} is gone); the write was refused"
    )]
    Fenced {
        /// The leader key of the fence.
        key: String,
    },
    /// Campaigning for leadership failed because the candidate's lease could
    /// not be kept alive.
    #[cfg(feature = "etcd")]
    #[error("etcd: campaigning in election {election:?}: lease {lease:x} lapsed before it led")]
    LeaseLost {
        /// The election's name.
        election: String,
        /// The lease that lapsed.
        lease: i64,
    },
    /// The blocking task running the query died.
    #[error("store worker task failed: {0}")]
    Worker(String),
    /// The store was not initialised.
    #[error("state store is not initialised")]
    NotInitialized,
    /// A record kind or key is empty or longer than [`MAX_RECORD_KEY_BYTES`].
    #[error("record {field} of {len} bytes refused: it must be 1 to {max} bytes long", max = MAX_RECORD_KEY_BYTES)]
    InvalidKey {
        /// `"kind"` or `"key"`.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

impl StoreError {
    /// Whether the store is not answering for now (opening, a database or
    /// pool error, a dead worker, not initialised), so retrying soon may
    /// help; `false` for a request it will never accept as it is. Callers
    /// classify through this rather than by variant, since some variants
    /// exist only with a backend's feature.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::NameTaken { .. }
            | StoreError::SchemaTooNew { .. }
            | StoreError::InvalidKey { .. } => false,
            #[cfg(any(feature = "sqlite", feature = "etcd"))]
            StoreError::Codec { .. } => false,
            #[cfg(feature = "etcd")]
            StoreError::ForeignKey { .. } | StoreError::InvalidConfig(_) => false,
            // Fenced: this control plane no longer leads; the request, sent
            // again, reaches the leader through the follower's forwarding.
            #[cfg(feature = "etcd")]
            StoreError::Etcd(_)
            | StoreError::Contended { .. }
            | StoreError::LeaseLost { .. }
            | StoreError::Fenced { .. } => true,
            #[cfg(feature = "sqlite")]
            StoreError::Sqlite(_) | StoreError::Pool(_) => true,
            StoreError::Open { .. } | StoreError::Worker(_) | StoreError::NotInitialized => true,
        }
    }
}

impl From<StoreError> for OrchestrationError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NameTaken { name, existing } => OrchestrationError::Conflict {
                kind: "workload",
                id: name,
                message: format!("name is used by workload {existing}"),
            },
            StoreError::InvalidKey { field, len } => OrchestrationError::InvalidArgument {
                field: format!("record {field}"),
                message: format!("{len} bytes, must be 1 to {MAX_RECORD_KEY_BYTES} bytes long"),
            },
            other => OrchestrationError::Store(other.to_string()),
        }
    }
}

/// The most bytes a record kind or key may have.
pub const MAX_RECORD_KEY_BYTES: usize = 256;

/// Checks a record's kind and key: each must be 1 to [`MAX_RECORD_KEY_BYTES`]
/// bytes long, else [`StoreError::InvalidKey`]. Every store calls it before it
/// touches a record, so that all refuse the same names.
pub fn check_record_key(kind: &str, key: &str) -> Result<()> {
    check_record_kind(kind)?;
    check_record_name("key", key)
}

/// Checks a record kind alone (for [`StateStore::list_records`]).
pub fn check_record_kind(kind: &str) -> Result<()> {
    check_record_name("kind", kind)
}

fn check_record_name(field: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_RECORD_KEY_BYTES {
        return Err(StoreError::InvalidKey {
            field,
            len: name.len(),
        });
    }
    Ok(())
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Durable cluster state.
///
/// Every write is durable when it returns `Ok`; node, workload and instance
/// writes are then published on [`StateStore::watch`], record writes are not.
/// Puts are upserts; deletes of absent keys return `Ok(false)`. Lists are
/// ordered by id (records: by key, compared as bytes).
///
/// Records are control-plane data that is neither node, workload nor instance
/// (agent policies, revoked token ids, pending approvals): text, meant to be
/// JSON, stored as given under a `kind` and a `key` that are each 1 to
/// [`MAX_RECORD_KEY_BYTES`] bytes long; other names fail with
/// [`StoreError::InvalidKey`].
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Opens, creates or migrates the store.
    async fn initialize(&self) -> Result<()>;
    /// Whether the store answers.
    async fn health_check(&self) -> Result<()>;

    /// Writes a node record.
    async fn put_node(&self, node: &Node) -> Result<()>;
    /// A node record.
    async fn get_node(&self, id: &NodeId) -> Result<Option<Node>>;
    /// Every node record.
    async fn list_nodes(&self) -> Result<Vec<Node>>;
    /// Deletes a node record.
    async fn delete_node(&self, id: &NodeId) -> Result<bool>;

    /// Creates or replaces a workload. Fails with [`StoreError::NameTaken`] if
    /// another workload of the same owner has its name.
    async fn put_workload(&self, workload: &WorkloadDefinition) -> Result<()>;
    /// Creates or replaces many workloads in one transaction (all or nothing).
    async fn put_workloads_batch(&self, workloads: &[WorkloadDefinition]) -> Result<()>;
    /// A workload by id.
    async fn get_workload(&self, id: &WorkloadId) -> Result<Option<WorkloadDefinition>>;
    /// A workload by owner and name.
    async fn get_workload_by_name(
        &self,
        owner: &PublicKey,
        name: &str,
    ) -> Result<Option<WorkloadDefinition>>;
    /// Every workload.
    async fn list_workloads(&self) -> Result<Vec<WorkloadDefinition>>;
    /// Deletes a workload (its instances stay until deleted).
    async fn delete_workload(&self, id: &WorkloadId) -> Result<bool>;

    /// Creates or replaces an instance.
    async fn put_instance(&self, instance: &WorkloadInstance) -> Result<()>;
    /// Creates or replaces many instances in one transaction (all or nothing).
    async fn put_instances_batch(&self, instances: &[WorkloadInstance]) -> Result<()>;
    /// An instance by id.
    async fn get_instance(&self, id: &InstanceId) -> Result<Option<WorkloadInstance>>;
    /// The instances of one workload (indexed: cost grows with that workload only).
    async fn list_instances_by_workload(&self, id: &WorkloadId) -> Result<Vec<WorkloadInstance>>;
    /// The instances placed on one node (indexed).
    async fn list_instances_by_node(&self, id: &NodeId) -> Result<Vec<WorkloadInstance>>;
    /// Every instance.
    async fn list_instances(&self) -> Result<Vec<WorkloadInstance>>;
    /// Deletes an instance.
    async fn delete_instance(&self, id: &InstanceId) -> Result<bool>;
    /// Deletes many instances in one transaction; returns how many existed.
    async fn delete_instances_batch(&self, ids: &[InstanceId]) -> Result<usize>;

    /// Creates or replaces the record `key` of `kind` (JSON text); durable when Ok.
    async fn put_record(&self, kind: &str, key: &str, value: &str) -> Result<()>;
    /// The record `key` of `kind`.
    async fn get_record(&self, kind: &str, key: &str) -> Result<Option<String>>;
    /// Every record of `kind`, ordered by key.
    async fn list_records(&self, kind: &str) -> Result<Vec<(String, String)>>;
    /// Deletes a record; whether it existed.
    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool>;
    /// Every kind that has at least one record, sorted (byte order): what a
    /// copy of the whole store (a migration) must list.
    async fn list_record_kinds(&self) -> Result<Vec<String>>;

    /// Changes from now on. A receiver that lags must re-list.
    fn watch(&self) -> broadcast::Receiver<StoreChange>;
}
