//! Placements per second of `SimpleScheduler` on 5,000 nodes (SPEC §21: at
//! least 50,000/s on 2 cores), beside an exhaustive baseline that filters and
//! scores every node for every instance.
//!
//! Run with `cargo bench -p scheduler_interface --bench placement`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator_shared_types::{InstanceId, Node, NodeId, Resources, WorkloadDefinition};
use scheduler_interface::simple::DEFAULT_SAMPLE_SIZE;
use scheduler_interface::testsuite::{ready_node, workload, MIB};
use scheduler_interface::{
    ScheduleDecision, ScheduleRequest, Scheduler, ScoringStrategy, SimpleScheduler,
    SimpleSchedulerConfig,
};

const NODES: usize = 5_000;
const INSTANCES: usize = 100_000;
const BASELINE_INSTANCES: usize = 5_000;
const ZONES: [&str; 4] = ["a", "b", "c", "d"];

fn nodes() -> Vec<Node> {
    (0..NODES)
        .map(|i| {
            let mut n = ready_node(16_000, 64 * 1024);
            n.labels
                .insert("zone".into(), ZONES[i % ZONES.len()].into());
            n.labels
                .insert("disk".into(), if i % 2 == 0 { "ssd" } else { "hdd" }.into());
            n
        })
        .collect()
}

/// Requests of 1–10 instances, one workload each, 100m–400m / 128–512Mi; one
/// workload in ten selects a zone (a quarter of the nodes).
fn requests(instances: usize) -> Vec<ScheduleRequest> {
    let mut out = Vec::new();
    let mut left = instances;
    let mut i = 0usize;
    while left > 0 {
        let n = (i % 10 + 1).min(left);
        let k = (i % 4) as u64 + 1;
        let mut w: WorkloadDefinition =
            workload(&format!("w{i}"), Resources::new(100 * k, 128 * MIB * k));
        if i % 10 == 3 {
            w.spec
                .placement
                .node_selector
                .insert("zone".into(), ZONES[i % ZONES.len()].into());
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
    name: String,
    sample: String,
    instances: usize,
    placed: usize,
    elapsed: Duration,
    max_per_node: u32,
    used_nodes: usize,
}

fn run(name: &str, config: SimpleSchedulerConfig, nodes: &[Node], reqs: &[ScheduleRequest]) -> Row {
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("building a tokio runtime: {e}"),
    };
    let sample = if config.sample_size == usize::MAX {
        "all".to_owned()
    } else {
        config.sample_size.to_string()
    };
    let s = SimpleScheduler::new(config);
    let instances: usize = reqs.iter().map(|r| r.instances.len()).sum();
    let mut decisions = Vec::with_capacity(reqs.len());
    let started = Instant::now();
    rt.block_on(async {
        for r in reqs {
            match s.schedule(r, nodes).await {
                Ok(d) => decisions.push(d),
                Err(e) => panic!("{name}: schedule failed: {e}"),
            }
        }
    });
    let elapsed = started.elapsed();
    let mut per_node: HashMap<NodeId, u32> = HashMap::new();
    let mut placed = 0;
    for d in decisions.iter().flatten() {
        if let ScheduleDecision::AssignNode(n) = d {
            placed += 1;
            *per_node.entry(*n).or_default() += 1;
        }
    }
    for n in nodes {
        assert!(
            n.resources_allocatable.fits(s.reserved(&n.id)),
            "{name}: over-committed"
        );
    }
    Row {
        name: name.to_owned(),
        sample,
        instances,
        placed,
        elapsed,
        max_per_node: per_node.values().copied().max().unwrap_or(0),
        used_nodes: per_node.len(),
    }
}

fn main() {
    let nodes = nodes();
    let reqs = requests(INSTANCES);
    let baseline_reqs = requests(BASELINE_INSTANCES);
    println!(
        "placement benchmark: {NODES} Ready nodes (16 cpu / 64 GiB), {INSTANCES} instances in {} requests of 1-10",
        reqs.len()
    );
    let sampled = |strategy| SimpleSchedulerConfig {
        strategy,
        sample_size: DEFAULT_SAMPLE_SIZE,
        seed: Some(42),
        spread_weight: None,
    };
    let exhaustive = |strategy| SimpleSchedulerConfig {
        sample_size: usize::MAX,
        ..sampled(strategy)
    };
    // Warm-up (page in, grow allocations), not reported.
    let _ = run(
        "warm-up",
        sampled(ScoringStrategy::Spread),
        &nodes,
        &baseline_reqs,
    );
    let rows = [
        run(
            "sampled spread",
            sampled(ScoringStrategy::Spread),
            &nodes,
            &reqs,
        ),
        run(
            "sampled bin-pack",
            sampled(ScoringStrategy::BinPack),
            &nodes,
            &reqs,
        ),
        run(
            "exhaustive spread (baseline)",
            exhaustive(ScoringStrategy::Spread),
            &nodes,
            &baseline_reqs,
        ),
        run(
            "exhaustive bin-pack (baseline)",
            exhaustive(ScoringStrategy::BinPack),
            &nodes,
            &baseline_reqs,
        ),
    ];
    println!();
    println!(
        "| {:<30} | {:>6} | {:>9} | {:>9} | {:>10} | {:>14} | {:>10} | {:>8} |",
        "scheduler",
        "sample",
        "instances",
        "placed",
        "time",
        "placements/s",
        "used nodes",
        "max/node"
    );
    println!(
        "|{:-<32}|{:->8}|{:->11}|{:->11}|{:->12}|{:->16}|{:->12}|{:->10}|",
        "", "", "", "", "", "", "", ""
    );
    for r in &rows {
        let per_s = r.placed as f64 / r.elapsed.as_secs_f64();
        println!(
            "| {:<30} | {:>6} | {:>9} | {:>9} | {:>8.1}ms | {:>14.0} | {:>10} | {:>8} |",
            r.name,
            r.sample,
            r.instances,
            r.placed,
            r.elapsed.as_secs_f64() * 1e3,
            per_s,
            r.used_nodes,
            r.max_per_node
        );
    }
    let speedup = (rows[0].placed as f64 / rows[0].elapsed.as_secs_f64())
        / (rows[2].placed as f64 / rows[2].elapsed.as_secs_f64());
    println!();
    println!("sampled spread vs exhaustive spread: {speedup:.0}x; target >= 50,000 placements/s");
}
