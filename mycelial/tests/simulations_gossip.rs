//! MYCELIAL.md §4.7 as a simulation with a fixed seed: a gossiped score or
//! self-signed observations change nothing, a deny list holds whatever the
//! score, and two engines fed the same log decide identically; and, with
//! evidence gossiped from many observers, a lying observer operator is
//! outvoted. (§4.1–§4.4 are in `simulations.rs`, §4.5–§4.6 in `ledger.rs`.)

mod sim;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::SigningKey;
use mycelial::engine::Reputation;
use mycelial::evidence::{sign_observation, Entry, Observation, ObservationKind, Rejected};
use mycelial::reputation::{
    active_days, age, composite, honesty, probe_score, reliability, uptime, Heartbeat, Outcome,
    Probe,
};
use mycelial::TrustRules;
use mycelial::TrustSource;
use orchestrator_shared_types::{Node, NodeId};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
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

/// Everything said of one node by every observer, pooled as the engine did
/// before votes per observer operator: to show what the liar would have won.
#[derive(Default)]
struct Pooled {
    beats: Vec<Heartbeat>,
    outcomes: Vec<Outcome>,
    probes: Vec<Probe>,
}

impl Pooled {
    /// C from the pooled evidence at `now`, with no attestation trust.
    fn composite(&mut self, now: DateTime<Utc>) -> f64 {
        self.outcomes.sort_by_key(|o| o.at);
        self.probes.sort_by_key(|p| p.at);
        let days = active_days(self.beats.iter().copied(), now);
        composite(
            uptime(self.beats.iter().copied(), now),
            reliability(self.outcomes.iter().copied(), now),
            honesty(self.probes.iter().copied(), now),
            age(days),
            0.0,
        )
    }
}

/// What one observer says of a node at one time.
struct Said {
    /// The heartbeat.
    answered: bool,
    /// Outcomes a minute apart (failures charged).
    outcomes: Vec<bool>,
    /// A probe with every ratio at this value.
    probe: Option<f64>,
}

/// `said`, signed by `observer`, gossiped to `rep`, and pooled.
fn report(
    rep: &Reputation,
    pooled: &mut Pooled,
    observer: &SigningKey,
    subject: &Node,
    at: DateTime<Utc>,
    said: &Said,
) {
    let feed = |at: DateTime<Utc>, kind: ObservationKind| {
        let o = Observation {
            observer: NodeId(observer.verifying_key().to_bytes()),
            subject: subject.id,
            at,
            kind,
        };
        let e = Entry::Observation(sign_observation(observer, o).expect("signing an observation"));
        assert!(rep.receive(e).expect("a valid observation"));
    };
    let answered = said.answered;
    feed(at, ObservationKind::Heartbeat { answered });
    pooled.beats.push(Heartbeat { at, answered });
    for (k, &success) in said.outcomes.iter().enumerate() {
        let at = at + Duration::minutes(1 + k as i64);
        let kind = ObservationKind::Outcome {
            success,
            ran_elsewhere: !success,
        };
        feed(at, kind);
        pooled.outcomes.push(Outcome {
            at,
            success,
            charged: !success,
        });
    }
    if let Some(r) = said.probe {
        let at = at + Duration::minutes(5);
        feed(
            at,
            ObservationKind::Probe {
                cpu: r,
                memory: r,
                disk: r,
            },
        );
        pooled.probes.push(Probe {
            at,
            score: probe_score(r, r, r),
        });
    }
}

