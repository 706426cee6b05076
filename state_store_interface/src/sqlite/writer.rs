//! The single writer: one thread, one connection, group commit.
//!
//! Callers send a [`WriteRequest`] and await its reply. The thread blocks for
//! the first request, then takes every request already queued, and applies
//! them all in one transaction, each inside its own savepoint: a request that
//! fails (a taken name, a constraint) is rolled back alone and gets its error,
//! the others go on. After `COMMIT` returns the writes are durable
//! (`synchronous=FULL`); only then does each request get its changes published
//! and its reply, in queue order. Concurrent writers so share one fsync.
//!
//! The thread ends when every sender is gone, that is when the store is dropped.

use std::sync::mpsc;

use rusqlite::{params, Connection};
use tokio::sync::{broadcast, oneshot};

use super::cache::{self, CacheOp, SharedCache};
use super::records::{InstanceRow, NodeRow, WorkloadRow};
use crate::{Result, StoreChange, StoreError};

/// Most requests applied in one transaction; more wait for the next one.
const MAX_GROUP: usize = 4096;

/// One write, with its rows already encoded.
#[derive(Debug)]
pub(crate) enum WriteOp {
    /// Upsert a node.
    PutNode(NodeRow),
    /// Delete a node.
    DeleteNode(String, StoreChange),
    /// Upsert workloads, all or nothing.
    PutWorkloads(Vec<WorkloadRow>),
    /// Delete a workload.
    DeleteWorkload(String, StoreChange),
    /// Upsert instances, all or nothing.
    PutInstances(Vec<InstanceRow>),
    /// Delete instances, all or nothing.
    DeleteInstances(Vec<String>),
    /// Upsert a record; not published.
    PutRecord {
        /// Its kind.
        kind: String,
        /// Its key.
        key: String,
        /// Its value.
        value: String,
    },
    /// Delete a record; not published.
    DeleteRecord {
        /// Its kind.
        kind: String,
        /// Its key.
        key: String,
    },
    /// Nothing: answers once the writer has run a transaction (health check).
    Ping,
}

/// What a write did.
#[derive(Debug, Default)]
pub(crate) struct WriteOutcome {
    /// Rows deleted (for deletes).
    pub(crate) deleted: usize,
    /// Changes to publish once committed.
    changes: Vec<StoreChange>,
    /// Changes to the workload cache once committed.
    cache: Vec<CacheOp>,
}

/// A write and where to send its result.
#[derive(Debug)]
pub(crate) struct WriteRequest {
    /// The write.
    pub(crate) op: WriteOp,
    /// Gets the result once the transaction holding the write has committed.
    pub(crate) reply: oneshot::Sender<Result<WriteOutcome>>,
}

/// Runs the writer loop until the request channel closes.
pub(crate) fn run(
    mut conn: Connection,
    requests: mpsc::Receiver<WriteRequest>,
    changes: broadcast::Sender<StoreChange>,
    workloads: SharedCache,
) {
    let mut group = Vec::new();
    while let Ok(first) = requests.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let mut results = apply_group(&mut conn, &group);
        // Committed: the cache follows before anyone is told.
        cache::write(&workloads, |c| {
            for outcome in results.iter_mut().flatten() {
                for op in outcome.cache.drain(..) {
                    c.apply(op);
                }
            }
        });
        for (request, result) in group.drain(..).zip(results) {
            if let Ok(outcome) = &result {
                for change in &outcome.changes {
                    if changes.send(change.clone()).is_err() {
                        tracing::trace!("no watcher for store change");
                    }
                }
            }
            if request.reply.send(result).is_err() {
                tracing::debug!("a state store writer stopped waiting for its reply");
            }
        }
    }
    tracing::debug!("state store writer thread ends: the store was dropped");
}

/// Applies a group in one transaction; one result per request, in order.
fn apply_group(conn: &mut Connection, group: &[WriteRequest]) -> Vec<Result<WriteOutcome>> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "beginning a state store write transaction");
        return group.iter().map(|_| Err(copy_error(&e))).collect();
    }
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        match apply_in_savepoint(conn, &request.op) {
            Ok(result) => results.push(result),
            Err(e) => {
                // The savepoint machinery itself failed: give up the transaction.
                tracing::error!(error = %e, "state store savepoint failed; rolling back the group");
                rollback(conn);
                return group.iter().map(|_| Err(copy_error(&e))).collect();
            }
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        tracing::error!(error = %e, "committing a state store write transaction");
        rollback(conn);
        return results
            .into_iter()
            .map(|r| match r {
                Ok(_) => Err(copy_error(&e)),
                Err(failed) => Err(failed),
            })
            .collect();
    }
    results
}

