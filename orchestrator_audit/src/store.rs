//! The store backend: one record of kind [`RECORD_KIND`] per entry, keyed by
//! its sequence number zero-padded to 20 digits ([`record_key`]), so that
//! the store's key order is the chain's order.
//!
//! An append writes the record and only then advances the tail. A write
//! that fails leaves the tail where it was, so the next append takes the same
//! sequence number; but a failed write may still have landed (a request that
//! timed out after the store committed it), so the next append first reads
//! that record: if it holds the entry that seemed lost, the chain goes on
//! after it; if it holds another entry, something else writes to this log and
//! the append is refused ([`AuditError::Overtaken`]) rather than overwrite it.

use std::sync::Arc;

use state_store_interface::StateStore;
use tokio::sync::OwnedMutexGuard;

use crate::chain::{record_key, Draft, Tail};
use crate::{AuditEntry, AuditError};

#[cfg(test)]
mod flaky;
#[cfg(test)]
mod tests;

/// Record kind of the entries.
pub const RECORD_KIND: &str = "audit";

/// Every record of the log, oldest first: its key and the entry it holds.
/// A record that is not an entry is [`AuditError::Broken`] at its place.
pub(crate) async fn read(store: &dyn StateStore) -> Result<Vec<(String, AuditEntry)>, AuditError> {
    let records = store
        .list_records(RECORD_KIND)
        .await
        .map_err(|source| AuditError::Store {
            doing: "listing the entries".into(),
            source,
        })?;
    let mut out = Vec::with_capacity(records.len());
    for (key, value) in records {
        let e = serde_json::from_str(&value).map_err(|err| AuditError::Broken {
            seq: out.len() as u64 + 1,
            reason: format!("record {key} is not an entry: {err}"),
        })?;
        out.push((key, e));
    }
    Ok(out)
}

/// Writes the next entry, then advances the tail (see the module doc).
pub(crate) async fn append(
    store: Arc<dyn StateStore>,
    mut tail: OwnedMutexGuard<Tail>,
    draft: Draft,
) -> Result<AuditEntry, AuditError> {
    if let Some(unsure) = tail.unsure.take() {
        let key = record_key(unsure.seq);
        let found = match store.get_record(RECORD_KIND, &key).await {
            Ok(found) => found,
            Err(source) => {
                tail.unsure = Some(unsure);
                return Err(AuditError::Store {
                    doing: format!("reading back entry {key}, whose write failed"),
                    source,
                });
            }
        };
        if let Some(value) = found {
            match serde_json::from_str::<AuditEntry>(&value) {
                Ok(e) if e.hash == unsure.hash => tail.advance(&e),
                _ => {
                    let seq = unsure.seq;
                    tail.unsure = Some(unsure);
                    return Err(AuditError::Overtaken { seq });
                }
            }
        }
    }
    let e = tail.seal(draft);
    let value = serde_json::to_string(&e).map_err(AuditError::Encode)?;
    let key = record_key(e.seq);
    match store.put_record(RECORD_KIND, &key, &value).await {
        Ok(()) => {
            tail.advance(&e);
            Ok(e)
        }
        Err(source) => {
            tail.unsure = Some(e);
            Err(AuditError::Store {
                doing: format!("writing entry {key}"),
                source,
            })
        }
    }
}
