//! Cases: name uniqueness, the secondary indexes, and batch writes.

use orchestrator_shared_types::{InstanceId, NodeId, WorkloadId};

use super::{init, instance, owner, sorted_by_id, workload};
use crate::{StateStore, StoreError};

/// A name is unique per owner: `NameTaken` for another id, fine for the same
/// id or another owner, and freed by a rename.
pub async fn case_workload_names_are_unique_per_owner(store: &dyn StateStore) {
    init(store).await;
    let (alice, bob) = (owner(1), owner(2));
    let first = workload(alice, "web");
    store.put_workload(&first).await.unwrap();

    let clash = workload(alice, "web");
    match store.put_workload(&clash).await {
        Err(StoreError::NameTaken { name, existing }) => {
            assert_eq!(name, "web", "NameTaken names the name");
            assert_eq!(
                existing, first.id,
                "NameTaken names the workload holding it"
            );
        }
        other => panic!("same owner and name under another id must be NameTaken, got {other:?}"),
    }
    assert_eq!(
        store.get_workload(&clash.id).await.unwrap(),
        None,
        "a refused put writes nothing"
    );
    assert_eq!(store.list_workloads().await.unwrap(), vec![first.clone()]);

    let bobs = workload(bob, "web");
    store
        .put_workload(&bobs)
        .await
        .expect("another owner may use the same name");
    let mut again = first.clone();
    again.generation = 2;
    store
        .put_workload(&again)
        .await
        .expect("re-putting a workload under its own name is fine");

    let mut renamed = again.clone();
    renamed.spec.name = "web-v2".into();
    store
        .put_workload(&renamed)
        .await
        .expect("renaming to a free name");
    assert_eq!(
        store.get_workload_by_name(&alice, "web").await.unwrap(),
        None,
        "old name freed"
    );
    assert_eq!(
        store.get_workload_by_name(&alice, "web-v2").await.unwrap(),
        Some(renamed)
    );
    store
        .put_workload(&clash)
        .await
        .expect("a renamed workload's old name is free");
    assert_eq!(
        store.get_workload_by_name(&alice, "web").await.unwrap(),
        Some(clash)
    );
    assert_eq!(
        store.get_workload_by_name(&bob, "web").await.unwrap(),
        Some(bobs)
    );
}

/// The by-workload and by-node lists follow updates that move an instance.
pub async fn case_instance_indexes_follow_updates(store: &dyn StateStore) {
    init(store).await;
    let (w1, w2) = (WorkloadId::new(), WorkloadId::new());
    let (n1, n2, n3) = (NodeId([1; 32]), NodeId([2; 32]), NodeId([3; 32]));
    let a: Vec<_> = (0..4).map(|_| instance(w1, n1)).collect();
    let b: Vec<_> = (0..3).map(|_| instance(w2, n2)).collect();
    store.put_instances_batch(&a).await.unwrap();
    store.put_instances_batch(&b).await.unwrap();
    assert_eq!(
        store.list_instances_by_workload(&w1).await.unwrap(),
        sorted_by_id(&a, |i| i.id)
    );
    assert_eq!(
        store.list_instances_by_workload(&w2).await.unwrap(),
        sorted_by_id(&b, |i| i.id)
    );
    assert_eq!(
        store.list_instances_by_node(&n1).await.unwrap(),
        sorted_by_id(&a, |i| i.id)
    );
    assert!(
        store.list_instances_by_node(&n3).await.unwrap().is_empty(),
        "empty node"
    );
    assert!(
        store
            .list_instances_by_workload(&WorkloadId::new())
            .await
            .unwrap()
            .is_empty(),
        "unknown workload"
    );

    // Move a[0] to n2, a[1] to n3.
    let mut moved0 = a[0].clone();
    moved0.node_id = n2;
    let mut moved1 = a[1].clone();
    moved1.node_id = n3;
    store.put_instance(&moved0).await.unwrap();
    store.put_instance(&moved1).await.unwrap();
    assert_eq!(
        store.list_instances_by_node(&n1).await.unwrap(),
        sorted_by_id(&a[2..], |i| i.id),
        "moved instances leave their old node's list"
    );
    let mut on_n2 = b.clone();
    on_n2.push(moved0.clone());
    assert_eq!(
        store.list_instances_by_node(&n2).await.unwrap(),
        sorted_by_id(&on_n2, |i| i.id),
        "a moved instance joins its new node's list"
    );
    assert_eq!(
        store.list_instances_by_node(&n3).await.unwrap(),
        vec![moved1.clone()]
    );
    let mut of_w1 = vec![moved0, moved1];
    of_w1.extend_from_slice(&a[2..]);
    assert_eq!(
        store.list_instances_by_workload(&w1).await.unwrap(),
        sorted_by_id(&of_w1, |i| i.id),
        "the workload list holds the updated records"
    );

    store.delete_instance(&a[2].id).await.unwrap();
    assert!(
        !store
            .list_instances_by_workload(&w1)
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == a[2].id),
        "a deleted instance leaves its workload's list"
    );
    assert!(
        !store
            .list_instances_by_node(&n1)
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == a[2].id),
        "a deleted instance leaves its node's list"
    );
}

