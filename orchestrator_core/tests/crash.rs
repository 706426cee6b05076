//! Crash safety: dropping the orchestrator without shutdown in the middle of
//! applying 1,000 workloads loses no acknowledged write, and a new
//! orchestrator on the same database converges.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use orchestrator_core::{OwnerQuotas, OwnerUsage, ReconcilerConfig};
use orchestrator_shared_types::InstanceStatus;
use state_store_interface::sqlite::SqliteStore;
use state_store_interface::StateStore;

const TOTAL: usize = 1000;
const CRASH_AFTER: usize = 400;

/// The test config with per-owner quotas sized to `TOTAL` workloads of one
/// owner (the defaults would refuse most of them).
fn config() -> ReconcilerConfig {
    let one = OwnerUsage::of(&spec("sizing", 2));
    let n = TOTAL as u64;
    ReconcilerConfig {
        quotas: OwnerQuotas {
            max_workloads: n,
            max_replicas: n * one.replicas,
            max_cpu_millis: n * one.cpu_millis,
            max_memory_bytes: n * one.memory_bytes,
            max_volume_bytes: 1 << 40,
        },
        ..ReconcilerConfig::for_test()
    }
}

#[test]
fn acknowledged_writes_survive_a_crash_mid_apply_and_the_cluster_converges() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&db).unwrap());
        let h = Arc::new(start(nodes(10), store, config()).await);
        for worker in 0..8 {
            let h = Arc::clone(&h);
            let acked = Arc::clone(&acked);
            tokio::spawn(async move {
                for i in (worker..TOTAL).step_by(8) {
                    let name = format!("crash-{i}");
                    if h.orch.apply_workload(OWNER, spec(&name, 2)).await.is_ok() {
                        acked.lock().unwrap().push(name);
                    }
                }
            });
        }
        wait_for(
            Duration::from_secs(60),
            "400 acknowledged applies",
            || async { (acked.lock().unwrap().len() >= CRASH_AFTER).then_some(()) },
        )
        .await;
    });
    // No shutdown: every task is dropped wherever it stands.
    rt.shutdown_background();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= CRASH_AFTER && acked.len() < TOTAL,
        "crashed mid-apply: {} acked",
        acked.len()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&db).unwrap());
        store.initialize().await.unwrap();
        for name in &acked {
            assert!(
                store
                    .get_workload_by_name(&OWNER, name)
                    .await
                    .unwrap()
                    .is_some(),
                "acknowledged {name} was lost"
            );
        }
        // A fresh node (the old containers died with the process) converges.
        let h = start(nodes(10), Arc::clone(&store), config()).await;
        let workloads = h.orch.list_workloads().await.unwrap();
        assert!(workloads.len() >= acked.len());
        let want = workloads.len() * 2;
        h.wait_containers(want).await;
        for w in &workloads {
            // A container runs a moment before its instance record says so.
            h.wait_running(w.name(), 2).await;
            let instances = h.orch.list_instances(&w.id).await.unwrap();
            assert_eq!(instances.len(), 2, "{}", w.name());
            assert!(instances
                .iter()
                .all(|i| i.status == InstanceStatus::Running));
        }
        h.stop().await;
    });
}
