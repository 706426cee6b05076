//! MYCELIAL.md §4.7 as a simulation with a fixed seed: a gossiped score or
//! self-signed observations change nothing, a deny list holds whatever the
//! score, and two engines fed the same log decide identically. (§4.1–§4.4 are
//! in `simulations.rs`, §4.5–§4.6 in `ledger.rs`.)

mod sim;

use chrono::Duration;
use mycelial::engine::Reputation;
use mycelial::evidence::{sign_observation, Entry, Observation, ObservationKind, Rejected};
use mycelial::TrustRules;
use mycelial::TrustSource;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use sim::{attestation, keypair, node, pk, place, t0, User, World};

/// MYCELIAL.md §4.7: gossip cannot raise a score; deny lists hold; two
/// schedulers given the same log decide identically.
#[test]
fn s7_gossip_and_determinism() {
    let mut rng = StdRng::seed_from_u64(7);
    let w = World::new(&mut rng);
    let now = t0();
    let ops: Vec<_> = (0..4).map(|_| keypair(&mut rng)).collect();
    let mut keys = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..6 {
        let k = keypair(&mut rng);
        let n = node(
            &k,
            &pk(&ops[i % 4]),
            now - Duration::days(60 + 20 * i as i64),
            Some(&format!("AS{}", i % 4)),
        );
        w.rep.register(&n).unwrap();
        keys.push(k);
        nodes.push(n);
    }
    for (i, n) in nodes.iter().enumerate() {
        for h in 0..10 {
            w.heartbeat(n, now - Duration::hours(h + 1), h != 3 || i == 0);
        }
        for k in 0..8 {
            w.outcome(n, now - Duration::minutes(45 * k + 5), i != 1 || k % 2 == 0);
        }
    }
    for (i, op) in ops.iter().enumerate() {
        w.feed(attestation(
            &w.cp_operator,
            &pk(op),
            1.0,
            now - Duration::days(3),
        ));
        for d in 1..=2 {
            w.feed(attestation(
                op,
                &pk(&ops[(i + d) % 4]),
                0.8,
                now - Duration::days(2),
            ));
        }
    }
    let seeds = vec![pk(&w.cp_operator)];
    let users = [
        User {
            key: pk(&keypair(&mut rng)),
            rules: TrustRules::default(),
        },
        User {
            key: pk(&keypair(&mut rng)),
            rules: TrustRules {
                trusted_operators: seeds.clone(),
                min_reputation: 0.5,
                ..TrustRules::default()
            },
        },
    ];
    let standings = |rep: &Reputation| -> Vec<_> {
        users
            .iter()
            .flat_map(|u| rep.standings_at(&u.key, &u.rules.trusted_operators, &nodes, now))
            .collect()
    };

    // Gossiped claims: a score does not parse; self-signed observations are refused.
    let before = (w.rep.state_hash(), w.rep.len(), standings(&w.rep));
    for claim in [
        r#"{"score": 1.0}"#,
        r#"{"reputation_update": {"peer_id": "a", "score": 1.0}}"#,
        r#"{"observation": {"score": 1.0}}"#,
    ] {
        assert!(serde_json::from_str::<Entry>(claim).is_err(), "{claim}");
    }
    // Node 1 praises itself, then its sibling node 5 (same operator) praises it.
    for (signer, kind) in [
        (1, ObservationKind::Heartbeat { answered: true }),
        (
            1,
            ObservationKind::Probe {
                cpu: 1.0,
                memory: 1.0,
                disk: 1.0,
            },
        ),
        (
            5,
            ObservationKind::Outcome {
                success: true,
                ran_elsewhere: false,
            },
        ),
    ] {
        let o = Observation {
            observer: nodes[signer].id,
            subject: nodes[1].id,
            at: now - Duration::minutes(1),
            kind,
        };
        let e = Entry::Observation(sign_observation(&keys[signer], o).unwrap());
        let err = w.rep.receive(e).unwrap_err();
        assert!(
            matches!(
                err,
                Rejected::SelfObserved { .. } | Rejected::SameOperator { .. }
            ),
            "{err}"
        );
    }
    assert_eq!((w.rep.state_hash(), w.rep.len(), standings(&w.rep)), before);
    println!(
        "§4.7 a gossiped score and 3 self-asserted observations: rejected, standings unchanged"
    );

    // The deny list: the best node's operator gets nothing from a user denying it.
    let view = w.rep.standings_at(&users[1].key, &seeds, &nodes, now);
    let best = (0..nodes.len())
        .max_by(|&a, &b| view[a].composite.total_cmp(&view[b].composite))
        .unwrap();
    let denied = nodes[best].operator;
    let denier = User {
        key: users[1].key,
        rules: TrustRules {
            denied_operators: vec![denied],
            ..users[1].rules.clone()
        },
    };
    let count = |u: &User, rng: &mut StdRng| {
        (0..1000)
            .filter_map(|_| place(&w.rep, u, &nodes, now, rng))
            .filter(|&i| nodes[i].operator == denied)
            .count()
    };
    let (with, without) = (count(&users[1], &mut rng), count(&denier, &mut rng));
    println!(
        "§4.7 best node (C = {:.4}): {with} placements of 1000, 0 expected once denied: {without}",
        view[best].composite
    );
    assert!(with > 200, "{with}");
    assert_eq!(without, 0);

    // Two schedulers, the same entries in different arrival orders.
    let mut entries = w.rep.snapshot().entries().to_vec();
    entries.shuffle(&mut rng);
    let other = Reputation::new(now);
    let mut pending = entries;
    while !pending.is_empty() {
        let mut later = Vec::new();
        for e in pending {
            // Nodes arrive from membership, the rest by gossip, all interleaved.
            let result = match &e {
                Entry::Node(_) => other.append(e.clone()),
                _ => other.receive(e.clone()),
            };
            match result {
                Ok(_) => {}
                // An observation before its nodes' registrations: gossip offers it again.
                Err(Rejected::UnknownNode { .. }) => later.push(e),
                Err(err) => panic!("{err}"),
            }
        }
        pending = later;
    }
    assert_eq!(other.state_hash(), w.rep.state_hash());
    assert_eq!(standings(&other), standings(&w.rep));
    other.set_now(now);
    w.rep.set_now(now);
    assert_eq!(
        other.standings(&users[1].key, &seeds, &nodes),
        w.rep.standings(&users[1].key, &seeds, &nodes)
    );
    let decisions = |rep: &Reputation| -> Vec<Option<usize>> {
        let mut rng = StdRng::seed_from_u64(99);
        (0..1000)
            .map(|i| place(rep, &users[i % 2], &nodes, now, &mut rng))
            .collect()
    };
    assert_eq!(decisions(&other), decisions(&w.rep));
    println!(
        "§4.7 two engines, shuffled arrival: same state hash, same standings, same 1000 decisions"
    );
}
