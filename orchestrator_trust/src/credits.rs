//! The mutual-credit ledger of the control plane (MYCELIAL.md §3 "Ledger"):
//! a [`Ledger`] whose every accepted entry is stored in the StateStore before
//! it takes effect (prepare → store → commit), and rebuilt by replaying those
//! records at start — the replay checks each record's state hash.
//!
//! Credit limits are ledger entries too (`SetLimit`, signed by this control
//! plane's node key, the ledger's authority): an operator with no attestation
//! from another operator has limit 0; one with an attestation has L0.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use mycelial::engine::Reputation;
use mycelial::ledger::{
    credit_limit, AccountSummary, Applied, Control, ControlAction, Entry, HistoryItem, Hold,
    Ledger, LedgerError, LimitParams, Record, SetLimit, RECORD_KIND,
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
    /// Each account's headroom (available + limit), for readers that may not
    /// wait (the scheduler); updated after every committed entry.
    headroom: std::sync::RwLock<HashMap<PublicKey, i64>>,
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
        let headroom = headroom_of(&ledger);
        Ok(Self {
            headroom: std::sync::RwLock::new(headroom),
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
        self.apply_locked(&mut ledger, entry).await
    }

    /// Signs `action` as the ledger's authority with the next control nonce
    /// and applies it, under one lock (so two control entries never race for
    /// a nonce).
    pub async fn apply_control(&self, action: ControlAction) -> Result<Applied, CreditError> {
        let mut ledger = self.ledger.lock().await;
        let entry = Entry::Control(
            Control {
                ledger: ledger.id().to_owned(),
                nonce: ledger.control_nonce() + 1,
                action,
            }
            .sign(&self.key),
        );
        self.apply_locked(&mut ledger, &entry).await
    }

    /// When the open hold `id` was placed (from its ledger record, searched
    /// from the newest); `None` if no such hold is open.
    pub async fn hold_placed(&self, id: &str) -> Option<DateTime<Utc>> {
        let ledger = self.ledger.lock().await;
        ledger.hold(id)?;
        ledger
            .log()
            .iter()
            .rev()
            .find_map(|a| match &a.record.entry {
                Entry::Control(c) => match &c.control.action {
                    ControlAction::Hold(h) if h.id == id => Some(a.record.at),
                    _ => None,
                },
                _ => None,
            })
    }

    /// Open holds with the time each was placed (from its ledger record).
    pub async fn open_holds(&self) -> Vec<(Hold, DateTime<Utc>)> {
        let ledger = self.ledger.lock().await;
        let mut placed: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for r in ledger.records() {
            if let Entry::Control(c) = &r.entry {
                if let ControlAction::Hold(h) = &c.control.action {
                    placed.insert(h.id.as_str(), r.at);
                }
            }
        }
        ledger
            .holds()
            .values()
            .filter_map(|h| placed.get(h.id.as_str()).map(|at| (h.clone(), *at)))
            .collect()
    }

    async fn apply_locked(
        &self,
        ledger: &mut Ledger,
        entry: &Entry,
    ) -> Result<Applied, CreditError> {
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
        let applied = ledger.commit(prepared)?.clone();
        let mut headroom = self
            .headroom
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for account in &applied.accounts {
            if let mycelial::ledger::Account::Key(k) = account {
                headroom.insert(*k, ledger.available(k).saturating_add(ledger.limit(k)));
            }
        }
        Ok(applied)
    }

    /// How much more `who` may set aside or pay (available + limit; 0 for
    /// an account the ledger has never seen), without waiting for the ledger.
    pub fn headroom(&self, who: &PublicKey) -> i64 {
        self.headroom
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(who)
            .copied()
            .unwrap_or(0)
    }

    /// The commons' balance (fees) and the sum of every balance (always 0).
    pub async fn commons_and_total(&self) -> (i64, i128) {
        let l = self.ledger.lock().await;
        (l.balance(&mycelial::ledger::Account::Commons), l.total())
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
        // Computed under the log's read lock, without copying the log.
        let wanted: Vec<(PublicKey, i64)> = engine.read(|log| {
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
            operators
                .into_iter()
                .map(|op| {
                    let attested = log.attestations_of(&op, now).next().is_some();
                    (op, credit_limit(attested, 0.0, 0, &self.params))
                })
                .collect()
        });
        for (op, want) in wanted {
            if self.ledger.lock().await.limit(&op) == want {
                continue;
            }
            let action = ControlAction::SetLimit(SetLimit {
                account: op,
                limit: want,
            });
            if let Err(e) = self.apply_control(action).await {
                warn!(operator = %op, error = %e, "setting a credit limit");
            }
        }
    }
}

/// Every account's headroom (available + limit) in `ledger`.
fn headroom_of(ledger: &Ledger) -> HashMap<PublicKey, i64> {
    let mut out = HashMap::new();
    let keys = ledger
        .balances()
        .keys()
        .filter_map(|a| match a {
            mycelial::ledger::Account::Key(k) => Some(*k),
            mycelial::ledger::Account::Commons => None,
        })
        .chain(ledger.limits().iter().map(|(k, _)| *k));
    for k in keys {
        out.insert(k, ledger.available(&k).saturating_add(ledger.limit(&k)));
    }
    out
}
