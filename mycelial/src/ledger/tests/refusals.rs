//! Each refusal, each leaving the ledger exactly as it was.

use super::*;

#[test]
fn a_transfer_moves_both_balances_and_the_sum_stays_zero() {
    let (l, a, b) = funded();
    assert_eq!(l.balance(&acct(&a)), -100);
    assert_eq!(l.balance(&acct(&b)), 100);
    assert_eq!(l.total(), 0);
    assert_eq!(l.next_nonce(&pk(&a)), 2);
    let p = &l.log()[1].postings;
    assert_eq!(p.iter().map(|p| p.balance).sum::<i64>(), 0);
}

#[test]
fn an_unattested_key_cannot_pay_anything() {
    let (a, b) = (key(1), key(2));
    let mut l = ledger();
    let want = LedgerError::CreditLimitExceeded {
        account: pk(&a),
        limit: 0,
        would_be: -1,
    };
    assert_eq!(want.code(), "credit_limit_exceeded");
    assert_eq!(want.kind(), ErrorKind::Conflict);
    refused(&mut l, &pay(&a, &b, 1, 1), t0(), want);
}

#[test]
fn over_the_limit_is_refused_and_holds_count_against_it() {
    let (mut l, a, b) = funded();
    let over = LedgerError::CreditLimitExceeded {
        account: pk(&a),
        limit: 1_000,
        would_be: -1_001,
    };
    refused(&mut l, &pay(&a, &b, 901, 2), t0(), over);
    let h = hold(&l, "i1", &a, &b, 800);
    l.apply(&h, t0()).unwrap();
    assert_eq!(l.available(&pk(&a)), -900);
    let over = LedgerError::CreditLimitExceeded {
        account: pk(&a),
        limit: 1_000,
        would_be: -1_001,
    };
    refused(&mut l, &pay(&a, &b, 101, 2), t0(), over);
    l.apply(&pay(&a, &b, 100, 2), t0()).unwrap();
    assert_eq!(l.available(&pk(&a)), -1_000);
    let h2 = hold(&l, "i2", &a, &b, 1);
    let over = LedgerError::CreditLimitExceeded {
        account: pk(&a),
        limit: 1_000,
        would_be: -1_001,
    };
    refused(&mut l, &h2, t0(), over);
}

#[test]
fn a_replayed_or_old_nonce_is_refused() {
    let (mut l, a, b) = funded();
    let want = LedgerError::NonceNotIncreasing { last: 1, got: 1 };
    refused(&mut l, &pay(&a, &b, 100, 1), t0(), want);
    let replay = l.log()[1].record.entry.clone();
    let want = LedgerError::NonceNotIncreasing { last: 1, got: 1 };
    refused(&mut l, &replay, t0(), want);
    l.apply(&pay(&a, &b, 1, 10), t0()).unwrap();
    let want = LedgerError::NonceNotIncreasing { last: 10, got: 9 };
    refused(&mut l, &pay(&a, &b, 1, 9), t0(), want);
}

#[test]
fn bad_signatures_are_refused() {
    let (mut l, a, b) = funded();
    let forged = Entry::Transfer(transfer(&a, &b, 10, 2).sign(&b));
    refused(
        &mut l,
        &forged,
        t0(),
        LedgerError::BadSignature { signer: pk(&a) },
    );
    let mut tampered = transfer(&a, &b, 10, 2).sign(&a);
    tampered.transfer.amount = 11;
    let e = Entry::Transfer(tampered);
    refused(
        &mut l,
        &e,
        t0(),
        LedgerError::BadSignature { signer: pk(&a) },
    );
    let not_authority = Entry::Control(
        Control {
            ledger: ID.into(),
            nonce: 1,
            action: ControlAction::SetLimit(SetLimit {
                account: pk(&b),
                limit: 1_000_000,
            }),
        }
        .sign(&b),
    );
    let want = LedgerError::BadSignature {
        signer: pk(&auth()),
    };
    refused(&mut l, &not_authority, t0(), want);
}

#[test]
fn self_zero_negative_expired_and_foreign_transfers_are_refused() {
    let (mut l, a, b) = funded();
    refused(&mut l, &pay(&a, &a, 10, 2), t0(), LedgerError::SelfTransfer);
    let zero = LedgerError::ZeroOrNegativeAmount { amount: 0 };
    refused(&mut l, &pay(&a, &b, 0, 2), t0(), zero);
    let neg = LedgerError::ZeroOrNegativeAmount { amount: -5 };
    refused(&mut l, &pay(&a, &b, -5, 2), t0(), neg);
    let late = t0() + Duration::hours(2);
    let expired = LedgerError::Expired {
        expires_at: t0() + Duration::hours(1),
        now: late,
    };
    refused(&mut l, &pay(&a, &b, 10, 2), late, expired);
    let mut t = transfer(&a, &b, 10, 2);
    t.ledger = "cluster-b".into();
    let wrong = LedgerError::WrongLedger {
        expected: ID.into(),
        got: "cluster-b".into(),
    };
    refused(&mut l, &Entry::Transfer(t.sign(&a)), t0(), wrong);
    let mut t = transfer(&a, &b, 10, 2);
    t.reference = "x".repeat(MAX_TEXT_BYTES + 1);
    let long = LedgerError::BadText {
        field: "reference",
        len: MAX_TEXT_BYTES + 1,
        min: 0,
        max: MAX_TEXT_BYTES,
    };
    refused(&mut l, &Entry::Transfer(t.sign(&a)), t0(), long);
}

