//! Placements per second of `MycelialScheduler` on 5,000 nodes with varied
//! standings, half the workloads carrying trust rules, beside
//! `SimpleScheduler` on the same nodes in the same run: on the same requests
//! (it refuses those whose rules need a reputation, as it weighs none), and
//! on the same requests without their rules (so it places them all).
//!
//! Run with `cargo bench -p scheduler_interface --bench mycelial`; set
//! `MYCELIAL_SAMPLE_SIZE` to try another sample size than the default.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mycelial::{NodeStanding, TrustSource};
use orchestrator_shared_types::{
    InstanceId, Node, NodeId, PublicKey, Resources, TrustRules, WorkloadDefinition,
};
use scheduler_interface::testsuite::{ready_node, workload, MIB};
use scheduler_interface::{
    MycelialScheduler, MycelialSchedulerConfig, ScheduleDecision, ScheduleRequest, Scheduler,
    SimpleScheduler, SimpleSchedulerConfig,
};

const NODES: usize = 5_000;
const INSTANCES: usize = 50_000;
const WARM_UP_INSTANCES: usize = 5_000;
const ZONES: [&str; 4] = ["a", "b", "c", "d"];
const OPERATORS: usize = 500;

/// splitmix64: a reproducible spread of values per node.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// 16 cpu / 64 GiB nodes in four zones, half of them in the EU, ten per operator.
fn nodes() -> Vec<Node> {
    (0..NODES)
        .map(|i| {
            let mut n = ready_node(16_000, 64 * 1024);
            n.labels
                .insert("zone".into(), ZONES[i % ZONES.len()].into());
            n.labels.insert(
                "jurisdiction".into(),
                if i % 2 == 0 { "eu" } else { "us" }.into(),
            );
            let mut op = [0u8; 32];
            op[..8].copy_from_slice(&((i % OPERATORS) as u64).to_le_bytes());
            n.operator = PublicKey(op);
            n
        })
        .collect()
}

/// Composite uniform in 0.5–1.0 and 0–3 qualifying attestations per node,
/// kept in a map as a reputation engine's cache would be; the time spent
/// answering is added up, to tell it from the scheduler's own.
struct Standings {
    by_node: HashMap<NodeId, NodeStanding>,
    nanos: AtomicU64,
}

impl Standings {
    fn new(nodes: &[Node]) -> Self {
        let by_node = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let r = mix(i as u64);
                let standing = NodeStanding {
                    composite: 0.5 + 0.5 * (r % 10_000) as f64 / 10_000.0,
                    qualifying_attestations: ((r >> 32) % 4) as u32,
                };
                (n.id, standing)
            })
            .collect();
        Self {
            by_node,
            nanos: AtomicU64::new(0),
        }
    }

    /// Time spent in `standings` since the last call of this.
    fn take_time(&self) -> Duration {
        Duration::from_nanos(self.nanos.swap(0, Ordering::Relaxed))
    }
}

impl TrustSource for Standings {
    fn standings(&self, _: &PublicKey, _: &[PublicKey], nodes: &[Node]) -> Vec<NodeStanding> {
        let started = Instant::now();
        let out = nodes
            .iter()
            .map(|n| {
                self.by_node
                    .get(&n.id)
                    .copied()
                    .unwrap_or(NodeStanding::UNKNOWN)
            })
            .collect();
        let spent = started.elapsed().as_nanos() as u64;
        self.nanos.fetch_add(spent, Ordering::Relaxed);
        out
    }
}

/// The rules of every other workload: reputation ≥ 0.8, one attestation, EU only.
fn rules() -> TrustRules {
    let mut r = TrustRules {
        min_reputation: 0.8,
        required_attestations: 1,
        ..TrustRules::default()
    };
    r.required_labels.insert("jurisdiction".into(), "eu".into());
    r
}

/// Requests of 1–10 instances, one workload each, 100m–400m / 128–512Mi, as
/// in the placement bench; every other workload carries [`rules`].
fn requests(instances: usize) -> Vec<ScheduleRequest> {
    let mut out = Vec::new();
    let mut left = instances;
    let mut i = 0usize;
    while left > 0 {
        let n = (i % 10 + 1).min(left);
        let k = (i % 4) as u64 + 1;
        let mut w: WorkloadDefinition =
            workload(&format!("w{i}"), Resources::new(100 * k, 128 * MIB * k));
        if i % 2 == 1 {
            w.spec.trust = rules();
        }
        out.push(ScheduleRequest {
            workload: Arc::new(w),
            instances: (0..n).map(|_| InstanceId::new()).collect(),
            existing: Vec::new(),
        });
        left -= n;
        i += 1;
    }
    out
}

struct Row {
    placed: usize,
    elapsed: Duration,
    /// Mean composite of the nodes placed on.
    mean_composite: f64,
    /// Placements of workloads with rules that broke one (must be 0 for mycelial).
    broken: usize,
    /// Of `elapsed`, the time the trust source took to answer.
    in_trust_source: Duration,
}

impl Row {
    fn per_second(&self) -> f64 {
        self.placed as f64 / self.elapsed.as_secs_f64()
    }
}

