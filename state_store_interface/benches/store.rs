//! Store throughput and latency, printed as a table (no harness).
//!
//! `cargo bench -p state_store_interface --bench store`
//!
//! - `put_instances_batch` of 10,000 instances;
//! - 1,000 concurrent single `put_instance` calls (group commit at work in SQLite);
//! - `list_instances_by_workload` with 10,000 workloads × 3 instances present.
//!
//! SQLite runs on a file in a temp dir with WAL and `synchronous=FULL`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator_shared_types::{NodeId, WorkloadId, WorkloadInstance};
use state_store_interface::{InMemoryStore, SqliteStore, StateStore};

/// The value, or a panic saying what failed: a benchmark has nobody to return to.
fn check<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

const BATCH: usize = 10_000;
const CONCURRENT: usize = 1_000;
const WORKLOADS: usize = 10_000;
const PER_WORKLOAD: usize = 3;
const LOOKUPS: usize = 1_000;

fn instances(n: usize, workload: WorkloadId) -> Vec<WorkloadInstance> {
    (0..n)
        .map(|i| WorkloadInstance::pending(workload, 1, NodeId([(i % 16) as u8; 32])))
        .collect()
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

async fn bench(name: &str, make: impl Fn() -> Arc<dyn StateStore>) {
    // 1. One batch of 10,000.
    let store = make();
    check(store.initialize().await, "initialize");
    let batch = instances(BATCH, WorkloadId::new());
    let start = Instant::now();
    check(
        store.put_instances_batch(&batch).await,
        "put_instances_batch",
    );
    let took = start.elapsed();
    println!(
        "{name:<8} put_instances_batch({BATCH}): {:>9.1} ms  {:>10.0} instances/s",
        took.as_secs_f64() * 1e3,
        rate(BATCH, took)
    );

    // 2. 1,000 concurrent single puts.
    let store = make();
    check(store.initialize().await, "initialize");
    let singles = instances(CONCURRENT, WorkloadId::new());
    let start = Instant::now();
    let tasks: Vec<_> = singles
        .into_iter()
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.put_instance(&i).await })
        })
        .collect();
    for t in tasks {
        check(check(t.await, "join"), "put_instance");
    }
    let took = start.elapsed();
    println!(
        "{name:<8} {CONCURRENT} concurrent put_instance: {:>9.1} ms  {:>10.0} writes/s",
        took.as_secs_f64() * 1e3,
        rate(CONCURRENT, took)
    );

    // 3. Sequential single puts, for comparison (one commit each).
    let seq = 200;
    let start = Instant::now();
    for i in instances(seq, WorkloadId::new()) {
        check(store.put_instance(&i).await, "put_instance");
    }
    let took = start.elapsed();
    println!(
        "{name:<8} {seq} sequential put_instance: {:>9.1} ms  {:>10.0} writes/s",
        took.as_secs_f64() * 1e3,
        rate(seq, took)
    );

    // 4. Lookups by workload among 10,000 workloads × 3 instances.
    let store = make();
    check(store.initialize().await, "initialize");
    let ids: Vec<WorkloadId> = (0..WORKLOADS).map(|_| WorkloadId::new()).collect();
    let all: Vec<_> = ids
        .iter()
        .flat_map(|w| instances(PER_WORKLOAD, *w))
        .collect();
    check(store.put_instances_batch(&all).await, "put_instances_batch");
    let mut lat = Vec::with_capacity(LOOKUPS);
    for w in ids.iter().step_by(WORKLOADS / LOOKUPS) {
        let start = Instant::now();
        let found = check(
            store.list_instances_by_workload(w).await,
            "list_instances_by_workload",
        );
        lat.push(start.elapsed());
        assert_eq!(found.len(), PER_WORKLOAD);
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6;
    println!(
        "{name:<8} list_instances_by_workload ({WORKLOADS}x{PER_WORKLOAD} present, {} calls): \
         p50 {:.0} us  p99 {:.0} us  max {:.0} us",
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}

fn main() {
    let runtime = check(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        "building the runtime",
    );
    let dir = check(tempfile::TempDir::new(), "creating a temp dir");
    println!(
        "SQLite files under {} (WAL, synchronous=FULL)",
        dir.path().display()
    );
    runtime.block_on(async {
        bench("memory", || Arc::new(InMemoryStore::new())).await;
        let counter = std::sync::atomic::AtomicUsize::new(0);
        bench("sqlite", || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.path().join(format!("bench-{n}.db"));
            Arc::new(check(SqliteStore::open(path), "opening the store"))
        })
        .await;
    });
}
