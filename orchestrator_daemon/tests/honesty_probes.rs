//! Honesty probes on real containers (issue 7, MYCELIAL.md §3 H): the
//! control plane's benchmark gets the CPU a node promises when the node has
//! it, and much less when the node runs work it did not account for (as a
//! machine smaller than it advertises would); each probe becomes a signed
//! observation and H falls for the node that under-delivers. Needs root,
//! cgroups and the test registry (`./scripts/test-registry start`; address in
//! `UNIVRS_TEST_REGISTRY`, default 127.0.0.1:5000), as CI has.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod rest_common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use cluster_manager::mock::test_node;

use container_runtime_interface::{ContainerRuntime, ContainerSpec};
use mycelial::evidence::{Entry, NodeRegistration};
use orchestrator_shared_types::{ContainerConfig, InstanceId, NodeId, WorkloadId};
use orchestrator_trust::probe::ProbeConfig;
use orchestrator_trust::TrustService;
use rest_common::{eventually, key, public, registry, youki_runtime};
use state_store_interface::memory::InMemoryStore;
use state_store_interface::StateStore;
use tempfile::TempDir;

/// A busy loop pinned to `cpu`, for at most 90 s.
///
/// Pinned, two to each core, so the probe shares whichever core it runs on
/// with two of them: unpinned, the kernel's group load balancing may leave
/// the probe a core of its own with every hog on the other (each hog group
/// then weighs as little as the probe alone), and the probe gets its whole
/// core. Bounded, because a failed test must not leave them starving the
/// tests after it: `timeout` is not the container's init (`; true` keeps
/// `sh` from exec-ing it), since an init ignores the SIGTERM it would send.
fn hog(cpu: usize) -> ContainerConfig {
    let script = format!("timeout 90 taskset -c {cpu} sh -c 'while :; do :; done'; true");
    serde_json::from_value(serde_json::json!({
        "name": "hog",
        "image": format!("{}/test/busybox:1", registry()),
        "command": ["sh", "-c", script],
        "resources": {"limits": {"cpu": "1"}}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_delivers_less_cpu_than_it_promises_loses_honesty() {
    let dir = TempDir::new().unwrap();
    let runtime = youki_runtime(dir.path()).await;
    // The node advertises 4 cores, whatever the machine has.
    let mut node = test_node(1, 4_000, 8 << 30);
    node.operator = public(&key(3));
    runtime.init_node(node.id).await.unwrap();

    let store: Arc<dyn StateStore> = Arc::new(InMemoryStore::new());
    store.initialize().await.unwrap();
    let control = key(99);
    let trust = TrustService::new(Arc::clone(&store), control.clone(), "probe-ledger").with_probes(
        Arc::clone(&runtime) as Arc<dyn ContainerRuntime>,
        ProbeConfig {
            image: Some(format!("{}/test/busybox:1", registry())),
            duration: Duration::from_secs(3),
            ..ProbeConfig::default()
        },
    );
    trust.load().await.unwrap();
    let joined = Utc::now() - TimeDelta::minutes(1);
    for (id, operator) in [
        (NodeId(public(&control).0), public(&control)),
        (node.id, node.operator),
    ] {
        trust
            .append(Entry::Node(NodeRegistration {
                node: id,
                operator,
                joined_at: joined,
                asn: None,
            }))
            .await
            .unwrap();
    }
    let honesty = || {
        trust
            .engine()
            .components(&public(&key(1)), &[], &node.id, Utc::now())
            .honesty
    };

    // Nothing else runs: the benchmark gets the core it was promised.
    let fair = trust
        .probe_node(store.as_ref(), &node)
        .await
        .unwrap()
        .expect("youki measures");
    println!("idle node: {fair:?}");
    assert_eq!(fair.promised_cpu_millis, 1_000);
    assert!(fair.cpu_ratio > 0.75, "an idle node delivers: {fair:?}");
    trust
        .probe_round(store.as_ref(), std::slice::from_ref(&node))
        .await;
    let after_fair = honesty();
    assert!(after_fair > 0.97, "H {after_fair}");

    // Work the node did not account for: two busy loops on each core.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut hogs = Vec::new();
    for i in 0..2 * cores {
        let spec = ContainerSpec {
            instance_id: InstanceId::new(),
            workload_id: WorkloadId::SYSTEM,
            config: hog(i % cores),
            labels: [("univrs.io/network".to_owned(), "none".to_owned())].into(),
            volumes: Vec::new(),
            secrets: Default::default(),
        };
        hogs.push(runtime.create_container(node.id, &spec).await.unwrap());
    }
    // Each hog spinning before the probe starts.
    let hog_seconds = || async {
        let mut each = Vec::new();
        for h in &hogs {
            let used = runtime.container_usage(h).await.unwrap();
            each.push(used.map_or(0.0, |u| u.cpu_seconds));
        }
        each
    };
    eventually("every hog busy", || async {
        hog_seconds().await.iter().all(|s| *s > 0.2)
    })
    .await;
    let hogs_before: f64 = hog_seconds().await.iter().sum();
    let starved = trust
        .probe_node(store.as_ref(), &node)
        .await
        .unwrap()
        .expect("youki measures");
    let hogs_during = hog_seconds().await.iter().sum::<f64>() - hogs_before;
    println!(
        "node running {} unaccounted busy loops on {cores} cores: {starved:?}; the hogs used \
         {hogs_during:.2} CPU seconds meanwhile",
        2 * cores
    );
    assert!(
        starved.cpu_ratio < 0.75 && starved.cpu_ratio < fair.cpu_ratio,
        "an overloaded node delivers less: {starved:?} (idle: {fair:?})"
    );
    for _ in 0..3 {
        trust
            .probe_round(store.as_ref(), std::slice::from_ref(&node))
            .await;
    }
    let after_starved = honesty();
    println!("H after the fair probe {after_fair:.3}, after 3 starved probes {after_starved:.3}");
    assert!(
        after_starved < after_fair - 0.05,
        "H {after_fair} -> {after_starved}"
    );

    for h in hogs {
        runtime.remove_container(&h).await.unwrap();
    }
    assert!(
        runtime.list_containers(node.id).await.unwrap().is_empty(),
        "the probes removed their benchmark containers"
    );
    runtime.shutdown();
}
