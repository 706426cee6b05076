//! The hash chain, whatever holds it: how an entry is sealed onto the tail,
//! and how a sequence of entries is checked.

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::{AuditEntry, AuditError, Call};

/// Hash before the first entry.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest argument text kept per entry.
const MAX_ARGS: usize = 8 * 1024;

/// The hash of `e`: SHA-256 over `prev` and every other field but `hash`,
/// each prefixed by its length so that no two entries share an input.
pub(crate) fn entry_hash(e: &AuditEntry) -> String {
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

/// The key of entry `seq` in the store (and the cursor of the REST listing):
/// zero-padded to 20 digits, so that key order is sequence order.
pub(crate) fn record_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// The last entry written: what the next one follows.
#[derive(Debug)]
pub(crate) struct Tail {
    /// Its sequence number (0 before the first entry).
    pub(crate) seq: u64,
    /// Its hash ([`GENESIS`] before the first entry).
    pub(crate) hash: String,
    /// An entry whose write failed but may have landed nonetheless (a store
    /// write that timed out can have committed): the next append looks
    /// before it reuses the sequence number. Store backend only.
    pub(crate) unsure: Option<AuditEntry>,
}

impl Tail {
    /// The tail of a chain that ends with `last` (empty when `None`).
    pub(crate) fn after(last: Option<&AuditEntry>) -> Self {
        let (seq, hash) = last.map_or((0, GENESIS.to_owned()), |e| (e.seq, e.hash.clone()));
        Self {
            seq,
            hash,
            unsure: None,
        }
    }

    /// The next entry of the chain, not yet written.
    pub(crate) fn seal(&self, draft: Draft) -> AuditEntry {
        let mut e = AuditEntry {
            seq: self.seq + 1,
            time: Utc::now(),
            key: draft.key,
            agent: draft.agent,
            action: draft.action,
            args: draft.args,
            decision: draft.decision.to_owned(),
            status: draft.status,
            prev: self.hash.clone(),
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        e
    }

    /// `e` was written: the next entry follows it.
    pub(crate) fn advance(&mut self, e: &AuditEntry) {
        self.seq = e.seq;
        self.hash.clone_from(&e.hash);
    }
}

/// A call's contents, owned, before it gets its place in the chain.
#[derive(Debug)]
pub(crate) struct Draft {
    key: Option<String>,
    agent: Option<String>,
    action: String,
    args: String,
    decision: &'static str,
    status: u16,
}

impl From<Call<'_>> for Draft {
    fn from(call: Call<'_>) -> Self {
        let mut args = String::from_utf8_lossy(call.body).into_owned();
        if args.len() > MAX_ARGS {
            let mut cut = MAX_ARGS;
            while !args.is_char_boundary(cut) {
                cut -= 1;
            }
            args.truncate(cut);
            args.push('…');
        }
        Self {
            key: call.key,
            agent: call.agent,
            action: format!("{} {}", call.method, call.path),
            args,
            decision: call.decision.as_str(),
            status: call.status,
        }
    }
}

/// Checks a chain from its first entry; `Ok(n)` with the number of entries.
///
/// Each item is an entry and, for the store backend, the key of the record
/// that holds it, which must be [`record_key`] of its place. The error names
/// the first sequence number at which the chain is not what it should be.
pub(crate) fn verify_chain<'a>(
    entries: impl IntoIterator<Item = (&'a AuditEntry, Option<&'a str>)>,
) -> Result<u64, AuditError> {
    let mut prev = GENESIS;
    let mut n = 0;
    for (e, key) in entries {
        let due = n + 1;
        let broken = |reason: String| AuditError::Broken { seq: due, reason };
        if let Some(key) = key.filter(|k| *k != record_key(due)) {
            return Err(broken(format!(
                "record {key} where record {} was due (an entry removed, added or moved)",
                record_key(due)
            )));
        }
        if e.seq != due {
            return Err(broken(format!(
                "entry {} found where {due} was due (an entry removed or moved)",
                e.seq
            )));
        }
        if e.prev != prev {
            return Err(broken(
                "it does not follow the entry before it (that one or this one was changed)".into(),
            ));
        }
        if entry_hash(e) != e.hash {
            return Err(broken("its contents do not match its hash (edited)".into()));
        }
        prev = &e.hash;
        n = due;
    }
    Ok(n)
}

/// Checks that a chain (already verified) still holds the entry this log
/// last wrote: catches entries removed from the end, or an end rewritten
/// with its hashes recomputed, which the chain alone cannot show.
pub(crate) fn check_reaches(
    entries: &[AuditEntry],
    seq: u64,
    hash: &str,
) -> Result<(), AuditError> {
    let Some(index) = seq.checked_sub(1) else {
        return Ok(());
    };
    match usize::try_from(index).ok().and_then(|i| entries.get(i)) {
        None => Err(AuditError::Broken {
            seq: entries.len() as u64 + 1,
            reason: format!(
                "the log ends at entry {} but entry {seq} was written (entries removed from its end)",
                entries.len()
            ),
        }),
        Some(e) if e.hash != hash => Err(AuditError::Broken {
            seq,
            reason: "it is not the entry this log wrote (the chain was rewritten up to here)"
                .into(),
        }),
        Some(_) => Ok(()),
    }
}
