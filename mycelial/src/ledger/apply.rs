//! Applying one entry: every check first, against the current state and
//! without touching it ([`Ledger::prepare`]), then an infallible write
//! ([`Ledger::commit`]). A refused entry therefore changes nothing.

use chrono::{DateTime, Utc};
use orchestrator_shared_types::PublicKey;
use serde::{Deserialize, Serialize};

use super::account::Account;
use super::canonical::StateHash;
use super::control::{ControlAction, Hold, SetLimit, Settle};
use super::entry::{chain, Entry, Record};
use super::transfer::SignedTransfer;
use super::{Ledger, LedgerError, PPM};

/// One leg of an applied entry: how it moved one account. The legs of an
/// entry sum to zero in `balance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posting {
    /// The account.
    pub account: Account,
    /// Change of its balance, in milli-units.
    pub balance: i64,
    /// Change of the holds counted against it, in milli-units.
    pub held: i64,
}

/// An entry the ledger accepted: the record to persist, and its legs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applied {
    /// What the log keeps (and the daemon stores under [`super::record_key`]).
    pub record: Record,
    /// How it moved each account it touched (none for a limit).
    pub postings: Vec<Posting>,
    /// The accounts it concerns, the paying one first: payer and payee,
    /// owner and provider of a hold (and the commons when a settlement took
    /// a fee), the account whose limit was set. Its history lists it.
    pub accounts: Vec<Account>,
}

/// An entry checked against the ledger's current state, ready to
/// [`Ledger::commit`]. Persist [`Prepared::record`] first, then commit: the
/// ledger never runs ahead of its durable log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub(crate) applied: Applied,
    pub(crate) prev_hash: StateHash,
    pub(crate) balances: Vec<(Account, i64)>,
    pub(crate) held: Vec<(PublicKey, i64)>,
    pub(crate) nonce: Option<(PublicKey, u64)>,
    pub(crate) control_nonce: Option<u64>,
    pub(crate) open: Option<Hold>,
    pub(crate) close: Option<String>,
    pub(crate) limit: Option<SetLimit>,
}

impl Prepared {
    /// The record to persist before committing.
    pub fn record(&self) -> &Record {
        &self.applied.record
    }

    /// The record and its legs.
    pub fn applied(&self) -> &Applied {
        &self.applied
    }
}

fn overflow(account: &Account) -> LedgerError {
    LedgerError::Overflow {
        account: account.to_string(),
    }
}

/// The new figures of the accounts an entry moves, computed without writing.
struct Draft<'a> {
    ledger: &'a Ledger,
    postings: Vec<Posting>,
    balances: Vec<(Account, i64)>,
    held: Vec<(PublicKey, i64)>,
}

impl<'a> Draft<'a> {
    fn new(ledger: &'a Ledger) -> Self {
        Draft {
            ledger,
            postings: Vec::new(),
            balances: Vec::new(),
            held: Vec::new(),
        }
    }

    fn balance(&self, a: &Account) -> i64 {
        self.balances
            .iter()
            .rev()
            .find(|(k, _)| k == a)
            .map_or_else(|| self.ledger.balance(a), |(_, v)| *v)
    }

    fn held(&self, k: &PublicKey) -> i64 {
        self.held
            .iter()
            .rev()
            .find(|(x, _)| x == k)
            .map_or_else(|| self.ledger.held(k), |(_, v)| *v)
    }

    /// Moves `account`'s balance by `balance` and its holds by `held`.
    fn post(&mut self, account: Account, balance: i64, held: i64) -> Result<(), LedgerError> {
        if balance == 0 && held == 0 {
            return Ok(());
        }
        let b = self
            .balance(&account)
            .checked_add(balance)
            .ok_or_else(|| overflow(&account))?;
        self.balances.push((account, b));
        if held != 0 {
            let key = *account.key().ok_or_else(|| overflow(&account))?;
            let h = self
                .held(&key)
                .checked_add(held)
                .ok_or_else(|| overflow(&account))?;
            self.held.push((key, h));
        }
        self.postings.push(Posting {
            account,
            balance,
            held,
        });
        Ok(())
    }

    /// Refuses the draft if it leaves `payer`'s balance minus holds below
    /// minus its limit.
    fn within_limit(&self, payer: &PublicKey) -> Result<(), LedgerError> {
        let available =
            i128::from(self.balance(&Account::Key(*payer))) - i128::from(self.held(payer));
        let limit = self.ledger.limit(payer);
        if available < -i128::from(limit) {
            return Err(LedgerError::CreditLimitExceeded {
                account: *payer,
                limit,
                would_be: i64::try_from(available).unwrap_or(i64::MIN),
            });
        }
        Ok(())
    }
}

