//! Holds and settlements, history, replay and canonical bytes.

use super::*;

#[test]
fn holds_settle_with_floor_rounding_and_nothing_is_burned() {
    let (a, b) = (key(1), key(2));
    let mut l = ledger();
    set_limit(&mut l, &a, 10_000);
    l.apply(&hold(&l, "i1", &a, &b, 1_001), t0()).unwrap();
    assert_eq!(l.held(&pk(&a)), 1_001);
    assert_eq!(l.holds_of(&pk(&b)).count(), 1);
    let s = control(
        &l,
        ControlAction::Settle(Settle {
            hold: "i1".into(),
            delivered_ppm: 333_333,
            fee_ppm: 10_000,
        }),
    );
    let applied = l.apply(&s, t0()).unwrap();
    // paid = ⌊1001·0.333333⌋ = 333; fee = ⌊333·0.01⌋ = 3.
    assert_eq!(l.balance(&acct(&a)), -333);
    assert_eq!(l.balance(&acct(&b)), 330);
    assert_eq!(l.balance(&Account::Commons), 3);
    assert_eq!(l.held(&pk(&a)), 0);
    assert_eq!(l.total(), 0);
    assert_eq!(applied.accounts, vec![acct(&a), acct(&b), Account::Commons]);
    assert!(l.hold("i1").is_none());
    let sum = l.summary(&pk(&a));
    assert_eq!(
        (sum.balance, sum.held, sum.available, sum.limit),
        (-333, 0, -333, 10_000)
    );
    let last = l.control_nonce();
    let replayed = LedgerError::ControlNonceNotIncreasing { last, got: last };
    refused(&mut l, &s, t0(), replayed);
    let again = control(
        &l,
        ControlAction::Settle(Settle {
            hold: "i1".into(),
            delivered_ppm: 1,
            fee_ppm: 0,
        }),
    );
    refused(
        &mut l,
        &again,
        t0(),
        LedgerError::UnknownHold { id: "i1".into() },
    );
}

#[test]
fn a_release_frees_the_whole_hold() {
    let (a, b) = (key(1), key(2));
    let mut l = ledger();
    set_limit(&mut l, &a, 500);
    l.apply(&hold(&l, "i1", &a, &b, 500), t0()).unwrap();
    let r = control(&l, ControlAction::Release(Release { hold: "i1".into() }));
    l.apply(&r, t0()).unwrap();
    assert_eq!(l.available(&pk(&a)), 0);
    assert_eq!(l.balance(&acct(&b)), 0);
    let unknown = LedgerError::UnknownHold { id: "i1".into() };
    let r = control(&l, ControlAction::Release(Release { hold: "i1".into() }));
    refused(&mut l, &r, t0(), unknown);
}

#[test]
fn history_lists_what_touched_an_account_in_pages() {
    let (a, b, c) = (key(1), key(2), key(3));
    let mut l = ledger();
    set_limit(&mut l, &a, 10_000);
    for n in 1..=5 {
        l.apply(&pay(&a, &b, n as i64, n), t0()).unwrap();
    }
    l.apply(&hold(&l, "i1", &a, &c, 100), t0()).unwrap();
    let s = control(
        &l,
        ControlAction::Settle(Settle {
            hold: "i1".into(),
            delivered_ppm: 500_000,
            fee_ppm: 0,
        }),
    );
    l.apply(&s, t0()).unwrap();
    let all = l.history(&acct(&a));
    assert_eq!(all.len(), 8, "limit, 5 transfers, hold, settle");
    assert_eq!(all[1].balance_delta, -1);
    assert_eq!(all[1].counterparty, Some(acct(&b)));
    assert_eq!(all[6].kind, EntryKind::Hold);
    assert_eq!(all[6].held_delta, 100);
    assert_eq!(all[7].balance_delta, -50);
    assert_eq!(all[7].held_delta, -100);
    assert_eq!(all[7].counterparty, Some(acct(&c)));
    let c_hist = l.history(&acct(&c));
    assert_eq!(c_hist.len(), 2);
    assert_eq!(c_hist[1].balance_delta, 50);
    assert_eq!(c_hist[1].counterparty, Some(acct(&a)));
    let (p1, next) = l.history_page(&acct(&a), 0, 3);
    assert_eq!(p1.len(), 3);
    let (p2, next) = l.history_page(&acct(&a), next.unwrap(), 3);
    let (p3, next) = l.history_page(&acct(&a), next.unwrap(), 3);
    assert_eq!(next, None);
    let paged: Vec<_> = p1.into_iter().chain(p2).chain(p3).collect();
    assert_eq!(paged, all);
    assert!(l.history(&Account::Commons).is_empty());
}

#[test]
fn replay_of_stored_records_reproduces_the_ledger_and_catches_tampering() {
    let (mut l, a, b) = funded();
    l.apply(&hold(&l, "i1", &a, &b, 100), t0()).unwrap();
    let json: Vec<String> = l
        .records()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let stored: Vec<Record> = json
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    let r = Ledger::replay(ID, pk(&auth()), &stored).unwrap();
    assert_eq!(r, l);
    assert_eq!(r.state_hash(), l.state_hash());

    let mut edited = stored.clone();
    if let Entry::Transfer(t) = &mut edited[1].entry {
        t.transfer.amount = 1;
    }
    assert!(matches!(
        Ledger::replay(ID, pk(&auth()), &edited),
        Err(ReplayError::Refused { seq: 2, .. })
    ));
    let mut hashed = stored.clone();
    hashed[2].state_hash = StateHash([0; 32]);
    assert!(matches!(
        Ledger::replay(ID, pk(&auth()), &hashed),
        Err(ReplayError::HashMismatch { seq: 3, .. })
    ));
    let skipped = [stored[0].clone(), stored[2].clone()];
    assert_eq!(
        Ledger::replay(ID, pk(&auth()), &skipped),
        Err(ReplayError::OutOfOrder {
            expected: 2,
            got: 3
        })
    );
    assert!(Ledger::replay("cluster-b", pk(&auth()), &stored).is_err());
    assert_eq!(record_key(42), "00000000000000000042");
}

#[test]
fn canonical_json_is_the_serde_form_of_a_transfer() {
    let t = transfer(&key(1), &key(2), 5, 1);
    let back: Transfer = serde_json::from_str(&t.canonical_json()).unwrap();
    assert_eq!(back, t);
    let bytes = t.signing_bytes();
    assert!(bytes.starts_with(TRANSFER_DOMAIN.as_bytes()));
    let json = serde_json::to_value(Entry::Transfer(t.sign(&key(1)))).unwrap();
    assert_eq!(json["type"], "transfer");
    assert_eq!(json["proof"]["kind"], "ed25519");
}