#[test]
fn bad_holds_settlements_and_limits_are_refused() {
    let (a, b) = (key(1), key(2));
    let mut l = ledger();
    set_limit(&mut l, &a, 10_000);
    l.apply(&hold(&l, "i1", &a, &b, 10), t0()).unwrap();
    let dup = LedgerError::DuplicateHold { id: "i1".into() };
    let e = hold(&l, "i1", &a, &b, 10);
    refused(&mut l, &e, t0(), dup);
    let e = hold(&l, "i2", &a, &a, 10);
    refused(&mut l, &e, t0(), LedgerError::SelfTransfer);
    let zero = LedgerError::ZeroOrNegativeAmount { amount: 0 };
    let e = hold(&l, "i2", &a, &b, 0);
    refused(&mut l, &e, t0(), zero);
    let empty = LedgerError::BadText {
        field: "hold id",
        len: 0,
        min: 1,
        max: MAX_TEXT_BYTES,
    };
    let e = hold(&l, "", &a, &b, 10);
    refused(&mut l, &e, t0(), empty);
    let big = control(
        &l,
        ControlAction::Hold(Hold {
            id: "i2".into(),
            payer: pk(&a),
            provider: pk(&b),
            amount: 11,
            capacity: 10,
            reference: String::new(),
        }),
    );
    let cap = LedgerError::HoldExceedsCapacity {
        amount: 11,
        capacity: 10,
    };
    refused(&mut l, &big, t0(), cap);
    for (d, f, field, ppm) in [
        (1_000_001, 0, "delivered_ppm", 1_000_001),
        (0, 2_000_000, "fee_ppm", 2_000_000),
    ] {
        let s = control(
            &l,
            ControlAction::Settle(Settle {
                hold: "i1".into(),
                delivered_ppm: d,
                fee_ppm: f,
            }),
        );
        refused(
            &mut l,
            &s,
            t0(),
            LedgerError::FractionOutOfRange { field, ppm },
        );
    }
    let neg = control(
        &l,
        ControlAction::SetLimit(SetLimit {
            account: pk(&a),
            limit: -1,
        }),
    );
    refused(&mut l, &neg, t0(), LedgerError::NegativeLimit { limit: -1 });
    let old = Entry::Control(
        Control {
            ledger: ID.into(),
            nonce: l.control_nonce(),
            action: ControlAction::Release(Release { hold: "i1".into() }),
        }
        .sign(&auth()),
    );
    let want = LedgerError::ControlNonceNotIncreasing {
        last: l.control_nonce(),
        got: l.control_nonce(),
    };
    refused(&mut l, &old, t0(), want);
}

#[test]
fn balances_that_would_overflow_are_refused() {
    let (a, b, c) = (key(1), key(2), key(3));
    let mut l = ledger();
    set_limit(&mut l, &a, i64::MAX);
    set_limit(&mut l, &c, i64::MAX);
    l.apply(&pay(&a, &b, i64::MAX, 1), t0()).unwrap();
    let want = LedgerError::Overflow {
        account: acct(&b).to_string(),
    };
    refused(&mut l, &pay(&c, &b, 1, 1), t0(), want);
    assert_eq!(l.total(), 0);
}

#[test]
fn a_lowered_limit_stops_new_debt_but_not_income() {
    let (mut l, a, b) = funded();
    set_limit(&mut l, &a, 50);
    assert_eq!(l.available(&pk(&a)), -100);
    let want = LedgerError::CreditLimitExceeded {
        account: pk(&a),
        limit: 50,
        would_be: -101,
    };
    refused(&mut l, &pay(&a, &b, 1, 2), t0(), want);
    // b has +100 of its own to spend, with no credit.
    l.apply(&pay(&b, &a, 30, 1), t0()).unwrap();
    assert_eq!(l.available(&pk(&a)), -70);
}

#[test]
fn a_stale_prepared_entry_is_not_committed() {
    let (mut l, a, b) = funded();
    let p1 = l.prepare(&pay(&a, &b, 1, 2), t0()).unwrap();
    let p2 = l.prepare(&pay(&a, &b, 1, 3), t0()).unwrap();
    assert_eq!(p1.record().seq, 3);
    l.commit(p1).unwrap();
    let before = l.clone();
    let want = LedgerError::Stale {
        prepared_at: 2,
        now_at: 3,
    };
    assert_eq!(l.commit(p2).unwrap_err(), want);
    assert_eq!(l, before);
}
