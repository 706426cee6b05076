//! The contract every [`StateStore`] passes (feature `testsuite`).
//!
//! [`run_all`] runs every case, each on a fresh store from the caller's
//! factory. The cases are public too, so one can be run alone: they take a
//! store, call [`StateStore::initialize`] themselves (it is idempotent), and
//! panic with a message saying what broke. Three cases are special:
//! [`case_uninitialized_store_refuses`] and
//! [`case_records_refused_before_initialize`] need a store on which
//! `initialize` was never called, and [`case_concurrent_writers`] takes an
//! `Arc` to spawn tasks.

// Test support: a failed expectation must panic with its message, so
// `unwrap`/`expect` are the point here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use orchestrator_shared_types::{
    manifest, Node, NodeId, NodeStatus, PublicKey, Resources, WorkloadDefinition, WorkloadId,
    WorkloadInstance, WorkloadSpec,
};

use crate::StateStore;

mod batches;
mod concurrency;
mod crud;
mod records;
mod watch;

pub use batches::{
    case_instance_batches, case_instance_indexes_follow_updates,
    case_workload_batches_are_all_or_nothing, case_workload_names_are_unique_per_owner,
};
pub use concurrency::case_concurrent_writers;
pub use crud::{
    case_health_check, case_initialize_is_idempotent, case_instances_crud, case_nodes_crud,
    case_uninitialized_store_refuses, case_workloads_crud,
};
pub use records::{
    case_record_kinds_are_listed, case_records_are_listed_by_key_within_their_kind,
    case_records_are_not_watched, case_records_delete, case_records_refuse_invalid_kinds_and_keys,
    case_records_refused_before_initialize, case_records_round_trip,
};
pub use watch::case_watch_reports_each_write_in_order;

/// Runs every case, each on a fresh store made by `make` (not yet initialised).
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn StateStore>>,
{
    macro_rules! run {
        ($case:ident) => {{
            eprintln!("state store contract: {}", stringify!($case));
            let store = make().await;
            $case(&*store).await;
        }};
    }
    run!(case_uninitialized_store_refuses);
    run!(case_initialize_is_idempotent);
    run!(case_health_check);
    run!(case_nodes_crud);
    run!(case_workloads_crud);
    run!(case_instances_crud);
    run!(case_workload_names_are_unique_per_owner);
    run!(case_instance_indexes_follow_updates);
    run!(case_workload_batches_are_all_or_nothing);
    run!(case_instance_batches);
    run!(case_watch_reports_each_write_in_order);
    run!(case_records_refused_before_initialize);
    run!(case_records_round_trip);
    run!(case_records_are_listed_by_key_within_their_kind);
    run!(case_record_kinds_are_listed);
    run!(case_records_delete);
    run!(case_records_refuse_invalid_kinds_and_keys);
    run!(case_records_are_not_watched);
    eprintln!("state store contract: case_concurrent_writers");
    case_concurrent_writers(make().await).await;
}

// ---- fixtures ----

/// A node whose id and operator are `byte` repeated.
pub fn node(byte: u8) -> Node {
    let resources = Resources::new(4000, 8 << 30);
    Node {
        id: NodeId([byte; 32]),
        address: format!("10.0.0.{byte}:7000"),
        status: NodeStatus::Ready,
        unschedulable: false,
        labels: BTreeMap::new(),
        taints: Vec::new(),
        resources_capacity: resources,
        resources_allocatable: resources,
        operator: PublicKey([byte; 32]),
        joined_at: Utc::now(),
    }
}

/// The owner key `byte` repeated.
pub fn owner(byte: u8) -> PublicKey {
    PublicKey([byte; 32])
}

/// A new one-container workload of `owner` called `name`.
pub fn workload(owner: PublicKey, name: &str) -> WorkloadDefinition {
    // Parsed from a manifest so that new optional spec fields need no change here.
    let manifest = serde_json::json!({
        "name": name,
        "containers": [{ "name": "main", "image": "registry.local/app:1" }],
    });
    let spec: WorkloadSpec = manifest::from_json(&manifest.to_string())
        .unwrap_or_else(|e| panic!("test manifest for {name:?}: {e}"));
    WorkloadDefinition::new(owner, spec)
}

/// A new pending instance of `workload` on `node`.
pub fn instance(workload: WorkloadId, node: NodeId) -> WorkloadInstance {
    WorkloadInstance::pending(workload, 1, node)
}

async fn init(store: &dyn StateStore) {
    store
        .initialize()
        .await
        .expect("initialize must succeed on a fresh store");
}

fn sorted_by_id<T: Clone, K: Ord>(items: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut v = items.to_vec();
    v.sort_by_key(key);
    v
}
