//! The audit log: every mutating API call (and so every MCP tool call that
//! changes something, since the tools act through the API) — who, what, with
//! which arguments, what was decided, the result, when — appended as one
//! [`AuditEntry`] per call.
//!
//! It is tamper-evident: each entry carries the SHA-256 of the previous
//! entry's hash and its own contents, so editing, removing or reordering an
//! entry breaks the chain from there on ([`AuditLog::verify`]). A log whose
//! chain does not verify is not opened. Each entry is durable before
//! [`AuditLog::append`] returns, so before the answer leaves the daemon.
//!
//! - `chain`: sealing an entry onto the tail, and checking a chain.
//! - `file`: [`AuditLog::open`], the default of a standalone daemon —
//!   `audit.log` in the data directory, one JSON entry per line, synced.
//! - `store`: [`AuditLog::in_store`], for control planes that share one state
//!   store — one record of kind [`RECORD_KIND`] per entry, keyed by its
//!   sequence number zero-padded to 20 digits.
//!
//! # One writer
//!
//! The chain is extended by one writer at a time: [`AuditLog`] serialises
//! its own appends (the tail is locked from sealing an entry until it is
//! written), but two `AuditLog`s on one store would both extend the same
//! tail, and a store write is an upsert. The store backend therefore relies
//! on the control plane: only the elected leader appends (followers forward
//! API calls to it), and the leader's store is fenced, so a deposed leader's
//! writes fail instead of landing beside the new leader's. A new leader
//! opens the log with [`AuditLog::in_store`] when it starts leading, which
//! re-reads and re-verifies the chain and continues from its last entry; it
//! must not reuse an `AuditLog` opened during an earlier term.
//!
//! # What the chain cannot show
//!
//! The hashes are keyless, so whoever can write the file or the store can
//! remove the last entries, or rewrite the end of the chain and recompute its
//! hashes; a freshly opened log cannot tell. A running log can: it remembers
//! the entry it last wrote, and [`AuditLog::verify`] fails if the chain no
//! longer reaches it.
//!
//! Depends on nothing of the orchestrator but the API types and the
//! `StateStore` contract: it records what the REST layer hands it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use state_store_interface::{StateStore, StoreError};
use tokio::sync::Mutex;

mod chain;
mod file;
mod store;

use chain::{check_reaches, verify_chain, Draft, Tail};
use file::FileLog;

pub use orchestrator_api::AuditEntry;
pub use store::RECORD_KIND;

/// File name of the log inside the data directory.
pub const AUDIT_FILE: &str = "audit.log";

/// Why the log could not be read, written or verified.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading or writing the file failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the log's records in the state store failed.
    #[error("audit log in the state store: {doing}: {source}")]
    Store {
        /// What was being done.
        doing: String,
        /// The store's failure.
        #[source]
        source: StoreError,
    },
    /// An entry could not be encoded as JSON.
    #[error("encoding an audit entry: {0}")]
    Encode(#[source] serde_json::Error),
    /// The place of an entry whose write seemed to fail holds another entry:
    /// something else writes to this log (a second leader?), so this one
    /// stops rather than overwrite it.
    #[error("audit entry {seq} was written by another writer: this log no longer appends")]
    Overtaken {
        /// The sequence number taken.
        seq: u64,
    },
    /// The task writing or reading the log died (a panic, or the runtime
    /// shutting down).
    #[error("the audit log's task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// An entry cannot be read, or the chain is broken there.
    #[error("audit log broken at entry {seq}: {reason}")]
    Broken {
        /// The first sequence number at which the log is not what it should
        /// be (the place of an unreadable entry, or of a missing one).
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Result with [`AuditError`].
pub type Result<T, E = AuditError> = std::result::Result<T, E>;

/// Where the entries are kept.
enum Backend {
    File(Arc<FileLog>),
    Store(Arc<dyn StateStore>),
}

/// The append-only, hash-chained log.
pub struct AuditLog {
    backend: Backend,
    /// The last entry written. Locked from sealing an entry until it is
    /// durable (across the store's await: the chain is serial by nature).
    /// An append runs in a task of its own, from waiting for this lock to
    /// advancing the tail, so that a caller who goes away (a client that
    /// disconnects) neither loses its entry nor leaves one written but the
    /// tail not advanced.
    tail: Arc<Mutex<Tail>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("AuditLog");
        match &self.backend {
            Backend::File(file) => d.field("path", &file.path()),
            Backend::Store(_) => d.field("store_kind", &RECORD_KIND),
        };
        d.finish_non_exhaustive()
    }
}

/// What was decided about a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It ran and succeeded.
    Allowed,
    /// It was refused (or failed).
    Refused,
    /// It was held for the user's approval.
    PendingApproval,
    /// It ran because the user approved it.
    Approved,
}