fn run(s: &dyn Scheduler, nodes: &[Node], standings: &Standings, reqs: &[ScheduleRequest]) -> Row {
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("building a tokio runtime: {e}"),
    };
    let mut decisions = Vec::with_capacity(reqs.len());
    let started = Instant::now();
    rt.block_on(async {
        for r in reqs {
            match s.schedule(r, nodes).await {
                Ok(d) => decisions.push(d),
                Err(e) => panic!("schedule failed: {e}"),
            }
        }
    });
    let elapsed = started.elapsed();
    let in_trust_source = standings.take_time();
    let by_id: HashMap<NodeId, &Node> = nodes.iter().map(|n| (n.id, n)).collect();
    let (mut placed, mut composite, mut broken) = (0, 0.0, 0);
    for (r, ds) in reqs.iter().zip(&decisions) {
        for d in ds {
            let ScheduleDecision::AssignNode(id) = d else {
                continue;
            };
            let standing = standings.by_node[id];
            placed += 1;
            composite += standing.composite;
            if mycelial::rules::check(&r.workload.spec.trust, by_id[id], &standing).is_err() {
                broken += 1;
            }
        }
    }
    for n in nodes {
        assert!(
            n.resources_allocatable.fits(s.reserved(&n.id)),
            "over-committed"
        );
    }
    Row {
        placed,
        elapsed,
        mean_composite: composite / placed.max(1) as f64,
        broken,
        in_trust_source,
    }
}

/// The same requests (fresh instance ids) without their trust rules.
fn without_rules(reqs: &[ScheduleRequest]) -> Vec<ScheduleRequest> {
    reqs.iter()
        .map(|r| {
            let mut w = (*r.workload).clone();
            w.spec.trust = TrustRules::default();
            ScheduleRequest {
                workload: Arc::new(w),
                instances: r.instances.iter().map(|_| InstanceId::new()).collect(),
                existing: Vec::new(),
            }
        })
        .collect()
}

/// `MYCELIAL_SAMPLE_SIZE`, or the default.
fn sample_size() -> usize {
    match std::env::var("MYCELIAL_SAMPLE_SIZE") {
        Ok(v) => match v.parse() {
            Ok(n) => n,
            Err(e) => panic!("MYCELIAL_SAMPLE_SIZE={v}: {e}"),
        },
        Err(_) => MycelialSchedulerConfig::with_seed(0).sample_size,
    }
}

fn mycelial(standings: &Arc<Standings>) -> MycelialScheduler {
    MycelialScheduler::new(
        MycelialSchedulerConfig {
            sample_size: sample_size(),
            ..MycelialSchedulerConfig::with_seed(42)
        },
        Arc::clone(standings) as Arc<dyn TrustSource>,
    )
}

fn simple() -> SimpleScheduler {
    SimpleScheduler::new(SimpleSchedulerConfig {
        seed: Some(42),
        ..SimpleSchedulerConfig::default()
    })
}

fn main() {
    let nodes = nodes();
    let standings = Arc::new(Standings::new(&nodes));
    let reqs = requests(INSTANCES);
    let warm_up = requests(WARM_UP_INSTANCES);
    let all_mean = standings.by_node.values().map(|s| s.composite).sum::<f64>()
        / standings.by_node.len() as f64;
    println!(
        "mycelial benchmark: {NODES} Ready nodes (16 cpu / 64 GiB), composite 0.5-1.0 \
         (mean {all_mean:.3}), {INSTANCES} instances in {} requests of 1-10; every other \
         workload has rules (min_reputation 0.8, required_attestations 1, jurisdiction = eu); \
         mycelial sample size {}",
        reqs.len(),
        sample_size()
    );
    let rule_less = without_rules(&reqs);
    // Warm-up (page in, grow allocations), not reported.
    run(&mycelial(&standings), &nodes, &standings, &warm_up);
    run(&simple(), &nodes, &standings, &warm_up);
    let m = run(&mycelial(&standings), &nodes, &standings, &reqs);
    let s = run(&simple(), &nodes, &standings, &reqs);
    let r = run(&simple(), &nodes, &standings, &rule_less);
    println!();
    for (name, r) in [
        ("mycelial", &m),
        ("simple", &s),
        ("simple, the same requests without rules", &r),
    ] {
        println!(
            "{name}: {:>6} placed in {:>7.1}ms ({:>6.1}ms answering standings), \
             {:>7.0} placements/s, mean composite of the nodes used {:.3}, \
             placements breaking a trust rule {}",
            r.placed,
            r.elapsed.as_secs_f64() * 1e3,
            r.in_trust_source.as_secs_f64() * 1e3,
            r.per_second(),
            r.mean_composite,
            r.broken
        );
    }
    assert_eq!(m.broken, 0, "the mycelial scheduler broke a trust rule");
    assert_eq!(
        m.placed, INSTANCES,
        "the mycelial scheduler refused instances"
    );
    println!();
    println!(
        "{NODES} nodes: mycelial {:.0} placements/s, simple {:.0} placements/s \
         ({:.0} placements/s without rules) (same run)",
        m.per_second(),
        s.per_second(),
        r.per_second()
    );
}
