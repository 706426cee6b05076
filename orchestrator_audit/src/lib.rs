//! The audit log: every mutating API call (and so every MCP tool call that
//! changes something, since the tools act through the API) — who, what, with
//! which arguments, what was decided, the result, when — appended to
//! `audit.log` in the data directory, one JSON object per line.
//!
//! It is tamper-evident: each entry carries the SHA-256 of the previous
//! entry's hash and its own contents, so editing, removing or reordering an
//! entry breaks the chain from there on ([`AuditLog::verify`]). Each entry is
//! written and synced before the answer leaves the daemon.
//!
//! Depends on nothing of the orchestrator: it records what the REST layer
//! hands it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::Utc;
use sha2::{Digest, Sha256};

/// File name of the log inside the data directory.
pub const AUDIT_FILE: &str = "audit.log";
/// Hash before the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest argument text kept per entry.
const MAX_ARGS: usize = 8 * 1024;

pub use orchestrator_api::AuditEntry;

fn entry_hash(e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    for part in [
        e.prev.as_str(),
        &e.seq.to_string(),
        &e.time.to_rfc3339(),
        e.key.as_deref().unwrap_or(""),
        e.agent.as_deref().unwrap_or(""),
        &e.action,
        &e.args,
        &e.decision,
        &e.status.to_string(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

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
    /// A line is not an entry, or the chain is broken there.
    #[error("audit log broken at entry {seq}: {reason}")]
    Broken {
        /// The first entry that does not verify (its line number if unreadable).
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

struct Tail {
    file: File,
    seq: u64,
    hash: String,
}

/// The append-only, hash-chained log.
pub struct AuditLog {
    path: PathBuf,
    tail: Mutex<Tail>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
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
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        let path = dir.join(AUDIT_FILE);
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        let entries = if path.exists() {
            Self::read(&path)?
        } else {
            Vec::new()
        };
        verify_chain(&entries)?;
        let (seq, hash) = entries
            .last()
            .map_or((0, GENESIS.to_owned()), |e| (e.seq, e.hash.clone()));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        Ok(Self {
            path,
            tail: Mutex::new(Tail { file, seq, hash }),
        })
    }

    /// Appends one call and syncs it to disk; returns the entry.
    pub fn append(&self, call: Call<'_>) -> Result<AuditEntry, AuditError> {
        let mut tail = self
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut args = String::from_utf8_lossy(call.body).into_owned();
        if args.len() > MAX_ARGS {
            let mut cut = MAX_ARGS;
            while !args.is_char_boundary(cut) {
                cut -= 1;
            }
            args.truncate(cut);
            args.push('…');
        }
        let mut e = AuditEntry {
            seq: tail.seq + 1,
            time: Utc::now(),
            key: call.key,
            agent: call.agent,
            action: format!("{} {}", call.method, call.path),
            args,
            decision: call.decision.as_str().into(),
            status: call.status,
            prev: tail.hash.clone(),
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        let mut line = serde_json::to_vec(&e).unwrap_or_default();
        line.push(b'\n');
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        tail.file.write_all(&line).map_err(io)?;
        tail.file.sync_data().map_err(io)?;
        tail.seq = e.seq;
        tail.hash = e.hash.clone();
        Ok(e)
    }

    fn read(path: &Path) -> Result<Vec<AuditEntry>, AuditError> {
        let file = File::open(path).map_err(|source| AuditError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut out = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| AuditError::Io {
                path: path.to_owned(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let e = serde_json::from_str(&line).map_err(|err| AuditError::Broken {
                seq: n as u64 + 1,
                reason: format!("line {} is not an entry: {err}", n + 1),
            })?;
            out.push(e);
        }
        Ok(out)
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, AuditError> {
        let _tail = self
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::read(&self.path)
    }

    /// Checks the whole chain as it is on disk now; `Ok(n)` with the number of entries.
    pub fn verify(&self) -> Result<u64, AuditError> {
        let entries = self.entries()?;
        verify_chain(&entries)?;
        Ok(entries.len() as u64)
    }
}

fn verify_chain(entries: &[AuditEntry]) -> Result<(), AuditError> {
    let mut prev = GENESIS.to_owned();
    for (i, e) in entries.iter().enumerate() {
        let want_seq = i as u64 + 1;
        let broken = |reason: &str| AuditError::Broken {
            seq: e.seq,
            reason: reason.to_owned(),
        };
        if e.seq != want_seq {
            return Err(broken(&format!(
                "sequence {} where {want_seq} was due",
                e.seq
            )));
        }
        if e.prev != prev {
            return Err(broken("it does not follow the entry before it"));
        }
        if entry_hash(e) != e.hash {
            return Err(broken("its contents do not match its hash (edited)"));
        }
        prev = e.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(path: &str) -> Call<'_> {
        Call {
            key: Some("ab".into()),
            agent: None,
            method: "POST",
            path,
            body: b"{\"replicas\":3}",
            status: 200,
            decision: Decision::Allowed,
        }
    }

    #[test]
    fn entries_chain_and_an_edit_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.append(call("/api/v1/workloads/a/scale")).unwrap();
        log.append(call("/api/v1/workloads/b/scale")).unwrap();
        assert_eq!(log.verify().unwrap(), 2);
        drop(log);
        // Reopened, it goes on from the last entry.
        let log = AuditLog::open(dir.path()).unwrap();
        let e = log.append(call("/api/v1/workloads/c/scale")).unwrap();
        assert_eq!(e.seq, 3);
        assert_eq!(log.verify().unwrap(), 3);
        let path = dir.path().join(AUDIT_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen("\"replicas\\\":3", "\"replicas\\\":9", 1),
        )
        .unwrap();
        let err = log.verify().unwrap_err();
        assert!(matches!(err, AuditError::Broken { seq: 1, .. }), "{err}");
        assert!(
            AuditLog::open(dir.path()).is_err(),
            "a tampered log is not appended to"
        );
    }
}
