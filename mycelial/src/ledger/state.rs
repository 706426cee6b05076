//! The ledger's state: balances, holds, nonces, limits and the chained state
//! hash, plus the log of applied entries. Built empty by [`Ledger::new`] or
//! from a stored log by [`Ledger::replay`].

use std::collections::BTreeMap;

use orchestrator_shared_types::PublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::account::Account;
use super::apply::{Applied, Prepared};
use super::canonical::StateHash;
use super::control::Hold;
use super::entry::Record;
use super::limits::CreditLimits;
use super::{ReplayError, GENESIS_DOMAIN};

/// One account's figures, as `GET /api/v1/credits/balance` shows them (all
/// in milli-units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSummary {
    /// The account.
    pub account: PublicKey,
    /// Its balance.
    pub balance: i64,
    /// What its open holds set aside.
    pub held: i64,
    /// Balance minus holds.
    pub available: i64,
    /// Its credit limit: `available` may not be taken below `-limit`.
    pub limit: i64,
    /// The nonce its next transfer should carry.
    pub next_nonce: u64,
}

/// A mutual-credit ledger: a deterministic state machine over an ordered log
/// of entries. Two ledgers with the same id and authority that apply the same
/// entries at the same instants are equal, down to the state hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    id: String,
    authority: PublicKey,
    balances: BTreeMap<Account, i64>,
    held: BTreeMap<PublicKey, i64>,
    holds: BTreeMap<String, Hold>,
    nonces: BTreeMap<PublicKey, u64>,
    control_nonce: u64,
    limits: CreditLimits,
    state_hash: StateHash,
    log: Vec<Applied>,
    by_account: BTreeMap<Account, Vec<usize>>,
}

impl Ledger {
    /// An empty ledger `ledger_id` (the cluster's id) whose control entries
    /// (holds, settlements, limits) must be signed by `authority`.
    pub fn new(ledger_id: impl Into<String>, authority: PublicKey) -> Ledger {
        let id = ledger_id.into();
        let mut h = Sha256::new();
        h.update(GENESIS_DOMAIN.as_bytes());
        h.update(id.as_bytes());
        h.update(b"\n");
        h.update(authority.to_hex().as_bytes());
        Ledger {
            id,
            authority,
            balances: BTreeMap::new(),
            held: BTreeMap::new(),
            holds: BTreeMap::new(),
            nonces: BTreeMap::new(),
            control_nonce: 0,
            limits: CreditLimits::default(),
            state_hash: StateHash(h.finalize().into()),
            log: Vec::new(),
            by_account: BTreeMap::new(),
        }
    }

    /// Rebuilds a ledger from its stored records, in order. Each record is
    /// applied at its own `at` and must reproduce the state hash recorded with
    /// it, so a reordered, edited or foreign log is refused where it breaks.
    pub fn replay<'a>(
        ledger_id: impl Into<String>,
        authority: PublicKey,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<Ledger, ReplayError> {
        let mut ledger = Ledger::new(ledger_id, authority);
        for r in records {
            let expected = ledger.seq() + 1;
            if r.seq != expected {
                return Err(ReplayError::OutOfOrder {
                    expected,
                    got: r.seq,
                });
            }
            let p = ledger
                .prepare(&r.entry, r.at)
                .map_err(|source| ReplayError::Refused { seq: r.seq, source })?;
            if p.record().state_hash != r.state_hash {
                return Err(ReplayError::HashMismatch {
                    seq: r.seq,
                    recorded: r.state_hash.to_hex(),
                    computed: p.record().state_hash.to_hex(),
                });
            }
            ledger.write(p);
        }
        Ok(ledger)
    }

    /// The ledger's (cluster's) id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key that signs control entries.
    pub fn authority(&self) -> &PublicKey {
        &self.authority
    }

    /// The state hash: SHA-256 chained over every applied record.
    pub fn state_hash(&self) -> StateHash {
        self.state_hash
    }

    /// How many entries were applied (the last record's `seq`).
    pub fn seq(&self) -> u64 {
        self.log.len() as u64
    }

