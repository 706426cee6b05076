//! Cases: initialisation, health, and reading back what was written.

use chrono::Utc;
use orchestrator_shared_types::{InstanceStatus, NodeId, NodeStatus, WorkloadId};

use super::{init, instance, node, owner, sorted_by_id, workload};
use crate::{StateStore, StoreError};

/// Before `initialize`, reads and writes fail with `NotInitialized`; after it they work.
/// Needs a store on which `initialize` was never called.
pub async fn case_uninitialized_store_refuses(store: &dyn StateStore) {
    let n = node(1);
    assert!(
        matches!(store.put_node(&n).await, Err(StoreError::NotInitialized)),
        "a write before initialize must fail with NotInitialized"
    );
    assert!(
        matches!(store.get_node(&n.id).await, Err(StoreError::NotInitialized)),
        "a read before initialize must fail with NotInitialized"
    );
    init(store).await;
    store
        .put_node(&n)
        .await
        .expect("a write after initialize must succeed");
}

/// `initialize` may be called again and keeps the data.
pub async fn case_initialize_is_idempotent(store: &dyn StateStore) {
    init(store).await;
    let n = node(1);
    store.put_node(&n).await.unwrap();
    store
        .initialize()
        .await
        .expect("a second initialize must succeed");
    store
        .initialize()
        .await
        .expect("a third initialize must succeed");
    assert_eq!(
        store.get_node(&n.id).await.unwrap(),
        Some(n),
        "initialize must keep the data"
    );
}

/// An initialised store answers its health check.
pub async fn case_health_check(store: &dyn StateStore) {
    init(store).await;
    store
        .health_check()
        .await
        .expect("health check of an initialised store");
}

/// Nodes: put, get, upsert, list ordered by id, delete.
pub async fn case_nodes_crud(store: &dyn StateStore) {
    init(store).await;
    assert_eq!(
        store.get_node(&NodeId([9; 32])).await.unwrap(),
        None,
        "absent node"
    );
    assert!(
        store.list_nodes().await.unwrap().is_empty(),
        "a fresh store has no nodes"
    );
    let (a, b, c) = (node(3), node(1), node(2));
    for n in [&a, &b, &c] {
        store.put_node(n).await.unwrap();
    }
    assert_eq!(
        store.get_node(&a.id).await.unwrap().as_ref(),
        Some(&a),
        "node read back"
    );
    assert_eq!(
        store.list_nodes().await.unwrap(),
        vec![b.clone(), c.clone(), a.clone()],
        "nodes are listed by id"
    );

    let mut updated = a.clone();
    updated.transition(NodeStatus::Down).unwrap();
    updated.labels.insert("zone".into(), "b".into());
    store.put_node(&updated).await.unwrap();
    assert_eq!(
        store.get_node(&a.id).await.unwrap(),
        Some(updated),
        "put must replace a node"
    );
    assert_eq!(
        store.list_nodes().await.unwrap().len(),
        3,
        "an upsert adds no node"
    );

    assert!(
        store.delete_node(&a.id).await.unwrap(),
        "deleting a present node returns true"
    );
    assert!(
        !store.delete_node(&a.id).await.unwrap(),
        "deleting it again returns false"
    );
    assert_eq!(
        store.get_node(&a.id).await.unwrap(),
        None,
        "a deleted node is gone"
    );
    assert_eq!(
        store.list_nodes().await.unwrap(),
        vec![b, c],
        "the others remain"
    );
}