/// Runs one request inside a savepoint. The outer `Err` means the savepoint
/// could not be managed; the inner result is the request's own.
fn apply_in_savepoint(conn: &Connection, op: &WriteOp) -> rusqlite::Result<Result<WriteOutcome>> {
    conn.execute_batch("SAVEPOINT request")?;
    match apply(conn, op) {
        Ok(outcome) => {
            conn.execute_batch("RELEASE request")?;
            Ok(Ok(outcome))
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO request; RELEASE request")?;
            Ok(Err(e))
        }
    }
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rolling back a state store write transaction");
        }
    }
}

/// A copy of `e` for each request of a failed group (`rusqlite::Error` is not `Clone`).
fn copy_error(e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        other => StoreError::Worker(format!("state store write transaction failed: {other}")),
    }
}

fn apply(conn: &Connection, op: &WriteOp) -> Result<WriteOutcome> {
    let mut out = WriteOutcome::default();
    match op {
        WriteOp::Ping => {}
        WriteOp::PutNode(row) => {
            conn.prepare_cached(
                "INSERT INTO nodes (id, data) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![row.id, row.data])?;
            out.changes.push(row.change.clone());
        }
        WriteOp::DeleteNode(id, change) => {
            out.deleted = conn
                .prepare_cached("DELETE FROM nodes WHERE id = ?1")?
                .execute([id])?;
            if out.deleted > 0 {
                out.changes.push(change.clone());
            }
        }
        WriteOp::PutWorkloads(rows) => {
            for row in rows {
                put_workload(conn, row)?;
                out.changes.push(row.change.clone());
                out.cache.push(CacheOp::Put(row.value.clone()));
            }
        }
        WriteOp::DeleteWorkload(id, change) => {
            out.deleted = conn
                .prepare_cached("DELETE FROM workloads WHERE id = ?1")?
                .execute([id])?;
            if out.deleted > 0 {
                if let StoreChange::WorkloadDeleted(wid) = change {
                    out.cache.push(CacheOp::Delete(*wid));
                }
                out.changes.push(change.clone());
            }
        }
        WriteOp::PutInstances(rows) => {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO instances (id, workload_id, node_id, data) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET workload_id = excluded.workload_id,
                     node_id = excluded.node_id, data = excluded.data",
            )?;
            for row in rows {
                stmt.execute(params![row.id, row.workload_id, row.node_id, row.data])?;
                out.changes.push(row.change.clone());
            }
        }
        WriteOp::DeleteInstances(ids) => {
            let mut stmt =
                conn.prepare_cached("DELETE FROM instances WHERE id = ?1 RETURNING workload_id")?;
            for id in ids {
                let workload: Option<String> =
                    stmt.query_map([id], |row| row.get(0))?.next().transpose()?;
                if let Some(workload) = workload {
                    out.deleted += 1;
                    out.changes
                        .push(InstanceRow::deleted_change(id, &workload)?);
                }
            }
        }
        WriteOp::PutRecord { kind, key, value } => {
            conn.prepare_cached(
                "INSERT INTO records (kind, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![kind, key, value])?;
        }
        WriteOp::DeleteRecord { kind, key } => {
            out.deleted = conn
                .prepare_cached("DELETE FROM records WHERE kind = ?1 AND key = ?2")?
                .execute(params![kind, key])?;
        }
    }
    Ok(out)
}

fn put_workload(conn: &Connection, row: &WorkloadRow) -> Result<()> {
    let holder: Option<String> = conn
        .prepare_cached("SELECT id FROM workloads WHERE owner = ?1 AND name = ?2 AND id <> ?3")?
        .query_map(params![row.owner, row.name, row.id], |r| r.get(0))?
        .next()
        .transpose()?;
    if let Some(holder) = holder {
        return Err(StoreError::NameTaken {
            name: row.name.clone(),
            existing: super::records::parse_id(&holder, "workload")?,
        });
    }
    conn.prepare_cached(
        "INSERT INTO workloads (id, owner, name, generation, data) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, name = excluded.name,
             generation = excluded.generation, data = excluded.data",
    )?
    .execute(params![
        row.id,
        row.owner,
        row.name,
        row.generation,
        row.data
    ])?;
    Ok(())
}