    /// Every account's balance in milli-units (accounts never touched are
    /// absent and have 0).
    pub fn balances(&self) -> &BTreeMap<Account, i64> {
        &self.balances
    }

    /// One account's balance in milli-units.
    pub fn balance(&self, account: &Account) -> i64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    /// The sum of all balances; 0 after every entry.
    pub fn total(&self) -> i128 {
        self.balances.values().map(|v| i128::from(*v)).sum()
    }

    /// What `account` has pledged in open holds, in milli-units.
    pub fn held(&self, account: &PublicKey) -> i64 {
        self.held.get(account).copied().unwrap_or(0)
    }

    /// Balance minus holds: never below minus the credit limit after an
    /// entry that debits the account.
    pub fn available(&self, account: &PublicKey) -> i64 {
        self.balance(&Account::Key(*account))
            .saturating_sub(self.held(account))
    }

    /// `account`'s balance, holds, limit and next nonce in one view.
    pub fn summary(&self, account: &PublicKey) -> AccountSummary {
        AccountSummary {
            account: *account,
            balance: self.balance(&Account::Key(*account)),
            held: self.held(account),
            available: self.available(account),
            limit: self.limit(account),
            next_nonce: self.next_nonce(account),
        }
    }

    /// `account`'s credit limit in milli-units.
    pub fn limit(&self, account: &PublicKey) -> i64 {
        self.limits.limit(account)
    }

    /// Every credit limit.
    pub fn limits(&self) -> &CreditLimits {
        &self.limits
    }

    /// The open hold `id`.
    pub fn hold(&self, id: &str) -> Option<&Hold> {
        self.holds.get(id)
    }

    /// Every open hold, by id.
    pub fn holds(&self) -> &BTreeMap<String, Hold> {
        &self.holds
    }

    /// The open holds `account` pays (as workload owner) or is paid by (as
    /// provider), by id.
    pub fn holds_of<'a>(&'a self, account: &'a PublicKey) -> impl Iterator<Item = &'a Hold> + 'a {
        self.holds
            .values()
            .filter(move |h| h.payer == *account || h.provider == *account)
    }

    /// The payer's last accepted nonce (0 when none).
    pub fn last_nonce(&self, payer: &PublicKey) -> u64 {
        self.nonces.get(payer).copied().unwrap_or(0)
    }

    /// The smallest nonce the payer's next transfer may use.
    pub fn next_nonce(&self, payer: &PublicKey) -> u64 {
        self.last_nonce(payer).saturating_add(1)
    }

    /// The authority's last accepted control nonce (0 when none).
    pub fn control_nonce(&self) -> u64 {
        self.control_nonce
    }

    /// Every applied entry, in order.
    pub fn log(&self) -> &[Applied] {
        &self.log
    }

    /// The stored records, in order (what [`Ledger::replay`] takes).
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.log.iter().map(|a| &a.record)
    }

    /// Indices in the log of the entries that touch `account`.
    pub(crate) fn touching(&self, account: &Account) -> &[usize] {
        self.by_account.get(account).map_or(&[], Vec::as_slice)
    }

    /// Writes a prepared entry checked against exactly this state.
    pub(crate) fn write(&mut self, p: Prepared) -> &Applied {
        let parts = p;
        for (a, b) in parts.balances {
            self.balances.insert(a, b);
        }
        for (k, h) in parts.held {
            if h == 0 {
                self.held.remove(&k);
            } else {
                self.held.insert(k, h);
            }
        }
        if let Some((k, n)) = parts.nonce {
            self.nonces.insert(k, n);
        }
        if let Some(n) = parts.control_nonce {
            self.control_nonce = n;
        }
        if let Some(h) = parts.open {
            self.holds.insert(h.id.clone(), h);
        }
        if let Some(id) = parts.close {
            self.holds.remove(&id);
        }
        if let Some(l) = parts.limit {
            self.limits.set_limit(l.account, l.limit);
        }
        self.state_hash = parts.applied.record.state_hash;
        let index = self.log.len();
        for a in &parts.applied.accounts {
            let list = self.by_account.entry(*a).or_default();
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
        self.log.push(parts.applied);
        &self.log[index]
    }
}
