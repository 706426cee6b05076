//! The mutual-credit ledger of the control plane (MYCELIAL.md §3 "Ledger"):
//! a [`Ledger`] whose every accepted entry is stored in the StateStore before
//! it takes effect (prepare → store → commit), and rebuilt by replaying those
//! records at start — the replay checks each record's state hash.
//!
//! Credit limits are ledger entries too (`SetLimit`, signed by this control
//! plane's node key, the ledger's authority): an operator with no attestation
//! from another operator has limit 0; one with an attestation has L0.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use ed25519_dalek::SigningKey;
use mycelial::engine::Reputation;
use mycelial::ledger::{
    credit_limit, AccountSummary, Applied, Control, ControlAction, Entry, HistoryItem, Ledger,
    LedgerError, LimitParams, Record, SetLimit, RECORD_KIND,
};
use orchestrator_shared_types::PublicKey;
use state_store_interface::{StateStore, StoreError};
use tracing::{info, warn};

/// Why a credit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    /// The ledger refused the entry (nothing changed).
    #[error(transparent)]
    Refused(#[from] LedgerError),
    /// The store failed (nothing changed).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored ledger does not replay.
    #[error("the stored credit ledger does not replay: {0}")]
    Replay(String),
}

/// The ledger and where it is kept.
pub struct Credits {
    ledger: tokio::sync::Mutex<Ledger>,
    store: Arc<dyn StateStore>,
    key: SigningKey,
    params: LimitParams,
}

impl std::fmt::Debug for Credits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credits").finish_non_exhaustive()
    }
}

impl Credits {
    /// The ledger `ledger_id` stored in `store` (replayed), with `key` as its authority.
    pub async fn open(
        store: Arc<dyn StateStore>,
        key: SigningKey,
        ledger_id: &str,
    ) -> Result<Self, CreditError> {
        let authority = PublicKey(key.verifying_key().to_bytes());
        let mut records = Vec::new();
        for (k, text) in store.list_records(RECORD_KIND).await? {
            let r: Record = serde_json::from_str(&text)
                .map_err(|e| CreditError::Replay(format!("record {k}: {e}")))?;
            records.push(r);
        }
        let ledger = Ledger::replay(ledger_id.to_owned(), authority, records.iter())
            .map_err(|e| CreditError::Replay(e.to_string()))?;
        info!(entries = records.len(), state = %ledger.state_hash().to_hex(), "credit ledger replayed");
        Ok(Self {
            ledger: tokio::sync::Mutex::new(ledger),
            store,
            key,
            params: LimitParams::default(),
        })
    }

    /// The ledger's id.
    pub async fn id(&self) -> String {
        self.ledger.lock().await.id().to_owned()
    }

    /// Applies `entry`: checked, stored, then committed; nothing changes if
    /// any step fails.
    pub async fn apply(&self, entry: &Entry) -> Result<Applied, CreditError> {
        let mut ledger = self.ledger.lock().await;
        let prepared = ledger.prepare(entry, Utc::now())?;
        let record = prepared.record();
        let text = serde_json::to_string(record)
            .map_err(|e| CreditError::Replay(format!("encoding a record: {e}")))?;
        self.store
            .put_record(
                RECORD_KIND,
                &mycelial::ledger::record_key(record.seq),
                &text,
            )
            .await?;
        Ok(ledger.commit(prepared)?.clone())
    }

    /// `who`'s balance, holds, limit and next nonce.
    pub async fn summary(&self, who: &PublicKey) -> AccountSummary {
        self.ledger.lock().await.summary(who)
    }

    /// A page of `who`'s history after sequence `after`.
    pub async fn history(
        &self,
        who: &PublicKey,
        after: u64,
        limit: usize,
    ) -> (Vec<HistoryItem>, Option<u64>) {
        self.ledger
            .lock()
            .await
            .history_page(&mycelial::ledger::Account::Key(*who), after, limit)
    }

    /// Sets each operator's limit from the evidence: 0 without an unexpired
    /// attestation from another operator, L0 (plus earnings, once settled
    /// work is recorded) with one. Only changes are written.
    pub async fn refresh_limits(&self, engine: &Reputation) {
        let now = Utc::now();
        let log = engine.snapshot();
        let mut operators: BTreeSet<PublicKey> = BTreeSet::new();
        for e in log.entries() {
            match e {
                mycelial::evidence::Entry::Node(r) => {
                    operators.insert(r.operator);
                }
                mycelial::evidence::Entry::Attestation(a) => {
                    operators.insert(a.body.subject);
                }
                mycelial::evidence::Entry::Observation(_) => {}
            }
        }
        for op in operators {
            let attested = log.attestations_of(&op, now).next().is_some();
            let want = credit_limit(attested, 0.0, 0, &self.params);
            let (current, nonce, id) = {
                let l = self.ledger.lock().await;
                (l.limit(&op), l.control_nonce() + 1, l.id().to_owned())
            };
            if current == want {
                continue;
            }
            let entry = Entry::Control(
                Control {
                    ledger: id,
                    nonce,
                    action: ControlAction::SetLimit(SetLimit {
                        account: op,
                        limit: want,
                    }),
                }
                .sign(&self.key),
            );
            if let Err(e) = self.apply(&entry).await {
                warn!(operator = %op, error = %e, "setting a credit limit");
            }
        }
    }
}