impl Decision {
    /// The word in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Refused => "refused",
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
        }
    }
}

/// What a call was, for [`AuditLog::append`].
#[derive(Clone, Debug)]
pub struct Call<'a> {
    /// Caller's key as sent.
    pub key: Option<String>,
    /// Acting agent.
    pub agent: Option<String>,
    /// Method.
    pub method: &'a str,
    /// Path with query.
    pub path: &'a str,
    /// Body.
    pub body: &'a [u8],
    /// Status answered.
    pub status: u16,
    /// What was decided.
    pub decision: Decision,
}

impl AuditLog {
    /// Opens (or creates) `dir/audit.log`, checking the whole chain first: a
    /// daemon does not append to a log that was tampered with.
    pub fn open(dir: &Path) -> Result<Self> {
        let (file, entries) = FileLog::open(dir.join(AUDIT_FILE))?;
        verify_chain(entries.iter().map(|e| (e, None)))?;
        Ok(Self {
            backend: Backend::File(Arc::new(file)),
            tail: Arc::new(Mutex::new(Tail::after(entries.last()))),
        })
    }

    /// Opens the log kept in `store` (records of kind [`RECORD_KIND`]),
    /// checking the whole chain first, and continues it. The store must be
    /// initialised. Only one `AuditLog` may append to a store at a time: see
    /// the crate doc.
    pub async fn in_store(store: Arc<dyn StateStore>) -> Result<Self> {
        let records = store::read(store.as_ref()).await?;
        verify_chain(records.iter().map(|(k, e)| (e, Some(k.as_str()))))?;
        let tail = Tail::after(records.last().map(|(_, e)| e));
        Ok(Self {
            backend: Backend::Store(store),
            tail: Arc::new(Mutex::new(tail)),
        })
    }

    /// Appends one call; returns the entry once it is durable (synced to the
    /// file, or written to the store). If the write fails the error is
    /// returned and the next append takes the same sequence number.
    pub async fn append(&self, call: Call<'_>) -> Result<AuditEntry> {
        let draft = Draft::from(call);
        let tail = Arc::clone(&self.tail);
        match &self.backend {
            Backend::File(file) => {
                let file = Arc::clone(file);
                tokio::task::spawn_blocking(move || file.append(tail.blocking_lock_owned(), draft))
                    .await
                    .map_err(AuditError::Task)?
            }
            Backend::Store(s) => {
                let s = Arc::clone(s);
                tokio::spawn(async move { store::append(s, tail.lock_owned().await, draft).await })
                    .await
                    .map_err(AuditError::Task)?
            }
        }
    }

    /// Every entry, oldest first, as it is stored now (checked only in that
    /// each is an entry).
    pub async fn entries(&self) -> Result<Vec<AuditEntry>> {
        match &self.backend {
            Backend::File(file) => {
                // Under the tail's lock, so that no line is half-written.
                let tail = Arc::clone(&self.tail).lock_owned().await;
                let file = Arc::clone(file);
                tokio::task::spawn_blocking(move || {
                    let entries = file.entries();
                    drop(tail);
                    entries
                })
                .await
                .map_err(AuditError::Task)?
            }
            Backend::Store(s) => Ok(store::read(s.as_ref())
                .await?
                .into_iter()
                .map(|(_, e)| e)
                .collect()),
        }
    }

    /// Checks the whole chain as it is stored now, and that it still reaches
    /// the last entry this log wrote; `Ok(n)` with the number of entries.
    pub async fn verify(&self) -> Result<u64> {
        // The tail first: entries appended meanwhile only lengthen the chain.
        let (seq, hash) = {
            let tail = self.tail.lock().await;
            (tail.seq, tail.hash.clone())
        };
        let entries = match &self.backend {
            Backend::File(_) => {
                let entries = self.entries().await?;
                verify_chain(entries.iter().map(|e| (e, None)))?;
                entries
            }
            Backend::Store(s) => {
                let records = store::read(s.as_ref()).await?;
                verify_chain(records.iter().map(|(k, e)| (e, Some(k.as_str()))))?;
                records.into_iter().map(|(_, e)| e).collect()
            }
        };
        check_reaches(&entries, seq, &hash)?;
        Ok(entries.len() as u64)
    }
}