/// Evidence gossiped from many observers: three honest observer operators
/// (the control plane and two peers) and one lying operator watch an honest
/// node and a node that is down half the time, for 100 half-hour rounds
/// after a year of history. The liar bad-mouths the honest node (every
/// heartbeat missed, every outcome a charged failure, every probe at 10 %)
/// and praises the other (everything perfect). Each component is the lower
/// median over observer operators, so the liar's vote is skipped both ways.
#[test]
fn s8_a_lying_observer_operator_is_outvoted() {
    let mut rng = StdRng::seed_from_u64(8);
    let w = World::new(&mut rng);
    let start = t0();
    let round = Duration::minutes(30);
    // Observers: the control plane (0), two honest peers (1, 2), the liar (3),
    // each run by its own operator.
    const LIAR: usize = 3;
    let peers: Vec<SigningKey> = (0..3).map(|_| keypair(&mut rng)).collect();
    let mut liar_operator = None;
    for (i, k) in peers.iter().enumerate() {
        let op = pk(&keypair(&mut rng));
        let asn = format!("AS{}", 10 + i);
        let n = node(k, &op, start - Duration::days(1000), Some(&asn));
        w.rep.register(&n).unwrap();
        liar_operator = Some(op);
    }
    let liar_operator = liar_operator.unwrap();
    let observers: Vec<&SigningKey> = std::iter::once(&w.observer).chain(&peers).collect();
    // Subjects: the honest node (0) and the one down half the time (1).
    let subjects: Vec<Node> = (0..2)
        .map(|i| {
            let op = pk(&keypair(&mut rng));
            let asn = format!("AS{}", 20 + i);
            let n = node(
                &keypair(&mut rng),
                &op,
                start - Duration::days(400),
                Some(&asn),
            );
            w.rep.register(&n).unwrap();
            n
        })
        .collect();
    let mut pooled = [Pooled::default(), Pooled::default()];
    // One slot of evidence about subject `s`, really up or not: honest
    // observers report the truth (each losing 1 % of heartbeats), the liar
    // its lie about that subject.
    let mut slot =
        |rng: &mut StdRng, s: usize, at: DateTime<Utc>, up: bool, n: usize, probe: bool| {
            for (j, observer) in observers.iter().enumerate() {
                let at = at + Duration::seconds(j as i64);
                let (answered, success, ratio) = if j == LIAR {
                    let praise = s == 1;
                    (praise, praise, if praise { 1.0 } else { 0.1 })
                } else {
                    (up && rng.gen::<f64>() >= 0.01, up, 1.0)
                };
                let said = Said {
                    answered,
                    outcomes: vec![success; n],
                    probe: probe.then_some(ratio),
                };
                report(&w.rep, &mut pooled[s], observer, &subjects[s], at, &said);
            }
        };
    // History: a heartbeat and an outcome a day at noon for a year, then one
    // every 2 hours for the last week.
    let history = (8..=366)
        .rev()
        .map(|d| start - Duration::days(d) + Duration::hours(12))
        .chain((1..=84).rev().map(|k| start - Duration::hours(2 * k)));
    for at in history {
        slot(&mut rng, 0, at, true, 1, false);
        let up = rng.gen_bool(0.5);
        slot(&mut rng, 1, at, up, 1, false);
    }
    // 100 rounds: a heartbeat and 2 outcomes a round, a probe every 10th.
    let user = pk(&keypair(&mut rng));
    let c = |s: usize, now| w.rep.components(&user, &[], &subjects[s].id, now);
    let (mut honest_min, mut flaky_max) = (f64::INFINITY, 0.0f64);
    let mut down = 0;
    for r in 0..100 {
        let t = start + round * r;
        slot(&mut rng, 0, t, true, 2, r % 10 == 0);
        let up = rng.gen_bool(0.5);
        down += usize::from(!up);
        slot(&mut rng, 1, t, up, 2, r % 10 == 0);
        let now = t + Duration::minutes(10);
        honest_min = honest_min.min(c(0, now).composite);
        flaky_max = flaky_max.max(c(1, now).composite);
    }
    let now = start + round * 99 + Duration::minutes(10);
    let (h, f) = (c(0, now), c(1, now));
    let log = w.rep.snapshot();
    let said = |s: usize| {
        log.history(&subjects[s].id)
            .and_then(|hist| hist.observer(&liar_operator))
            .map(|o| o.components(now))
            .unwrap()
    };
    let (lie_h, lie_f) = (said(0), said(1));
    let (pooled_h, pooled_f) = (pooled[0].composite(now), pooled[1].composite(now));
    println!(
        "§8 honest node, bad-mouthed by 1 of 4 observer operators: C ≥ {honest_min:.4} over 100 rounds, \
         now {:.4} (U {:.4}, R {:.4}, H {:.4}, {} active days); the liar's own vote C = {:.4}; \
         pooled as before, C would be {pooled_h:.4}",
        h.composite, h.uptime, h.reliability, h.honesty, h.active_days, lie_h.composite(0.0)
    );
    println!(
        "§8 node down {down} of 100 rounds, praised as perfect by the liar: C ≤ {flaky_max:.4} over 100 rounds, \
         now {:.4} (U {:.4}, R {:.4}, H {:.4}, {} active days); the liar's own vote C = {:.4}; pooled {pooled_f:.4}",
        f.composite, f.uptime, f.reliability, f.honesty, f.active_days, lie_f.composite(0.0)
    );
    assert!(honest_min >= 0.9, "{honest_min}");
    assert!(flaky_max < 0.8, "{flaky_max}");
    // The liar's votes are real and extreme; pooling would have let the
    // bad-mouthing through.
    assert!(lie_h.composite(0.0) < 0.1 && lie_f.composite(0.0) > 0.9);
    assert!(pooled_h < 0.9, "{pooled_h}");
}