impl Ledger {
    /// Checks `entry` as applied at `now` against the current state, changing
    /// nothing. On success, [`Ledger::commit`] writes it.
    pub fn prepare(&self, entry: &Entry, now: DateTime<Utc>) -> Result<Prepared, LedgerError> {
        let mut draft = Draft::new(self);
        let mut nonce = None;
        let mut control_nonce = None;
        let mut open = None;
        let mut close = None;
        let mut limit = None;
        let mut accounts: Vec<Account>;
        match entry {
            Entry::Transfer(st) => {
                nonce = Some(self.check_transfer(st, now, &mut draft)?);
                let t = &st.transfer;
                accounts = vec![Account::Key(t.payer), Account::Key(t.payee)];
            }
            Entry::Control(sc) => {
                sc.check(self.id(), self.authority())?;
                let got = sc.control.nonce;
                if got <= self.control_nonce() {
                    return Err(LedgerError::ControlNonceNotIncreasing {
                        last: self.control_nonce(),
                        got,
                    });
                }
                control_nonce = Some(got);
                match &sc.control.action {
                    ControlAction::Hold(h) => {
                        if self.hold(&h.id).is_some() {
                            return Err(LedgerError::DuplicateHold { id: h.id.clone() });
                        }
                        draft.post(Account::Key(h.payer), 0, h.amount)?;
                        draft.within_limit(&h.payer)?;
                        open = Some(h.clone());
                        accounts = vec![Account::Key(h.payer), Account::Key(h.provider)];
                    }
                    ControlAction::Settle(s) => {
                        let hold = self.open_hold(&s.hold)?;
                        let fee = settle(&mut draft, hold, s)?;
                        close = Some(s.hold.clone());
                        accounts = vec![Account::Key(hold.payer), Account::Key(hold.provider)];
                        if fee > 0 {
                            accounts.push(Account::Commons);
                        }
                    }
                    ControlAction::Release(r) => {
                        let hold = self.open_hold(&r.hold)?;
                        draft.post(Account::Key(hold.payer), 0, -hold.amount)?;
                        close = Some(r.hold.clone());
                        accounts = vec![Account::Key(hold.payer), Account::Key(hold.provider)];
                    }
                    ControlAction::SetLimit(l) => {
                        limit = Some(l.clone());
                        accounts = vec![Account::Key(l.account)];
                    }
                }
            }
        }
        let seq = self.seq() + 1;
        let state_hash = chain(&self.state_hash(), seq, &now, entry);
        Ok(Prepared {
            applied: Applied {
                record: Record {
                    seq,
                    at: now,
                    entry: entry.clone(),
                    state_hash,
                },
                postings: draft.postings,
                accounts,
            },
            prev_hash: self.state_hash(),
            balances: draft.balances,
            held: draft.held,
            nonce,
            control_nonce,
            open,
            close,
            limit,
        })
    }

    /// Checks a transfer; drafts its legs and returns the nonce it uses.
    fn check_transfer(
        &self,
        st: &SignedTransfer,
        now: DateTime<Utc>,
        draft: &mut Draft<'_>,
    ) -> Result<(PublicKey, u64), LedgerError> {
        st.check(self.id())?;
        let t = &st.transfer;
        // A replay is told as such even once it has expired too.
        let last = self.last_nonce(&t.payer);
        if t.nonce <= last {
            return Err(LedgerError::NonceNotIncreasing { last, got: t.nonce });
        }
        if now > t.expires_at {
            return Err(LedgerError::Expired {
                expires_at: t.expires_at,
                now,
            });
        }
        draft.post(Account::Key(t.payer), -t.amount, 0)?;
        draft.post(Account::Key(t.payee), t.amount, 0)?;
        draft.within_limit(&t.payer)?;
        Ok((t.payer, t.nonce))
    }

    fn open_hold(&self, id: &str) -> Result<&Hold, LedgerError> {
        self.hold(id)
            .ok_or_else(|| LedgerError::UnknownHold { id: id.to_owned() })
    }

    /// Writes a prepared entry. Refused (and nothing written) if the ledger
    /// has changed since it was prepared.
    pub fn commit(&mut self, p: Prepared) -> Result<&Applied, LedgerError> {
        if p.applied.record.seq != self.seq() + 1 || p.prev_hash != self.state_hash() {
            return Err(LedgerError::Stale {
                prepared_at: p.applied.record.seq.saturating_sub(1),
                now_at: self.seq(),
            });
        }
        Ok(self.write(p))
    }

    /// Checks and applies `entry` at `now`. A refused entry changes nothing.
    pub fn apply(&mut self, entry: &Entry, now: DateTime<Utc>) -> Result<Applied, LedgerError> {
        let p = self.prepare(entry, now)?;
        Ok(self.write(p).clone())
    }
}

/// Pays for a hold (see [`Settle`] for the arithmetic and its rounding);
/// returns the fee.
fn settle(draft: &mut Draft<'_>, hold: &Hold, s: &Settle) -> Result<i64, LedgerError> {
    let ppm = i128::from(PPM);
    let amount = i128::from(hold.amount);
    // 0 ≤ paid ≤ amount and 0 ≤ fee ≤ paid, so both fit in i64.
    let paid = amount * i128::from(s.delivered_ppm) / ppm;
    let fee = paid * i128::from(s.fee_ppm) / ppm;
    let to_i64 = |v: i128, a: &Account| i64::try_from(v).map_err(|_| overflow(a));
    let payer = Account::Key(hold.payer);
    let paid = to_i64(paid, &payer)?;
    let fee = to_i64(fee, &Account::Commons)?;
    draft.post(payer, -paid, -hold.amount)?;
    draft.post(Account::Key(hold.provider), paid - fee, 0)?;
    draft.post(Account::Commons, fee, 0)?;
    Ok(fee)
}
