//! Personalised attestation trust at scale (MYCELIAL.md §3): 1,000 operators
//! and 20,000 attestations from a deterministic generator, against the target
//! of ≤ 50 ms per user, with global (unpersonalised) EigenTrust on the same
//! graph as the baseline. `cargo bench -p mycelial --bench trust`.

use std::collections::HashSet;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, TimeZone, Utc};
use ed25519_dalek::SigningKey;
use mycelial::engine::Reputation;
use mycelial::evidence::{sign_attestation, Attestation, Entry, NodeRegistration};
use mycelial::reputation::NodeComponents;
use mycelial::trust::qualifying_attesters;
use orchestrator_shared_types::{Node, NodeId, NodeStatus, PublicKey, Resources};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const OPERATORS: usize = 1_000;
const ATTESTATIONS: usize = 20_000;
const RUNS: usize = 20;
const TARGET_MS: f64 = 50.0;

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (p50, max) in milliseconds.
fn stats(mut v: Vec<StdDuration>) -> (f64, f64) {
    v.sort();
    (ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

fn time<T>(f: impl FnOnce() -> T) -> (T, StdDuration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(2026);
    let now = Utc
        .with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
        .single()
        .ok_or("a fixed date")?;
    let keys: Vec<SigningKey> = (0..OPERATORS)
        .map(|_| SigningKey::from_bytes(&rng.gen()))
        .collect();
    let ops: Vec<PublicKey> = keys
        .iter()
        .map(|k| PublicKey(k.verifying_key().to_bytes()))
        .collect();

    // One node per operator, 0–500 days old, on one of 200 ASNs.
    let mut entries = Vec::with_capacity(OPERATORS + ATTESTATIONS);
    let mut nodes = Vec::with_capacity(OPERATORS);
    for op in &ops {
        let reg = NodeRegistration {
            node: NodeId(rng.gen()),
            operator: *op,
            joined_at: now - Duration::days(rng.gen_range(0..500)),
            asn: Some(format!("AS{}", rng.gen_range(0..200))),
        };
        nodes.push(Node {
            id: reg.node,
            address: String::new(),
            status: NodeStatus::Ready,
            unschedulable: false,
            labels: Default::default(),
            taints: vec![],
            resources_capacity: Resources::default(),
            resources_allocatable: Resources::default(),
            operator: reg.operator,
            joined_at: reg.joined_at,
        });
        entries.push(Entry::Node(reg));
    }
    // 20,000 distinct (issuer, subject) pairs, issued 0–400 days ago (some expired).
    let mut pairs = HashSet::new();
    while pairs.len() < ATTESTATIONS {
        let (i, j) = (rng.gen_range(0..OPERATORS), rng.gen_range(0..OPERATORS));
        if i != j {
            pairs.insert((i, j));
        }
    }
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort_unstable();
    for (i, j) in pairs {
        let issued_at = now - Duration::days(rng.gen_range(0..400));
        let a = Attestation {
            issuer: ops[i],
            subject: ops[j],
            weight: rng.gen_range(0.1..=1.0),
            issued_at,
            expires_at: issued_at + Duration::days(365),
        };
        entries.push(Entry::Attestation(sign_attestation(&keys[i], a)?));
    }

    let rep = Reputation::new(now);
    let n_entries = entries.len();
    let (accepted, intake) = time(|| {
        entries
            .into_iter()
            .map(|e| rep.append(e))
            .collect::<Result<Vec<bool>, _>>()
    });
    accepted?;
    let users: Vec<(PublicKey, Vec<PublicKey>)> = (0..RUNS)
        .map(|_| {
            let seeds: Vec<PublicKey> = ops.choose_multiple(&mut rng, 3).copied().collect();
            (PublicKey(rng.gen()), seeds)
        })
        .collect();

    // Cold: a new time, so the graph is rebuilt from the log, then one user.
    let mut cold = Vec::new();
    let mut graph_build = Vec::new();
    for (k, (user, seeds)) in users.iter().enumerate() {
        let at = now + Duration::seconds(k as i64 + 1);
        let (_, g) = time(|| rep.graph(at));
        graph_build.push(g);
        let at = now + Duration::seconds(1000 + k as i64);
        let (_, c) = time(|| rep.standings_at(user, seeds, &nodes, at));
        cold.push(c);
    }
    // Per user, graph cached: personalised EigenTrust, T̂, qualifying
    // attesters and composites for all 1,000 nodes.
    let mut per_user = Vec::new();
    let mut reached = 0;
    for (user, seeds) in &users {
        let (s, d) = time(|| rep.standings_at(user, seeds, &nodes, now));
        reached += s.iter().filter(|s| s.qualifying_attestations >= 3).count();
        per_user.push(d);
    }
    // The iteration alone, personalised and global, on the same graph.
    let graph = rep.graph(now);
    let mut personalised = Vec::new();
    let mut global = Vec::new();
    let mut iterations = (0, 0);
    for (user, seeds) in &users {
        let (t, d) = time(|| graph.personalised(user, seeds));
        iterations.0 = t.iterations();
        personalised.push(d);
        let (t, d) = time(|| graph.global());
        iterations.1 = t.iterations();
        global.push(d);
    }
    // The baseline: the same path with global EigenTrust (uniform p over all
    // operators) in place of the user's personalised vector.
    let log = rep.snapshot();
    let mut global_path = Vec::new();
    for _ in 0..RUNS {
        let (_, d) = time(|| {
            let t = graph.global();
            nodes
                .iter()
                .map(|n| {
                    let c = log
                        .history(&n.id)
                        .map_or(NodeComponents::PRIOR, |h| h.components(now));
                    let q = qualifying_attesters(&log, &t, &n.operator, now).len();
                    (c.composite(t.normalised(&n.operator)), q)
                })
                .collect::<Vec<_>>()
        });
        global_path.push(d);
    }

    let (p50, max) = stats(per_user);
    let (g50, gmax) = stats(global_path);
    println!(
        "personalised trust, {OPERATORS} operators / {ATTESTATIONS} attestations: p50 {p50:.2} ms, max {max:.2} ms (target ≤ {TARGET_MS} ms); global EigenTrust baseline p50 {g50:.2} ms, max {gmax:.2} ms"
    );
    println!("  per user = personalised EigenTrust + T̂ + qualifying attesters + composites of {OPERATORS} nodes, graph cached; {RUNS} users; {:.1} nodes per user with ≥ 3 qualifying attestations", reached as f64 / RUNS as f64);
    let (a, b) = stats(personalised);
    let (c, d) = stats(global);
    println!(
        "  EigenTrust iteration alone: personalised p50 {a:.2} ms, max {b:.2} ms ({} iterations); global p50 {c:.2} ms, max {d:.2} ms ({} iterations); {} edges",
        iterations.0,
        iterations.1,
        graph.edge_count()
    );
    let (a, b) = stats(graph_build);
    println!("  graph from the log (once per log change, shared by all users): p50 {a:.2} ms, max {b:.2} ms");
    let (a, b) = stats(cold);
    println!(
        "  cold user after a log change (graph rebuilt + per user): p50 {a:.2} ms, max {b:.2} ms"
    );
    println!(
        "  intake: {n_entries} entries verified and appended in {:.2} s ({:.1} µs each)",
        intake.as_secs_f64(),
        intake.as_secs_f64() * 1e6 / n_entries as f64
    );
    let ok = p50 <= TARGET_MS && max <= TARGET_MS;
    println!("  target {}", if ok { "met" } else { "NOT met" });
    Ok(())
}