/// Workloads: put, get, by name, upsert, list ordered by id, delete.
pub async fn case_workloads_crud(store: &dyn StateStore) {
    init(store).await;
    let o = owner(1);
    let ws: Vec<_> = (0..5).map(|i| workload(o, &format!("app-{i}"))).collect();
    for w in &ws {
        store.put_workload(w).await.unwrap();
    }
    assert_eq!(
        store.get_workload(&ws[2].id).await.unwrap().as_ref(),
        Some(&ws[2])
    );
    assert_eq!(
        store.get_workload(&WorkloadId::new()).await.unwrap(),
        None,
        "absent workload"
    );
    assert_eq!(
        store
            .get_workload_by_name(&o, "app-3")
            .await
            .unwrap()
            .as_ref(),
        Some(&ws[3]),
        "workload by owner and name"
    );
    assert_eq!(
        store.get_workload_by_name(&o, "nope").await.unwrap(),
        None,
        "absent name"
    );
    assert_eq!(
        store
            .get_workload_by_name(&owner(2), "app-3")
            .await
            .unwrap(),
        None,
        "names are looked up per owner"
    );
    assert_eq!(
        store.list_workloads().await.unwrap(),
        sorted_by_id(&ws, |w| w.id),
        "workloads are listed by id"
    );

    let mut updated = ws[1].clone();
    updated.generation = 2;
    updated.spec.replicas = 7;
    updated.spec.labels.insert("tier".into(), "web".into());
    store.put_workload(&updated).await.unwrap();
    assert_eq!(
        store.get_workload(&updated.id).await.unwrap().as_ref(),
        Some(&updated)
    );
    assert_eq!(
        store.get_workload_by_name(&o, "app-1").await.unwrap(),
        Some(updated.clone()),
        "the name lookup sees the update"
    );
    assert_eq!(
        store.list_workloads().await.unwrap().len(),
        5,
        "an upsert adds no workload"
    );

    let kept = instance(ws[0].id, NodeId([1; 32]));
    store.put_instance(&kept).await.unwrap();
    assert!(
        store.delete_workload(&ws[0].id).await.unwrap(),
        "deleting a present workload"
    );
    assert!(
        !store.delete_workload(&ws[0].id).await.unwrap(),
        "deleting it again"
    );
    assert_eq!(store.get_workload(&ws[0].id).await.unwrap(), None);
    assert_eq!(
        store.get_workload_by_name(&o, "app-0").await.unwrap(),
        None,
        "name freed"
    );
    assert_eq!(
        store.list_instances_by_workload(&ws[0].id).await.unwrap(),
        vec![kept],
        "deleting a workload keeps its instances"
    );
    store
        .put_workload(&workload(o, "app-0"))
        .await
        .expect("a deleted workload's name is free");
}

/// Instances: put, get, upsert, list ordered by id, delete.
pub async fn case_instances_crud(store: &dyn StateStore) {
    init(store).await;
    let w = WorkloadId::new();
    let is: Vec<_> = (0..6).map(|i| instance(w, NodeId([i % 2; 32]))).collect();
    for i in &is {
        store.put_instance(i).await.unwrap();
    }
    assert_eq!(
        store.get_instance(&is[4].id).await.unwrap().as_ref(),
        Some(&is[4])
    );
    assert_eq!(
        store.list_instances().await.unwrap(),
        sorted_by_id(&is, |i| i.id),
        "instances are listed by id"
    );

    let mut updated = is[4].clone();
    updated
        .transition(InstanceStatus::Running, None, Utc::now())
        .unwrap();
    updated.container_ids = vec!["c-1".to_owned().into()];
    updated.started_at = Some(Utc::now());
    updated.restarts = 2;
    store.put_instance(&updated).await.unwrap();
    assert_eq!(
        store.get_instance(&updated.id).await.unwrap(),
        Some(updated.clone())
    );
    assert_eq!(
        store.list_instances().await.unwrap().len(),
        6,
        "an upsert adds no instance"
    );

    assert!(
        store.delete_instance(&updated.id).await.unwrap(),
        "deleting a present instance"
    );
    assert!(
        !store.delete_instance(&updated.id).await.unwrap(),
        "deleting it again"
    );
    assert_eq!(store.get_instance(&updated.id).await.unwrap(), None);
    assert_eq!(store.list_instances().await.unwrap().len(), 5);
}
