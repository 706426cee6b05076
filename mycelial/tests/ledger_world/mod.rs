//! Shared by the ledger simulations: keys and entry builders ([`World`]),
//! and [`apply_checked`], which applies an entry and asserts the invariants
//! that must hold after every one.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signer, SigningKey};
use mycelial::ledger::*;
use orchestrator_shared_types::auth::{signing_message, timestamp, Payload};
use orchestrator_shared_types::PublicKey;
use rand::rngs::StdRng;
use rand::Rng;

pub const ID: &str = "sim-cluster";

pub fn pk(k: &SigningKey) -> PublicKey {
    PublicKey(k.verifying_key().to_bytes())
}

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Keys, the authority and entry builders.
pub struct World {
    pub keys: Vec<SigningKey>,
    pub authority: SigningKey,
}

impl World {
    pub fn new(rng: &mut StdRng, n: usize) -> World {
        World {
            keys: (0..n).map(|_| SigningKey::from_bytes(&rng.gen())).collect(),
            authority: SigningKey::from_bytes(&rng.gen()),
        }
    }

    pub fn pk(&self, i: usize) -> PublicKey {
        pk(&self.keys[i])
    }

    pub fn acct(&self, i: usize) -> Account {
        Account::Key(self.pk(i))
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::new(ID, pk(&self.authority))
    }

    pub fn transfer(
        &self,
        from: usize,
        to: usize,
        amount: i64,
        nonce: u64,
        now: DateTime<Utc>,
    ) -> Transfer {
        Transfer {
            ledger: ID.into(),
            payer: self.pk(from),
            payee: self.pk(to),
            amount,
            nonce,
            reference: format!("op at {now}"),
            expires_at: now + Duration::minutes(5),
        }
    }

    pub fn pay(
        &self,
        from: usize,
        to: usize,
        amount: i64,
        nonce: u64,
        now: DateTime<Utc>,
    ) -> Entry {
        Entry::Transfer(
            self.transfer(from, to, amount, nonce, now)
                .sign(&self.keys[from]),
        )
    }

    /// The same payment sent as `POST /api/v1/credits/transfer`, signed
    /// `ago` seconds before `now`.
    pub fn pay_by_request(
        &self,
        from: usize,
        to: usize,
        amount: i64,
        nonce: u64,
        now: DateTime<Utc>,
        ago: i64,
    ) -> Entry {
        let body = format!(
            r#"{{"to":"{}","amount":{amount},"nonce":{nonce},"ledger":"{ID}"}}"#,
            self.pk(to)
        );
        let ts = timestamp(now - Duration::seconds(ago));
        let signature = self.keys[from]
            .sign(&signing_message(
                &Payload::new("POST", TRANSFER_PATH, body.as_bytes(), ID),
                &ts,
            ))
            .to_bytes();
        let req = SignedRequest {
            method: "POST",
            path: TRANSFER_PATH,
            timestamp: &ts,
            body: body.as_bytes(),
            signature,
            audience: ID,
        };
        Entry::Transfer(SignedTransfer::from_request(ID, self.pk(from), req).unwrap())
    }

    pub fn control(&self, l: &Ledger, action: ControlAction) -> Entry {
        let c = Control {
            ledger: ID.into(),
            nonce: l.control_nonce() + 1,
            action,
        };
        Entry::Control(c.sign(&self.authority))
    }

    pub fn set_limit(&self, l: &Ledger, i: usize, limit: i64) -> Entry {
        self.control(
            l,
            ControlAction::SetLimit(SetLimit {
                account: self.pk(i),
                limit,
            }),
        )
    }

    pub fn hold(
        &self,
        l: &Ledger,
        id: String,
        payer: usize,
        provider: usize,
        amount: i64,
        capacity: i64,
    ) -> Entry {
        self.control(
            l,
            ControlAction::Hold(Hold {
                id,
                payer: self.pk(payer),
                provider: self.pk(provider),
                amount,
                capacity,
                reference: "workload/instance".into(),
            }),
        )
    }

    pub fn settle(&self, l: &Ledger, hold: String, delivered_ppm: u32, fee_ppm: u32) -> Entry {
        self.control(
            l,
            ControlAction::Settle(Settle {
                hold,
                delivered_ppm,
                fee_ppm,
            }),
        )
    }
}

/// What a refused entry must leave exactly as it was.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    hash: StateHash,
    seq: u64,
    balances: BTreeMap<Account, i64>,
    holds: BTreeMap<String, Hold>,
    limits: CreditLimits,
    control_nonce: u64,
    nonces: Vec<u64>,
}