/// `put_workloads_batch` writes everything or, on a name clash, nothing.
pub async fn case_workload_batches_are_all_or_nothing(store: &dyn StateStore) {
    init(store).await;
    let o = owner(1);
    let stored = workload(o, "taken");
    store.put_workload(&stored).await.unwrap();

    let batch = vec![workload(o, "b-1"), workload(o, "taken"), workload(o, "b-3")];
    assert!(
        matches!(
            store.put_workloads_batch(&batch).await,
            Err(StoreError::NameTaken { ref name, existing }) if name == "taken" && existing == stored.id
        ),
        "a batch with a taken name must fail with NameTaken"
    );
    assert_eq!(
        store.list_workloads().await.unwrap(),
        vec![stored.clone()],
        "nothing written"
    );

    let inner = vec![workload(o, "dup"), workload(o, "dup")];
    assert!(
        matches!(
            store.put_workloads_batch(&inner).await,
            Err(StoreError::NameTaken { .. })
        ),
        "a batch clashing with itself must fail with NameTaken"
    );
    assert_eq!(
        store.list_workloads().await.unwrap(),
        vec![stored.clone()],
        "nothing written"
    );

    // Within a batch, a rename frees a name for a later item.
    let mut renamed = stored.clone();
    renamed.spec.name = "free-now".into();
    let newcomer = workload(o, "taken");
    let good = vec![renamed.clone(), newcomer.clone(), workload(o, "b-3")];
    store
        .put_workloads_batch(&good)
        .await
        .expect("a batch without clashes");
    assert_eq!(
        store.list_workloads().await.unwrap(),
        sorted_by_id(&good, |w| w.id)
    );
    assert_eq!(
        store.get_workload_by_name(&o, "taken").await.unwrap(),
        Some(newcomer)
    );
    store
        .put_workloads_batch(&[])
        .await
        .expect("an empty batch");
}

/// Instance batches: put many, delete many (counting only those that existed).
pub async fn case_instance_batches(store: &dyn StateStore) {
    init(store).await;
    let w = WorkloadId::new();
    let batch: Vec<_> = (0..100).map(|i| instance(w, NodeId([i % 3; 32]))).collect();
    store.put_instances_batch(&batch).await.unwrap();
    assert_eq!(
        store.list_instances().await.unwrap(),
        sorted_by_id(&batch, |i| i.id)
    );
    store
        .put_instances_batch(&[])
        .await
        .expect("an empty batch");

    let mut ids: Vec<_> = batch[..10].iter().map(|i| i.id).collect();
    ids.push(batch[0].id); // twice
    ids.push(InstanceId::new()); // absent
    assert_eq!(
        store.delete_instances_batch(&ids).await.unwrap(),
        10,
        "counts those that existed"
    );
    assert_eq!(
        store.list_instances().await.unwrap(),
        sorted_by_id(&batch[10..], |i| i.id)
    );
    assert_eq!(
        store.delete_instances_batch(&ids).await.unwrap(),
        0,
        "nothing left to delete"
    );
    assert_eq!(
        store.delete_instances_batch(&[]).await.unwrap(),
        0,
        "an empty batch"
    );
}
