//! Unit tests of the engine: caching, components, the trait.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone};
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::{NodeStatus, Resources};

use super::*;
use crate::evidence::{
    sign_attestation, sign_observation, Attestation, Observation, ObservationKind,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

fn signing(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

fn node(n: u8, op: u8) -> Node {
    Node {
        id: NodeId(signing(n).verifying_key().to_bytes()),
        address: String::new(),
        status: NodeStatus::Ready,
        unschedulable: false,
        labels: BTreeMap::new(),
        taints: vec![],
        resources_capacity: Resources::default(),
        resources_allocatable: Resources::default(),
        operator: PublicKey(signing(op).verifying_key().to_bytes()),
        joined_at: t0() - Duration::days(100),
    }
}

/// Node 1 (operator 101) observed by node 2 (operator 102); 102 attests 101.
fn engine() -> (Reputation, Vec<Node>) {
    let rep = Reputation::new(t0());
    let nodes = vec![node(1, 101), node(2, 102)];
    for n in &nodes {
        assert!(rep.register(n).unwrap());
    }
    for (i, success) in [true, true, false].into_iter().enumerate() {
        let o = Observation {
            observer: nodes[1].id,
            subject: nodes[0].id,
            at: t0() - Duration::hours(10 - i as i64),
            kind: ObservationKind::Outcome {
                success,
                ran_elsewhere: true,
            },
        };
        rep.append(Entry::Observation(
            sign_observation(&signing(2), o).unwrap(),
        ))
        .unwrap();
    }
    let a = Attestation {
        issuer: nodes[1].operator,
        subject: nodes[0].operator,
        weight: 1.0,
        issued_at: t0() - Duration::days(1),
        expires_at: t0() + Duration::days(300),
    };
    rep.append(Entry::Attestation(
        sign_attestation(&signing(102), a).unwrap(),
    ))
    .unwrap();
    (rep, nodes)
}

#[test]
fn components_come_from_the_log() {
    let (rep, nodes) = engine();
    let user = PublicKey([9; 32]);
    let seeds = [nodes[1].operator];
    let c = rep.components(&user, &seeds, &nodes[0].id, t0());
    assert_eq!(c.uptime, 0.5, "no heartbeats: prior");
    assert!(c.reliability > 0.5 && c.reliability < 0.7, "{c:?}");
    assert_eq!(c.honesty, 1.0);
    assert!(c.attestation_trust > 0.5, "{c:?}");
    let expected = c.uptime * c.reliability * c.honesty * (0.65 + 0.35 * c.attestation_trust);
    assert!((c.composite - expected).abs() < 1e-12);
    assert_eq!(c.qualifying_attestations, 1);
    // The same node for a user without seeds: no trust reaches operator 101.
    let stranger = rep.components(&user, &[], &nodes[0].id, t0());
    assert_eq!(stranger.attestation_trust, 0.0);
    assert_eq!(stranger.qualifying_attestations, 0);
    // An unknown node: priors, no operator.
    let unknown = rep.components(&user, &seeds, &NodeId([0; 32]), t0());
    assert!((unknown.composite - 0.1625).abs() < 1e-12);
}

#[test]
fn the_trait_uses_the_time_set_and_agrees_with_components() {
    let (rep, nodes) = engine();
    let user = PublicKey([9; 32]);
    let seeds = [nodes[1].operator];
    rep.set_now(t0() + Duration::days(400));
    let late = rep.standings(&user, &seeds, &nodes);
    let c = rep.components(&user, &seeds, &nodes[0].id, t0() + Duration::days(400));
    assert_eq!(late[0].composite, c.composite);
    assert_eq!(
        late[0].qualifying_attestations, 0,
        "the attestation expired"
    );
    rep.set_now(t0());
    let now = rep.standings(&user, &seeds, &nodes);
    assert_eq!(now[0].qualifying_attestations, 1);
    assert_eq!(now, rep.standings_at(&user, &seeds, &nodes, t0()));
}

#[test]
fn trust_is_cached_per_user_and_seed_set_until_the_log_grows() {
    let (rep, nodes) = engine();
    let user = PublicKey([9; 32]);
    let seeds = [nodes[1].operator, nodes[0].operator];
    let reversed = [nodes[0].operator, nodes[1].operator];
    let a = rep.trust(&user, &seeds, t0());
    assert!(Arc::ptr_eq(&a, &rep.trust(&user, &reversed, t0())));
    assert!(!Arc::ptr_eq(&a, &rep.trust(&user, &seeds[..1], t0())));
    assert!(!Arc::ptr_eq(
        &a,
        &rep.trust(&user, &seeds, t0() + Duration::hours(1))
    ));
    let b = rep.trust(&user, &seeds, t0());
    rep.register(&node(3, 103)).unwrap();
    let c = rep.trust(&user, &seeds, t0());
    assert!(!Arc::ptr_eq(&b, &c));
    assert_eq!(*b, *c, "same figures after an unrelated registration");
}
