//! Unit tests of verification on receipt.

use chrono::TimeZone;
use ed25519_dalek::SigningKey;

use super::*;
use crate::evidence::{sign_attestation, sign_observation, Signed};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn key(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

fn node(k: &SigningKey) -> NodeId {
    NodeId(k.verifying_key().to_bytes())
}

fn op(k: &SigningKey) -> PublicKey {
    PublicKey(k.verifying_key().to_bytes())
}

/// Nodes 1 and 2 of operator 101, node 3 of operator 103.
fn log() -> EvidenceLog {
    let mut log = EvidenceLog::new();
    for (n, o) in [(1, 101), (2, 101), (3, 103)] {
        assert!(log.register_node(node(&key(n)), op(&key(o)), t0()).unwrap());
    }
    log
}

fn heartbeat(observer: u8, subject: u8, at: DateTime<Utc>) -> Entry {
    let k = key(observer);
    Entry::Observation(
        sign_observation(
            &k,
            Observation {
                observer: node(&k),
                subject: node(&key(subject)),
                at,
                kind: ObservationKind::Heartbeat { answered: true },
            },
        )
        .unwrap(),
    )
}

fn attestation(issuer: u8, subject: u8, weight: f64, days: i64) -> Attestation {
    Attestation {
        issuer: op(&key(issuer)),
        subject: op(&key(subject)),
        weight,
        issued_at: t0(),
        expires_at: t0() + Duration::days(days),
    }
}

#[test]
fn verified_observations_are_appended_once() {
    let mut log = log();
    let at = t0() + Duration::hours(1);
    let before = log.state_hash();
    assert!(log.append(heartbeat(3, 1, at)).unwrap());
    assert_ne!(log.state_hash(), before);
    assert!(
        !log.append(heartbeat(3, 1, at)).unwrap(),
        "duplicate ignored"
    );
    assert_eq!(log.len(), 4);
    let history = log.history(&node(&key(1))).unwrap();
    let seen = history.observer(&op(&key(103))).unwrap();
    assert_eq!(seen.heartbeats().count(), 1);
    assert_eq!(history.observers().count(), 1);
}

#[test]
fn self_asserted_observations_change_nothing() {
    let mut log = log();
    let at = t0() + Duration::hours(1);
    let before = (log.len(), log.state_hash());
    let err = log.append(heartbeat(1, 1, at)).unwrap_err();
    assert!(matches!(err, Rejected::SelfObserved { .. }), "{err}");
    // Node 2 vouching for its sibling node 1: same operator.
    let err = log.append(heartbeat(2, 1, at)).unwrap_err();
    assert!(matches!(err, Rejected::SameOperator { .. }), "{err}");
    assert!(err.to_string().contains("self-asserted"), "{err}");
    assert_eq!((log.len(), log.state_hash()), before);
    assert!(log.history(&node(&key(1))).is_none());
}

#[test]
fn forged_unknown_and_backdated_observations_are_refused() {
    let mut log = log();
    let at = t0() + Duration::hours(1);
    let Entry::Observation(mut forged) = heartbeat(3, 1, at) else {
        unreachable!()
    };
    forged.body.kind = ObservationKind::Heartbeat { answered: false };
    let err = log.append(Entry::Observation(forged)).unwrap_err();
    assert!(matches!(err, Rejected::BadSignature { .. }), "{err}");
    let err = log.append(heartbeat(9, 1, at)).unwrap_err();
    assert!(matches!(err, Rejected::UnknownNode { .. }), "{err}");
    let err = log
        .append(heartbeat(3, 1, t0() - Duration::days(300)))
        .unwrap_err();
    assert!(matches!(err, Rejected::BeforeJoin { .. }), "{err}");
    let k = key(3);
    let probe = sign_observation(
        &k,
        Observation {
            observer: node(&k),
            subject: node(&key(1)),
            at,
            kind: ObservationKind::Probe {
                cpu: f64::INFINITY,
                memory: 1.0,
                disk: -1.0,
            },
        },
    )
    .unwrap();
    let err = log.append(Entry::Observation(probe)).unwrap_err();
    assert!(matches!(err, Rejected::BadProbe { .. }), "{err}");
    assert_eq!(log.len(), 3);
}

#[test]
fn attestations_are_checked_and_later_ones_supersede() {
    let mut log = log();
    let bad = [
        (attestation(101, 101, 0.5, 30), "attests itself"),
        (attestation(101, 103, 1.5, 30), "weight"),
        (attestation(101, 103, f64::NAN, 30), "weight"),
        (attestation(101, 103, 0.5, 366), "365 days"),
        (attestation(101, 103, 0.5, 0), "365 days"),
    ];
    for (a, what) in bad {
        let signed = sign_attestation(&key(101), a).unwrap();
        let err = log.append(Entry::Attestation(signed)).unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    }
    // Signed by someone else than the issuer.
    let forged = sign_attestation(&key(103), attestation(101, 103, 0.5, 30)).unwrap();
    assert!(log.append(Entry::Attestation(forged)).is_err());
    assert_eq!(log.len(), 3);

    let good = sign_attestation(&key(101), attestation(101, 103, 0.8, 365)).unwrap();
    assert!(log.append(Entry::Attestation(good)).unwrap());
    let subject = op(&key(103));
    let at = |d: i64| t0() + Duration::days(d);
    assert_eq!(log.attestations_of(&subject, at(10)).count(), 1);
    assert_eq!(log.attestations_of(&subject, at(365)).count(), 0, "expired");
    assert_eq!(
        log.attestations_of(&subject, t0() - Duration::days(1))
            .count(),
        0
    );
    // A later attestation with weight 0 revokes, from its issue date on.
    let mut revoke = attestation(101, 103, 0.0, 30);
    revoke.issued_at = at(20);
    revoke.expires_at = at(40);
    let revoke = sign_attestation(&key(101), revoke).unwrap();
    assert!(log.append(Entry::Attestation(revoke)).unwrap());
    assert_eq!(log.attestations_of(&subject, at(10)).count(), 1);
    assert_eq!(log.attestations_of(&subject, at(25)).count(), 0);
    assert_eq!(log.current_attestations(at(25)).count(), 0);
}

#[test]
fn registrations_are_fixed_and_know_operators() {
    let mut log = log();
    assert!(!log
        .register_node(node(&key(1)), op(&key(101)), t0())
        .unwrap());
    let err = log
        .register_node(node(&key(1)), op(&key(103)), t0())
        .unwrap_err();
    assert!(
        matches!(err, Rejected::ConflictingRegistration { .. }),
        "{err}"
    );
    let rec = log.operator(&op(&key(101))).unwrap();
    assert_eq!(rec.nodes.len(), 2);
    assert_eq!(rec.first_joined, Some(t0()));
}

#[test]
fn the_state_hash_does_not_depend_on_arrival_order() {
    let at = |h: i64| t0() + Duration::hours(h);
    let entries = vec![
        heartbeat(3, 1, at(1)),
        heartbeat(3, 2, at(2)),
        heartbeat(1, 3, at(1)),
        Entry::Attestation(sign_attestation(&key(101), attestation(101, 103, 0.5, 30)).unwrap()),
    ];
    let mut a = log();
    let mut b = log();
    for e in &entries {
        a.append(e.clone()).unwrap();
    }
    for e in entries.iter().rev() {
        b.append(e.clone()).unwrap();
    }
    assert_eq!(a.state_hash(), b.state_hash());
    assert_ne!(a.entries(), b.entries());
    assert_eq!(a.entries_since(5).len(), 2);
    // A second signature over the same body is the same entry.
    let Entry::Observation(s) = heartbeat(3, 1, at(1)) else {
        unreachable!()
    };
    let resigned = Signed::sign(&key(3), s.body).unwrap();
    assert!(!a.append(Entry::Observation(resigned)).unwrap());
}

#[test]
fn registrations_do_not_come_from_gossip() {
    let mut log = log();
    let backdated = NodeRegistration {
        node: node(&key(4)),
        operator: op(&key(104)),
        joined_at: t0() - Duration::days(2000),
        asn: None,
    };
    let err = log.receive(Entry::Node(backdated)).unwrap_err();
    assert!(
        matches!(err, Rejected::RegistrationFromGossip { .. }),
        "{err}"
    );
    assert!(log.operator(&op(&key(104))).is_none());
    // One the log already holds is a harmless duplicate.
    let known = log.registration(&node(&key(1))).cloned().unwrap();
    assert!(!log.receive(Entry::Node(known)).unwrap());
    assert!(log
        .receive(heartbeat(3, 1, t0() + Duration::hours(1)))
        .unwrap());
}
