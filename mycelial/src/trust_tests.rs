//! Unit tests of personalised EigenTrust and the qualifying-attester rules.

use chrono::TimeZone;
use ed25519_dalek::SigningKey;

use super::*;
use crate::evidence::{sign_attestation, Attestation, Entry, NodeRegistration};

fn k(b: u8) -> PublicKey {
    PublicKey([b; 32])
}

fn ring(n: u8) -> TrustGraph {
    TrustGraph::from_local_trust((0..n).map(|i| (k(i), k((i + 1) % n), 1.0)))
}

#[test]
fn an_equal_share_gives_0_86_and_no_path_gives_0() {
    let g = ring(5);
    let t = g.global();
    for i in 0..5 {
        assert!((t.trust(&k(i)) - 0.2).abs() < 1e-9);
        assert!((t.normalised(&k(i)) - 0.8647).abs() < 1e-4);
    }
    assert_eq!(t.normalised(&k(99)), 0.0);
    // Personalised: the user (outside the graph) seeds operator 0.
    let p = g.personalised(&k(200), &[k(0)]);
    assert!(p.trust(&k(0)) > p.trust(&k(1)));
    assert!(p.trust(&k(4)) > 0.0);
    let total: f64 = p.iter().map(|(_, v)| v).sum();
    assert!((total - 1.0).abs() < 1e-9, "mass is conserved: {total}");
    assert_eq!(p.iterations(), MAX_ITERATIONS);
}

#[test]
fn sybils_get_exactly_zero_and_an_attack_edge_is_bounded() {
    // Honest operators 0..5 in a ring plus chords; Sybils 50..55 attest each other.
    let honest = (0..5u8).flat_map(|i| [(k(i), k((i + 1) % 5), 1.0), (k(i), k((i + 2) % 5), 0.5)]);
    let sybil = (50..55u8).flat_map(|i| {
        (50..55u8)
            .filter(move |j| *j != i)
            .map(move |j| (k(i), k(j), 1.0))
    });
    let edges: Vec<_> = honest.chain(sybil).collect();
    let user = k(200);
    let t = TrustGraph::from_local_trust(edges.clone()).personalised(&user, &[k(0), k(1)]);
    let sybil_total: f64 = (50..55).map(|i| t.trust(&k(i))).sum();
    assert_eq!(sybil_total, 0.0);
    assert_eq!(t.normalised(&k(52)), 0.0);
    // The global baseline hands Sybils a full share.
    let g = TrustGraph::from_local_trust(edges.clone()).global();
    assert!(g.normalised(&k(52)) > 0.8);

    // One honest → Sybil vouch: Σ t_S ≤ (0.85/0.15)·c_hs·t_h.
    let mut with_edge = edges;
    with_edge.push((k(3), k(50), 1.0));
    let graph = TrustGraph::from_local_trust(with_edge);
    let t = graph.personalised(&user, &[k(0), k(1)]);
    let sybil_total: f64 = (50..55).map(|i| t.trust(&k(i))).sum();
    let bound =
        PROPAGATION / (1.0 - PROPAGATION) * graph.local_trust(&k(3), &k(50)) * t.trust(&k(3));
    assert!(sybil_total > 0.0);
    assert!(
        sybil_total <= bound * (1.0 + 1e-9),
        "{sybil_total} > {bound}"
    );
}

#[test]
fn dangling_mass_returns_to_the_user_and_a_lone_user_converges_at_once() {
    let g = TrustGraph::from_local_trust([(k(1), k(2), 1.0)]);
    let t = g.personalised(&k(1), &[]);
    // 1 → 2, 2 dangles back to p = {1}: t1 = 1/(1+0.85), t2 = 0.85·t1.
    assert!((t.trust(&k(1)) - 1.0 / 1.85).abs() < 1e-3); // 50 iterations: ±0.85⁵⁰
    assert!((t.trust(&k(2)) - 0.85 / 1.85).abs() < 1e-3);
    let alone = g.personalised(&k(9), &[]);
    assert_eq!(alone.iterations(), 1);
    assert_eq!(alone.trust(&k(9)), 1.0);
    assert_eq!(alone.reach(), 1);
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

fn signing(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

fn op(b: u8) -> PublicKey {
    PublicKey(signing(b).verifying_key().to_bytes())
}

fn attest(log: &mut EvidenceLog, issuer: u8, subject: u8, weight: f64, age_days: i64) {
    let a = Attestation {
        issuer: op(issuer),
        subject: op(subject),
        weight,
        issued_at: t0() - Duration::days(age_days),
        expires_at: t0() - Duration::days(age_days) + Duration::days(365),
    };
    let entry = Entry::Attestation(sign_attestation(&signing(issuer), a).unwrap());
    assert!(log.append(entry).unwrap());
}

fn register(log: &mut EvidenceLog, operator: u8, node: u8, age_days: i64, asn: Option<&str>) {
    let reg = NodeRegistration {
        node: orchestrator_shared_types::NodeId([node; 32]),
        operator: op(operator),
        joined_at: t0() - Duration::days(age_days),
        asn: asn.map(str::to_owned),
    };
    assert!(log.append(Entry::Node(reg)).unwrap());
}

#[test]
fn local_trust_mixes_decayed_vouch_and_reliability() {
    let mut log = EvidenceLog::new();
    attest(&mut log, 1, 2, 1.0, 90); // halved: v = 0.5
    attest(&mut log, 1, 3, 1.0, 0); // v = 1
    let r = |o: &PublicKey| if *o == op(2) { 0.9 } else { 0.5 };
    let g = TrustGraph::from_log(&log, t0(), r);
    let (a, b) = (0.5 * 0.5 + 0.5 * 0.9, 0.5 * 1.0 + 0.5 * 0.5);
    assert!((g.local_trust(&op(1), &op(2)) - a / (a + b)).abs() < 1e-9);
    assert!((g.local_trust(&op(1), &op(3)) - b / (a + b)).abs() < 1e-9);
    // A year on, both have expired: no edge.
    assert!(TrustGraph::from_log(&log, t0() + Duration::days(365), r).is_empty());
}

#[test]
fn attesters_qualify_only_when_old_trusted_and_independent() {
    let mut log = EvidenceLog::new();
    // Subject 10; attesters 1–5. The user trusts 1, which attests 2–5.
    register(&mut log, 1, 201, 400, Some("AS1"));
    register(&mut log, 2, 202, 100, Some("AS2"));
    register(&mut log, 3, 203, 100, Some("AS2")); // same ASN as 2
    register(&mut log, 4, 204, 10, Some("AS4")); // too young
    register(&mut log, 10, 210, 100, None);
    for s in [2, 3, 4] {
        attest(&mut log, 1, s, 1.0, 1);
    }
    for a in [1, 2, 3, 4, 5] {
        attest(&mut log, a, 10, 1.0, 1); // 5: no registered node, no age
    }
    let g = TrustGraph::from_log(&log, t0(), |_| 0.5);
    let user = PublicKey([77; 32]);
    let t = g.personalised(&user, &[op(1)]);
    for a in [1, 2, 3, 4] {
        assert!(t.normalised(&op(a)) >= MIN_ATTESTER_TRUST, "{a}");
    }
    let chosen = qualifying_attesters(&log, &t, &op(10), t0());
    assert_eq!(chosen.len(), 2, "1, and one of 2/3 (one ASN): {chosen:?}");
    assert!(chosen.contains(&op(1)));
    // For a user with no path to these attesters, none qualifies.
    let stranger = g.personalised(&user, &[]);
    assert!(qualifying_attesters(&log, &stranger, &op(10), t0()).is_empty());
}
