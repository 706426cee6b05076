//! Per-owner quotas through the library API: going above each one (workloads
//! by apply and by batch, replicas by scale, requested CPU and memory by
//! apply, scale and rollback) is refused with an error naming the quota, its
//! limit and the would-be usage, and the store is left exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{nodes, spec, start, Harness, OWNER};
use orchestrator_core::api::quota::names;
use orchestrator_core::{Error, OwnerQuotas, ReconcilerConfig};
use orchestrator_shared_types::{
    CpuQuantity, MemoryQuantity, PublicKey, WorkloadDefinition, WorkloadSpec,
};
use state_store_interface::memory::InMemoryStore;

const QUOTAS: OwnerQuotas = OwnerQuotas {
    max_workloads: 2,
    max_replicas: 6,
    max_cpu_millis: 1000,
    max_memory_bytes: 512 << 20,
    max_volume_bytes: 1 << 40,
};

async fn harness() -> Harness {
    let config = ReconcilerConfig {
        quotas: QUOTAS,
        ..ReconcilerConfig::for_test()
    };
    start(nodes(2), Arc::new(InMemoryStore::new()), config).await
}

/// Every workload in the store, by id, to compare before and after.
async fn snapshot(h: &Harness) -> Vec<WorkloadDefinition> {
    let mut all = h.store.list_workloads().await.unwrap();
    all.sort_by_key(|w| w.id.to_string());
    all
}

/// `spec` with `cpu` millicores and `memory` bytes requested per replica.
fn sized(name: &str, replicas: u32, cpu: u64, memory: u64) -> WorkloadSpec {
    let mut s = spec(name, replicas);
    let req = &mut s.containers[0].resources.requests;
    req.cpu = Some(CpuQuantity(cpu));
    req.memory = Some(MemoryQuantity(memory));
    s
}

/// Asserts `result` is the refusal of `quota` at `limit` with usage
/// `would_use`, that its message says so, and that the store did not change.
async fn assert_refused<T: std::fmt::Debug>(
    h: &Harness,
    before: &[WorkloadDefinition],
    result: Result<T, Error>,
    quota: &str,
    limit: u64,
    would_use: u64,
) {
    let err = result.expect_err("the write should be refused by a quota");
    let message = err.to_string();
    match &err {
        Error::QuotaExceeded {
            quota: q,
            limit: l,
            would_use: u,
            ..
        } => assert_eq!((*q, *l, *u), (quota, limit, would_use), "{message}"),
        other => panic!("expected {quota} to be exceeded, got {other}"),
    }
    for part in [quota.to_owned(), limit.to_string(), would_use.to_string()] {
        assert!(message.contains(&part), "{message} should name {part}");
    }
    assert_eq!(
        snapshot(h).await,
        before,
        "a refused write changed the store"
    );
}

#[tokio::test]
async fn the_workload_quota_refuses_a_third_workload_and_a_batch_over_it() {
    let h = harness().await;
    h.apply(spec("a", 1)).await;
    h.apply(spec("b", 1)).await;
    let before = snapshot(&h).await;
    let result = h.orch.apply_workload(OWNER, spec("c", 1)).await;
    assert_refused(&h, &before, result, names::WORKLOADS, 2, 3).await;
    // Updating an existing workload does not add one.
    let mut b = spec("b", 2);
    b.labels.insert("tier".into(), "web".into());
    h.orch.apply_workload(OWNER, b).await.unwrap();

    // A batch is all or nothing.
    let before = snapshot(&h).await;
    let result = h
        .orch
        .apply_workloads(OWNER, vec![spec("a", 1), spec("d", 1)])
        .await;
    assert_refused(&h, &before, result, names::WORKLOADS, 2, 3).await;

    // Another owner has quotas of its own.
    let other = PublicKey([7; 32]);
    h.orch.apply_workload(other, spec("c", 1)).await.unwrap();
    h.cancel.cancel();
}

#[tokio::test]
async fn the_replica_quota_refuses_scaling_up() {
    let h = harness().await;
    h.apply(spec("a", 2)).await;
    h.apply(spec("b", 1)).await;
    h.orch.scale(&OWNER, "a", 5).await.unwrap();
    let before = snapshot(&h).await;
    let result = h.orch.scale(&OWNER, "b", 2).await;
    assert_refused(&h, &before, result, names::REPLICAS, 6, 7).await;
    let result = h.orch.apply_workload(OWNER, spec("b", 3)).await;
    assert_refused(&h, &before, result, names::REPLICAS, 6, 8).await;
    // Scaling down is always allowed.
    h.orch.scale(&OWNER, "a", 1).await.unwrap();
    h.orch.scale(&OWNER, "b", 5).await.unwrap();
    h.cancel.cancel();
}

#[tokio::test]
async fn the_cpu_quota_refuses_requests_above_it() {
    let h = harness().await;
    h.apply(sized("a", 2, 300, 1 << 20)).await;
    let before = snapshot(&h).await;
    // 2 × 300m + 1 × 500m = 1100m.
    let result = h
        .orch
        .apply_workload(OWNER, sized("b", 1, 500, 1 << 20))
        .await;
    assert_refused(&h, &before, result, names::CPU, 1000, 1100).await;
    // 4 × 300m = 1200m.
    let result = h.orch.scale(&OWNER, "a", 4).await;
    assert_refused(&h, &before, result, names::CPU, 1000, 1200).await;
    h.orch
        .apply_workload(OWNER, sized("b", 1, 400, 1 << 20))
        .await
        .unwrap();
    h.cancel.cancel();
}

#[tokio::test]
async fn the_memory_quota_refuses_requests_above_it_also_by_rollback() {
    let h = harness().await;
    let mib = 1 << 20;
    h.apply(sized("a", 2, 10, 200 * mib)).await;
    let before = snapshot(&h).await;
    // 2 × 200 Mi + 1 × 200 Mi = 600 Mi.
    let result = h
        .orch
        .apply_workload(OWNER, sized("b", 1, 10, 200 * mib))
        .await;
    assert_refused(&h, &before, result, names::MEMORY, 512 * mib, 600 * mib).await;
    // A smaller template, then a rollback to the bigger one with 3 replicas.
    h.orch
        .apply_workload(OWNER, sized("a", 3, 10, 100 * mib))
        .await
        .unwrap();
    let before = snapshot(&h).await;
    let result = h.orch.rollback(&OWNER, "a").await;
    assert_refused(&h, &before, result, names::MEMORY, 512 * mib, 600 * mib).await;
    h.cancel.cancel();
}
