//! An account's statement: the applied entries that touch it, with how each
//! moved its balance and holds (`GET /api/v1/credits/history`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::account::Account;
use super::apply::Applied;
use super::control::ControlAction;
use super::entry::{Entry, EntryKind};
use super::Ledger;

/// One line of an account's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryItem {
    /// The entry's position in the log (the cursor for the next page).
    pub seq: u64,
    /// When it was applied.
    pub at: DateTime<Utc>,
    /// What it was.
    pub kind: EntryKind,
    /// The other party: the payee or payer of a transfer; the provider or
    /// owner of a hold, settlement or release (the owner, for the commons'
    /// fee); none for a limit.
    pub counterparty: Option<Account>,
    /// Change of the account's balance, in milli-units.
    pub balance_delta: i64,
    /// Change of the holds counted against the account, in milli-units.
    pub held_delta: i64,
    /// The transfer's reference, or the hold's id.
    pub reference: String,
}

fn item(applied: &Applied, account: &Account) -> HistoryItem {
    let r = &applied.record;
    let (balance_delta, held_delta) = applied
        .postings
        .iter()
        .filter(|p| p.account == *account)
        .fold((0i64, 0i64), |(b, h), p| {
            (b.saturating_add(p.balance), h.saturating_add(p.held))
        });
    let counterparty = match r.entry.kind() {
        EntryKind::SetLimit => None,
        _ => applied.accounts.iter().find(|a| *a != account).copied(),
    };
    let reference = match &r.entry {
        Entry::Transfer(t) => t.transfer.reference.clone(),
        Entry::Control(c) => match &c.control.action {
            ControlAction::Hold(h) => h.id.clone(),
            ControlAction::Settle(s) => s.hold.clone(),
            ControlAction::Release(rel) => rel.hold.clone(),
            ControlAction::SetLimit(_) => String::new(),
        },
    };
    HistoryItem {
        seq: r.seq,
        at: r.at,
        kind: r.entry.kind(),
        counterparty,
        balance_delta,
        held_delta,
        reference,
    }
}

impl Ledger {
    /// Every applied entry that touches `account`, oldest first.
    pub fn history(&self, account: &Account) -> Vec<HistoryItem> {
        self.history_page(account, 0, usize::MAX).0
    }

    /// At most `limit` entries touching `account` with `seq` above `after`
    /// (0 for the first page), oldest first, and the cursor of the next page
    /// (the last `seq` returned) when more remain.
    pub fn history_page(
        &self,
        account: &Account,
        after: u64,
        limit: usize,
    ) -> (Vec<HistoryItem>, Option<u64>) {
        let indices = self.touching(account);
        // Log index i holds seq i + 1.
        let start = indices.partition_point(|&i| (i as u64) < after);
        let mut items = Vec::new();
        for &i in indices.iter().skip(start).take(limit) {
            if let Some(applied) = self.log().get(i) {
                items.push(item(applied, account));
            }
        }
        let next = (start.saturating_add(items.len()) < indices.len())
            .then(|| items.last().map(|i| i.seq))
            .flatten();
        (items, next)
    }
}