pub fn snapshot(l: &Ledger, w: &World) -> Snapshot {
    Snapshot {
        hash: l.state_hash(),
        seq: l.seq(),
        balances: l.balances().clone(),
        holds: l.holds().clone(),
        limits: l.limits().clone(),
        control_nonce: l.control_nonce(),
        nonces: (0..w.keys.len()).map(|i| l.last_nonce(&w.pk(i))).collect(),
    }
}

/// Applies `e`, checking the invariants that hold after every entry:
/// Σ balances = 0; the legs of an accepted entry sum to zero; a refused one
/// changes nothing; the holds counted against each account are its open
/// holds; and no account's balance minus holds goes below minus its limit —
/// or, if a lowered limit already left it below, lower than it was.
pub fn apply_checked(
    l: &mut Ledger,
    w: &World,
    e: &Entry,
    now: DateTime<Utc>,
) -> Result<Applied, LedgerError> {
    let before = snapshot(l, w);
    let avail_before: Vec<i64> = (0..w.keys.len()).map(|i| l.available(&w.pk(i))).collect();
    let out = l.apply(e, now);
    assert_eq!(l.total(), 0, "Σ balances after {e:?}");
    match &out {
        Err(_) => assert_eq!(snapshot(l, w), before, "a refused entry changed the ledger"),
        Ok(a) => {
            assert_eq!(
                a.postings
                    .iter()
                    .map(|p| i128::from(p.balance))
                    .sum::<i128>(),
                0
            );
            assert_eq!(a.record.state_hash, l.state_hash());
        }
    }
    for (i, before) in avail_before.iter().enumerate() {
        let k = w.pk(i);
        let open: i64 = l
            .holds()
            .values()
            .filter(|h| h.payer == k)
            .map(|h| h.amount)
            .sum();
        assert_eq!(l.held(&k), open);
        // MYCELIAL.md §4.5: "after every operation balance − holds ≥ −L"
        // cannot hold as a state invariant once L is recomputed from
        // reputation and falls below what an account already owes (a
        // SetLimit lowering it is accepted: reputation must be able to cut
        // credit). What holds is that no entry takes an account below −L,
        // nor further below if it already was.
        let floor = (-l.limit(&k)).min(*before);
        assert!(
            l.available(&k) >= floor,
            "account {i}: {} < {floor}",
            l.available(&k)
        );
    }
    out
}

pub fn code_of(r: &Result<Applied, LedgerError>) -> &'static str {
    match r {
        Ok(_) => "accepted",
        Err(e) => e.code(),
    }
}

pub fn pick_hold(l: &Ledger, rng: &mut StdRng) -> Option<String> {
    let n = l.holds().len();
    (n > 0)
        .then(|| l.holds().keys().nth(rng.gen_range(0..n)).cloned())
        .flatten()
}

/// Runs `ops` random transfers and holds among `w`'s accounts; the first
/// `group` accounts are the drain group. After each entry, `check` sees the
/// ledger and how much the group has received from and paid to the others.
pub fn trade(
    w: &World,
    l: &mut Ledger,
    rng: &mut StdRng,
    group: usize,
    ops: usize,
    mut check: impl FnMut(&Ledger, &Result<Applied, LedgerError>, i64, i64),
) {
    let n = w.keys.len();
    let (mut honest_in, mut honest_out) = (0i64, 0i64);
    let mut now = t0();
    for op in 0..ops {
        now += Duration::seconds(1);
        let p = rng.gen_range(0..n);
        let q = (p + rng.gen_range(1..n)) % n;
        let amount = rng.gen_range(1..=40_000);
        let e = match rng.gen_range(0..10) {
            0..=5 => w.pay(p, q, amount, l.next_nonce(&w.pk(p)), now),
            6..=7 => w.hold(l, format!("h{op}"), p, q, amount, amount),
            _ => match pick_hold(l, rng) {
                Some(id) => w.settle(l, id, rng.gen_range(0..=1_000_000), 20_000),
                None => continue,
            },
        };
        let out = apply_checked(l, w, &e, now);
        if let Ok(a) = &out {
            // Flows across the group's border (the commons is outside it).
            let inside = |acc: &Account| (0..group).any(|i| w.acct(i) == *acc);
            let delta: i64 = a
                .postings
                .iter()
                .filter(|p| inside(&p.account))
                .map(|p| p.balance)
                .sum();
            if delta > 0 {
                honest_in += delta;
            } else {
                honest_out -= delta;
            }
        }
        check(l, &out, honest_in, honest_out);
    }
}

pub fn group_sum(l: &Ledger, w: &World, group: usize) -> i64 {
    (0..group).map(|i| l.balance(&w.acct(i))).sum()
}
