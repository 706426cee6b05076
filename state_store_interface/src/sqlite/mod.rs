//! [`SqliteStore`]: the embedded state store, one SQLite file.
//!
//! - `files`: the database and SQLite's `-wal` and `-shm` files are private
//!   to the daemon's user (mode 0600).
//! - Every connection runs with `journal_mode=WAL`, `synchronous=FULL` (an
//!   acknowledged write survives a power cut or `kill -9`), `foreign_keys=ON`
//!   and a 5 s `busy_timeout`.
//! - `schema`: versioned migrations, run by [`StateStore::initialize`].
//! - Reads take a connection from an r2d2 pool inside `spawn_blocking`.
//! - `writer`: every write goes to one writer thread, which commits all the
//!   writes queued at once in one transaction (group commit).
//! - `records`: rows encoded as JSON of the domain types.
//! - `cache`: every workload in memory, kept in step by the writer, so
//!   workload reads decode nothing.
//! - Generic records live in table `records` (migration 2), written through
//!   the writer like the rest and read through the pool; they are kept as the
//!   text given, not decoded.

mod cache;
mod files;
mod records;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use orchestrator_shared_types::private_fs;
use orchestrator_shared_types::{
    InstanceId, Node, NodeId, PublicKey, WorkloadDefinition, WorkloadId, WorkloadInstance,
};
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, ToSql};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, oneshot};

use self::records::{decode, InstanceRow, NodeRow, WorkloadRow};
use self::writer::{WriteOp, WriteOutcome, WriteRequest};
use crate::{check_record_key, check_record_kind, Result, StateStore, StoreChange, StoreError};

/// Capacity of the change feed; a watcher further behind than this lags.
const WATCH_CAPACITY: usize = 4096;
/// How long a connection waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most pooled read connections.
const READ_POOL_SIZE: u32 = 8;

/// A [`StateStore`] in one SQLite file.
///
/// [`SqliteStore::open`] only prepares; [`StateStore::initialize`] opens the
/// file, migrates it and starts the writer thread. The writer thread ends
/// when the store is dropped.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    changes: broadcast::Sender<StoreChange>,
    open: OnceLock<Opened>,
    /// Serialises `initialize` calls.
    init_lock: tokio::sync::Mutex<()>,
}

/// The parts that exist once initialised.
#[derive(Debug)]
struct Opened {
    reads: Pool<SqliteConnectionManager>,
    writes: mpsc::Sender<WriteRequest>,
    workloads: cache::SharedCache,
}

impl SqliteStore {
    /// A store for the database file at `path`, creating its parent
    /// directories (mode 0700). The file itself is opened by
    /// [`StateStore::initialize`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            private_fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: format!("creating directory {}: {e}", parent.display()),
            })?;
        }
        let (changes, _) = broadcast::channel(WATCH_CAPACITY);
        Ok(Self {
            path,
            changes,
            open: OnceLock::new(),
            init_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn opened(&self) -> Result<&Opened> {
        self.open.get().ok_or(StoreError::NotInitialized)
    }

    /// Runs `f` on a pooled read connection, off the async threads.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.opened()?.reads.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Worker(format!("state store read task: {e}")))?
    }

    /// Decoded records of one query.
    async fn query<T>(
        &self,
        sql: &'static str,
        arg: Option<String>,
        kind: &'static str,
    ) -> Result<Vec<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(sql)?;
            let args: Vec<&dyn ToSql> = arg.iter().map(|a| a as &dyn ToSql).collect();
            let rows = stmt.query_map(args.as_slice(), |row| row.get::<_, String>(0))?;
            rows.map(|data| decode(&data?, kind)).collect()
        })
        .await
    }

    /// The first decoded record of one query.
    async fn query_one<T>(
        &self,
        sql: &'static str,
        arg: String,
        kind: &'static str,
    ) -> Result<Option<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        Ok(self.query(sql, Some(arg), kind).await?.into_iter().next())
    }

    /// Sends a write to the writer thread and waits until it is committed.
    async fn write(&self, op: WriteOp) -> Result<WriteOutcome> {
        let (reply, done) = oneshot::channel();
        self.opened()?
            .writes
            .send(WriteRequest { op, reply })
            .map_err(|_| StoreError::Worker("the state store writer thread has stopped".into()))?;
        done.await.map_err(|_| {
            StoreError::Worker("the state store writer thread dropped a write unanswered".into())
        })?
    }

    fn open_error(&self, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Open {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Sets the pragmas every connection runs with; returns the journal mode
/// SQLite settled on (it can refuse WAL, e.g. on some network filesystems).
fn configure(conn: &Connection) -> rusqlite::Result<String> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(mode)
}

/// Opens the writer connection, migrates, builds the read pool and starts the
/// writer thread. Blocking.
fn open_blocking(path: &Path, changes: broadcast::Sender<StoreChange>) -> Result<Opened> {
    let shown = || path.display().to_string();
    let open_err = |what: &str, e: &dyn std::fmt::Display| StoreError::Open {
        path: shown(),
        reason: format!("{what}: {e}"),
    };
    files::make_private(path).map_err(|e| open_err("making the database private", &e))?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|e| open_err("opening the file", &e))?;
    let mode = configure(&conn).map_err(|e| open_err("configuring the connection", &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path: shown(),
            reason: format!("SQLite refused journal_mode=WAL and stays in {mode:?} mode"),
        });
    }
    match schema::migrate(&mut conn) {
        Ok(()) => {}
        Err(e @ StoreError::SchemaTooNew { .. }) => return Err(e),
        Err(e) => return Err(open_err("migrating the schema", &e)),
    }

    let manager = SqliteConnectionManager::file(path)
        .with_flags(flags)
        .with_init(|conn| configure(conn).map(drop));
    let reads = Pool::builder()
        .max_size(READ_POOL_SIZE)
        .min_idle(Some(0))
        .connection_timeout(BUSY_TIMEOUT)
        .build(manager)
        .map_err(|e| open_err("building the read connection pool", &e))?;

    let workloads = cache::SharedCache::default();
    load_workloads(&conn, &workloads).map_err(|e| open_err("loading workloads", &e))?;
    let (writes, requests) = mpsc::channel();
    let writer_cache = std::sync::Arc::clone(&workloads);
    std::thread::Builder::new()
        .name("state-store-writer".into())
        .spawn(move || writer::run(conn, requests, changes, writer_cache))
        .map_err(|e| open_err("starting the writer thread", &e))?;
    Ok(Opened {
        reads,
        writes,
        workloads,
    })
}

