//! One test per refusal (each leaving the ledger exactly as it was), the
//! settlement arithmetic, request proofs, history and replay.

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::Signer;
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::auth::{signing_message, timestamp, Payload};
use orchestrator_shared_types::PublicKey;

use super::*;

mod flows;
mod refusals;
mod requests;

const ID: &str = "cluster-a";

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn pk(k: &SigningKey) -> PublicKey {
    PublicKey(k.verifying_key().to_bytes())
}

fn acct(k: &SigningKey) -> Account {
    Account::Key(pk(k))
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn auth() -> SigningKey {
    key(200)
}

fn ledger() -> Ledger {
    Ledger::new(ID, pk(&auth()))
}

fn transfer(from: &SigningKey, to: &SigningKey, amount: i64, nonce: u64) -> Transfer {
    Transfer {
        ledger: ID.into(),
        payer: pk(from),
        payee: pk(to),
        amount,
        nonce,
        reference: "invoice 7".into(),
        expires_at: t0() + Duration::hours(1),
    }
}

fn pay(from: &SigningKey, to: &SigningKey, amount: i64, nonce: u64) -> Entry {
    Entry::Transfer(transfer(from, to, amount, nonce).sign(from))
}

fn control(l: &Ledger, action: ControlAction) -> Entry {
    Entry::Control(
        Control {
            ledger: ID.into(),
            nonce: l.control_nonce() + 1,
            action,
        }
        .sign(&auth()),
    )
}

fn set_limit(l: &mut Ledger, k: &SigningKey, limit: i64) {
    let e = control(
        l,
        ControlAction::SetLimit(SetLimit {
            account: pk(k),
            limit,
        }),
    );
    l.apply(&e, t0()).unwrap();
}

fn hold(l: &Ledger, id: &str, payer: &SigningKey, provider: &SigningKey, amount: i64) -> Entry {
    control(
        l,
        ControlAction::Hold(Hold {
            id: id.into(),
            payer: pk(payer),
            provider: pk(provider),
            amount,
            capacity: amount,
            reference: "workload/instance".into(),
        }),
    )
}

/// Applies `e` and checks it is refused with `want` and changed nothing.
fn refused(l: &mut Ledger, e: &Entry, now: DateTime<Utc>, want: LedgerError) {
    let before = l.clone();
    assert_eq!(l.apply(e, now), Err(want));
    assert_eq!(*l, before);
}

/// A ledger where `a` (limit 1,000) already paid `b` 100 with nonce 1.
fn funded() -> (Ledger, SigningKey, SigningKey) {
    let (a, b) = (key(1), key(2));
    let mut l = ledger();
    set_limit(&mut l, &a, 1_000);
    l.apply(&pay(&a, &b, 100, 1), t0()).unwrap();
    (l, a, b)
}
