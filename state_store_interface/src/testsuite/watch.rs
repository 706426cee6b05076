//! Case: the change feed.

use std::future::Future;

use orchestrator_shared_types::{NodeId, WorkloadId};
use tokio::sync::broadcast::{self, error::TryRecvError};

use super::{init, instance, node, owner, workload};
use crate::{StateStore, StoreChange, StoreError};

/// Runs `write` while a watcher takes `expected` from `rx`, checking that each
/// change is visible to a read when it arrives, then that nothing else came.
async fn step<W>(
    store: &dyn StateStore,
    rx: &mut broadcast::Receiver<StoreChange>,
    what: &str,
    write: W,
    expected: Vec<StoreChange>,
) where
    W: Future<Output = crate::Result<()>>,
{
    let watcher = async {
        for want in expected {
            let got = rx
                .recv()
                .await
                .unwrap_or_else(|e| panic!("{what}: watch failed: {e}"));
            assert_eq!(got, want, "{what}: changes must come in write order");
            let visible = match &got {
                StoreChange::NodePut(id) => store.get_node(id).await.unwrap().is_some(),
                StoreChange::NodeDeleted(id) => store.get_node(id).await.unwrap().is_none(),
                StoreChange::WorkloadPut(id) => store.get_workload(id).await.unwrap().is_some(),
                StoreChange::WorkloadDeleted(id) => store.get_workload(id).await.unwrap().is_none(),
                StoreChange::InstancePut { id, .. } => {
                    store.get_instance(id).await.unwrap().is_some()
                }
                StoreChange::InstanceDeleted { id, .. } => {
                    store.get_instance(id).await.unwrap().is_none()
                }
            };
            assert!(
                visible,
                "{what}: {got:?} was published before a read could see it"
            );
        }
    };
    let (result, ()) = tokio::join!(write, watcher);
    result.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        matches!(rx.try_recv(), Err(TryRecvError::Empty)),
        "{what}: no further change expected"
    );
}

/// `watch` reports each successful write, in order, once it is readable;
/// failed writes and deletes of absent keys report nothing.
pub async fn case_watch_reports_each_write_in_order(store: &dyn StateStore) {
    init(store).await;
    let mut rx = store.watch();
    let n = node(1);
    step(
        store,
        &mut rx,
        "put node",
        store.put_node(&n),
        vec![StoreChange::NodePut(n.id)],
    )
    .await;
    let del = async { store.delete_node(&n.id).await.map(drop) };
    step(
        store,
        &mut rx,
        "delete node",
        del,
        vec![StoreChange::NodeDeleted(n.id)],
    )
    .await;
    let absent = async {
        assert!(!store.delete_node(&n.id).await?);
        assert!(!store.delete_workload(&WorkloadId::new()).await?);
        assert!(
            !store
                .delete_instance(&instance(WorkloadId::new(), n.id).id)
                .await?
        );
        Ok(())
    };
    step(store, &mut rx, "deletes of absent keys", absent, vec![]).await;

    let o = owner(1);
    let w = workload(o, "watched");
    step(
        store,
        &mut rx,
        "put workload",
        store.put_workload(&w),
        vec![StoreChange::WorkloadPut(w.id)],
    )
    .await;
    let refused = async {
        let clash = store.put_workload(&workload(o, "watched")).await;
        assert!(
            matches!(clash, Err(StoreError::NameTaken { .. })),
            "clash: {clash:?}"
        );
        Ok(())
    };
    step(store, &mut rx, "refused put", refused, vec![]).await;
    let ws = vec![workload(o, "w-a"), workload(o, "w-b")];
    let puts = ws.iter().map(|w| StoreChange::WorkloadPut(w.id)).collect();
    step(
        store,
        &mut rx,
        "workload batch",
        store.put_workloads_batch(&ws),
        puts,
    )
    .await;

    let is: Vec<_> = (0..5).map(|_| instance(w.id, n.id)).collect();
    let puts = is
        .iter()
        .map(|i| StoreChange::InstancePut {
            id: i.id,
            workload_id: w.id,
        })
        .collect();
    step(
        store,
        &mut rx,
        "instance batch",
        store.put_instances_batch(&is),
        puts,
    )
    .await;
    let mut moved = is[0].clone();
    moved.node_id = NodeId([2; 32]);
    let put = vec![StoreChange::InstancePut {
        id: moved.id,
        workload_id: w.id,
    }];
    step(
        store,
        &mut rx,
        "instance update",
        store.put_instance(&moved),
        put,
    )
    .await;
    let gone = vec![
        StoreChange::InstanceDeleted {
            id: is[3].id,
            workload_id: w.id,
        },
        StoreChange::InstanceDeleted {
            id: is[1].id,
            workload_id: w.id,
        },
    ];
    let ids = [is[3].id, is[3].id, is[1].id];
    let del = async { store.delete_instances_batch(&ids).await.map(drop) };
    step(store, &mut rx, "instance batch delete", del, gone).await;
    let del = async { store.delete_instance(&is[0].id).await.map(drop) };
    let gone = vec![StoreChange::InstanceDeleted {
        id: is[0].id,
        workload_id: w.id,
    }];
    step(store, &mut rx, "instance delete", del, gone).await;
    let del = async { store.delete_workload(&w.id).await.map(drop) };
    step(
        store,
        &mut rx,
        "workload delete",
        del,
        vec![StoreChange::WorkloadDeleted(w.id)],
    )
    .await;
}