/// Fills the workload cache from the database.
fn load_workloads(conn: &Connection, workloads: &cache::SharedCache) -> Result<()> {
    let mut stmt = conn.prepare("SELECT data FROM workloads")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    cache::write(workloads, |c| -> Result<()> {
        for data in rows {
            let w: WorkloadDefinition = decode(&data?, "workload")?;
            c.apply(cache::CacheOp::Put(Box::new(w)));
        }
        Ok(())
    })
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn initialize(&self) -> Result<()> {
        let _guard = self.init_lock.lock().await;
        if self.open.get().is_some() {
            return Ok(());
        }
        let path = self.path.clone();
        let changes = self.changes.clone();
        let opened = tokio::task::spawn_blocking(move || open_blocking(&path, changes))
            .await
            .map_err(|e| self.open_error(format!("opening task failed: {e}")))??;
        // Only this call, holding the init lock, sets it.
        if self.open.set(opened).is_err() {
            tracing::warn!(path = %self.path.display(), "state store initialised twice at once");
        }
        tracing::info!(path = %self.path.display(), "state store open");
        Ok(())
    }

    async fn health_check(&self) -> Result<()> {
        // Both paths: a pooled reader answers, and the writer thread runs.
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
            .await?;
        self.write(WriteOp::Ping).await.map(drop)
    }

    async fn put_node(&self, node: &Node) -> Result<()> {
        self.write(WriteOp::PutNode(NodeRow::encode(node)?))
            .await
            .map(drop)
    }

    async fn get_node(&self, id: &NodeId) -> Result<Option<Node>> {
        self.query_one(
            "SELECT data FROM nodes WHERE id = ?1",
            id.to_string(),
            "node",
        )
        .await
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.query("SELECT data FROM nodes ORDER BY id", None, "node")
            .await
    }

    async fn delete_node(&self, id: &NodeId) -> Result<bool> {
        let op = WriteOp::DeleteNode(id.to_string(), StoreChange::NodeDeleted(*id));
        Ok(self.write(op).await?.deleted > 0)
    }

    async fn put_workload(&self, workload: &WorkloadDefinition) -> Result<()> {
        let row = WorkloadRow::encode(workload)?;
        self.write(WriteOp::PutWorkloads(vec![row])).await.map(drop)
    }

    async fn put_workloads_batch(&self, workloads: &[WorkloadDefinition]) -> Result<()> {
        if workloads.is_empty() {
            return self.opened().map(drop);
        }
        let rows = workloads
            .iter()
            .map(WorkloadRow::encode)
            .collect::<Result<_>>()?;
        self.write(WriteOp::PutWorkloads(rows)).await.map(drop)
    }

    async fn get_workload(&self, id: &WorkloadId) -> Result<Option<WorkloadDefinition>> {
        Ok(cache::read(&self.opened()?.workloads, |c| c.get(id)))
    }

    async fn get_workload_by_name(
        &self,
        owner: &PublicKey,
        name: &str,
    ) -> Result<Option<WorkloadDefinition>> {
        Ok(cache::read(&self.opened()?.workloads, |c| {
            c.get_by_name(owner, name)
        }))
    }

    async fn list_workloads(&self) -> Result<Vec<WorkloadDefinition>> {
        Ok(cache::read(
            &self.opened()?.workloads,
            cache::WorkloadCache::list,
        ))
    }

    async fn delete_workload(&self, id: &WorkloadId) -> Result<bool> {
        let op = WriteOp::DeleteWorkload(id.to_string(), StoreChange::WorkloadDeleted(*id));
        Ok(self.write(op).await?.deleted > 0)
    }

    async fn put_instance(&self, instance: &WorkloadInstance) -> Result<()> {
        let row = InstanceRow::encode(instance)?;
        self.write(WriteOp::PutInstances(vec![row])).await.map(drop)
    }

    async fn put_instances_batch(&self, instances: &[WorkloadInstance]) -> Result<()> {
        if instances.is_empty() {
            return self.opened().map(drop);
        }
        let rows = instances
            .iter()
            .map(InstanceRow::encode)
            .collect::<Result<_>>()?;
        self.write(WriteOp::PutInstances(rows)).await.map(drop)
    }

    async fn get_instance(&self, id: &InstanceId) -> Result<Option<WorkloadInstance>> {
        self.query_one(
            "SELECT data FROM instances WHERE id = ?1",
            id.to_string(),
            "instance",
        )
        .await
    }

    async fn list_instances_by_workload(&self, id: &WorkloadId) -> Result<Vec<WorkloadInstance>> {
        self.query(
            "SELECT data FROM instances WHERE workload_id = ?1 ORDER BY id",
            Some(id.to_string()),
            "instance",
        )
        .await
    }

    async fn list_instances_by_node(&self, id: &NodeId) -> Result<Vec<WorkloadInstance>> {
        self.query(
            "SELECT data FROM instances WHERE node_id = ?1 ORDER BY id",
            Some(id.to_string()),
            "instance",
        )
        .await
    }

    async fn list_instances(&self) -> Result<Vec<WorkloadInstance>> {
        self.query("SELECT data FROM instances ORDER BY id", None, "instance")
            .await
    }

    async fn delete_instance(&self, id: &InstanceId) -> Result<bool> {
        Ok(self
            .write(WriteOp::DeleteInstances(vec![id.to_string()]))
            .await?
            .deleted
            > 0)
    }

    async fn delete_instances_batch(&self, ids: &[InstanceId]) -> Result<usize> {
        if ids.is_empty() {
            return self.opened().map(|_| 0);
        }
        let ids = ids.iter().map(ToString::to_string).collect();
        Ok(self.write(WriteOp::DeleteInstances(ids)).await?.deleted)
    }

    async fn put_record(&self, kind: &str, key: &str, value: &str) -> Result<()> {
        check_record_key(kind, key)?;
        let op = WriteOp::PutRecord {
            kind: kind.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
        };
        self.write(op).await.map(drop)
    }

    async fn get_record(&self, kind: &str, key: &str) -> Result<Option<String>> {
        check_record_key(kind, key)?;
        let (kind, key) = (kind.to_owned(), key.to_owned());
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT value FROM records WHERE kind = ?1 AND key = ?2")?
                .query_row(params![kind, key], |row| row.get(0))
                .optional()?)
        })
        .await
    }

    async fn list_records(&self, kind: &str) -> Result<Vec<(String, String)>> {
        check_record_kind(kind)?;
        let kind = kind.to_owned();
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT key, value FROM records WHERE kind = ?1 ORDER BY key")?;
            let rows = stmt.query_map([kind], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool> {
        check_record_key(kind, key)?;
        let op = WriteOp::DeleteRecord {
            kind: kind.to_owned(),
            key: key.to_owned(),
        };
        Ok(self.write(op).await?.deleted > 0)
    }

    async fn list_record_kinds(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            // The primary key (kind, key) serves it; BINARY collation is byte order.
            let mut stmt =
                conn.prepare_cached("SELECT DISTINCT kind FROM records ORDER BY kind")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    fn watch(&self) -> broadcast::Receiver<StoreChange> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_is_durable_and_checked() {
        let dir = tempfile::TempDir::new().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        assert_eq!(configure(&conn).unwrap(), "wal");
        let pragma = |name: &str| -> i64 {
            conn.pragma_query_value(None, name, |row| row.get(0))
                .unwrap()
        };
        assert_eq!(pragma("synchronous"), 2, "synchronous=FULL");
        assert_eq!(pragma("foreign_keys"), 1, "foreign_keys=ON");
        assert_eq!(pragma("busy_timeout"), 5000, "busy_timeout of 5 s");
    }
}
