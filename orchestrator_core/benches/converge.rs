//! Convergence benchmark: N workloads × 3 replicas on 100 mock nodes, from one
//! durable batch apply until every replica runs, with SQLite and (as the
//! baseline in the same run) the in-memory store, and with etcd when
//! `UNIVRS_TEST_ETCD` names a cluster (`scripts/test-etcd start`).
//!
//! Run: `cargo bench -p orchestrator_core --bench converge` (add `-- 100 1000`
//! to choose the sizes; default 100, 1000, 10000).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_manager::mock::{test_node, MockClusterManager};
use container_runtime::mock::MockRuntime;
use container_runtime_interface::ContainerRuntime;
use orchestrator_core::{Deps, Orchestrator, ReconcilerConfig};
use orchestrator_shared_types::{
    ContainerConfig, CpuQuantity, MemoryQuantity, PublicKey, ResourceList, ResourceRequirements,
    WorkloadSpec,
};
use scheduler_interface::simple::{SimpleScheduler, SimpleSchedulerConfig};
use state_store_interface::memory::InMemoryStore;
use state_store_interface::sqlite::SqliteStore;
use state_store_interface::{EtcdStore, StateStore};
use tokio_util::sync::CancellationToken;

const NODES: u64 = 100;
const REPLICAS: u32 = 3;

fn spec(i: usize) -> WorkloadSpec {
    WorkloadSpec {
        name: format!("bench-{i}"),
        replicas: REPLICAS,
        containers: vec![ContainerConfig {
            name: "main".into(),
            image: "bench/app:1".into(),
            command: vec!["sleep".into(), "3600".into()],
            args: vec![],
            env: Default::default(),
            secret_env: vec![],
            secret_files: vec![],
            volumes: Vec::new(),
            ports: vec![],
            resources: ResourceRequirements {
                requests: ResourceList {
                    cpu: Some(CpuQuantity(100)),
                    memory: Some(MemoryQuantity(32 << 20)),
                    pids: None,
                },
                limits: ResourceList::default(),
            },
            liveness_probe: None,
            readiness_probe: None,
        }],
        labels: Default::default(),
        placement: Default::default(),
        restart_policy: Default::default(),
        update_strategy: Default::default(),
        trust: Default::default(),
        network: None,
    }
}

async fn run(workloads: usize, store: Arc<dyn StateStore>) -> (Duration, Duration) {
    let nodes: Vec<_> = (1..=NODES)
        .map(|i| test_node(i, 64_000, 256 << 30))
        .collect();
    let runtime = Arc::new(MockRuntime::new());
    for n in &nodes {
        runtime.init_node(n.id).await.unwrap();
    }
    let cluster = Arc::new(MockClusterManager::new(nodes[0].clone()));
    for n in &nodes[1..] {
        cluster.add_node(n.clone()).unwrap();
    }
    let deps = Deps {
        store,
        runtime: runtime.clone(),
        cluster,
        scheduler: Arc::new(SimpleScheduler::new(SimpleSchedulerConfig::default())),
        metrics: Arc::new(observability::metrics::Metrics::new().unwrap()),
        events: observability::events::EventHub::new(1024),
    };
    let cancel = CancellationToken::new();
    // One owner holds every workload here: quotas sized to the run.
    let one = orchestrator_core::OwnerUsage::of(&spec(0));
    let n = workloads.max(1) as u64;
    let config = ReconcilerConfig {
        resync_period: Duration::from_secs(300),
        quotas: orchestrator_core::OwnerQuotas {
            max_workloads: n,
            max_replicas: n * one.replicas,
            max_cpu_millis: n * one.cpu_millis,
            max_memory_bytes: n * one.memory_bytes,
            max_volume_bytes: 1 << 40,
        },
        ..ReconcilerConfig::default()
    };
    let orch = Orchestrator::start(config, deps, cancel.clone())
        .await
        .unwrap();
    let specs: Vec<_> = (0..workloads).map(spec).collect();
    let start = Instant::now();
    orch.apply_workloads(PublicKey([1; 32]), specs)
        .await
        .unwrap();
    let applied = start.elapsed();
    let want = workloads * REPLICAS as usize;
    while runtime.running_count() < want {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "did not converge"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let converged = start.elapsed();
    cancel.cancel();
    orch.shutdown().await;
    (applied, converged)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1000, 10_000]
    } else {
        sizes
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("converge N workloads x {REPLICAS} replicas on {NODES} mock nodes (apply in one batch -> all running)");
    println!(
        "{:>10} {:>8} {:>12} {:>14} {:>16}",
        "store", "N", "apply ms", "converge ms", "us/workload"
    );
    let etcd: Option<Vec<String>> = std::env::var("UNIVRS_TEST_ETCD")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.split(',').map(str::to_owned).collect());
    if etcd.is_none() {
        println!("(etcd skipped: UNIVRS_TEST_ETCD is not set; scripts/test-etcd start)");
    }
    let mut kinds = vec!["memory", "sqlite"];
    if etcd.is_some() {
        kinds.push("etcd");
    }
    for &n in &sizes {
        for &kind in &kinds {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn StateStore> = match (kind, &etcd) {
                ("memory", _) => Arc::new(InMemoryStore::new()),
                ("etcd", Some(endpoints)) => {
                    let prefix = format!("/univrs-bench/{}", rand_suffix());
                    Arc::new(rt.block_on(EtcdStore::connect(endpoints, &prefix)).unwrap())
                }
                _ => Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap()),
            };
            let (applied, converged) = rt.block_on(run(n, store));
            println!(
                "{kind:>10} {n:>8} {:>12.1} {:>14.1} {:>16.1}",
                applied.as_secs_f64() * 1e3,
                converged.as_secs_f64() * 1e3,
                converged.as_secs_f64() * 1e6 / n as f64
            );
        }
    }
}

/// A suffix no earlier run used, so that runs share the etcd without meeting.
fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}
