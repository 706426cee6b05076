//! The `ClusterManager` contract suite on the mock, and the mock's own controls.

use std::sync::Arc;
use std::time::Duration;

use cluster_manager::{test_node, MockClusterManager};
use cluster_manager_interface::{testsuite, ClusterEvent, ClusterManager};
use orchestrator_shared_types::{NodeId, NodeStatus};
use tokio::sync::broadcast;

const GIB: u64 = 1 << 30;

fn manager() -> MockClusterManager {
    MockClusterManager::new(test_node(1, 4000, 8 * GIB))
}

#[tokio::test]
async fn mock_cluster_manager_passes_the_contract_suite() {
    testsuite::run_all(|| async { Arc::new(manager()) as Arc<dyn ClusterManager> }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_cluster_manager_passes_the_contract_suite_on_several_threads() {
    testsuite::run_all(|| async { Arc::new(manager()) as Arc<dyn ClusterManager> }).await;
}

/// Every event already sent, in order.
fn drain(rx: &mut broadcast::Receiver<ClusterEvent>) -> Vec<ClusterEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[tokio::test]
async fn initialize_is_idempotent_and_optional() {
    let cm = manager();
    assert!(!cm.is_initialized());
    assert_eq!(
        cm.list_nodes().await.unwrap().len(),
        1,
        "members exist before initialize"
    );
    cm.initialize().await.unwrap();
    cm.initialize().await.unwrap();
    assert!(cm.is_initialized());
    assert_eq!(cm.local_node().await.unwrap(), test_node(1, 4000, 8 * GIB));
}

#[tokio::test]
async fn membership_changes_are_published_in_order() {
    let cm = manager();
    let mut rx = cm.subscribe_to_events();
    let two = test_node(2, 2000, 4 * GIB);
    let three = test_node(3, 2000, 4 * GIB);

    cm.add_node(two.clone()).unwrap();
    cm.update_node(three.clone()).unwrap(); // not a member yet: added
    let mut bigger = two.clone();
    bigger.resources_allocatable.cpu_millis = 3000;
    cm.update_node(bigger.clone()).unwrap();
    let down = cm.set_status(&three.id, NodeStatus::Down).unwrap();
    assert_eq!(down.status, NodeStatus::Down);
    assert_eq!(cm.remove_node(&two.id), Some(bigger.clone()));
    assert_eq!(
        cm.remove_node(&two.id),
        None,
        "removing a non-member is a no-op"
    );

    assert_eq!(
        drain(&mut rx),
        vec![
            ClusterEvent::NodeAdded(two.clone()),
            ClusterEvent::NodeAdded(three.clone()),
            ClusterEvent::NodeUpdated(bigger),
            ClusterEvent::NodeUpdated(down.clone()),
            ClusterEvent::NodeRemoved(two.id),
        ]
    );
    let ids: Vec<NodeId> = cm
        .list_nodes()
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&three.id) && !ids.contains(&two.id));
    assert_eq!(cm.get_node(&two.id).await.unwrap(), None);
    assert_eq!(cm.get_node(&three.id).await.unwrap(), Some(down));
}

#[tokio::test]
async fn unchanged_records_emit_nothing_and_unknown_nodes_are_errors() {
    let cm = manager();
    let local = cm.local_node().await.unwrap();
    let mut rx = cm.subscribe_to_events();
    cm.set_status(&local.id, NodeStatus::Ready).unwrap();
    cm.set_unschedulable(&local.id, false).await.unwrap();
    assert!(drain(&mut rx).is_empty());

    let stranger = test_node(9, 1, 1).id;
    assert!(cm.set_status(&stranger, NodeStatus::Down).is_err());
    assert!(cm.set_unschedulable(&stranger, true).await.is_err());
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn cordon_is_kept_in_the_local_record() {
    let cm = manager();
    let local = cm.local_node().await.unwrap();
    let cordoned = cm.set_unschedulable(&local.id, true).await.unwrap();
    assert!(cordoned.unschedulable && !cordoned.is_schedulable());
    assert_eq!(cm.local_node().await.unwrap(), cordoned);
}

#[tokio::test]
async fn removing_the_local_node_keeps_its_record() {
    let cm = manager();
    let local = cm.local_node().await.unwrap();
    assert!(cm.remove_node(&local.id).is_some());
    assert!(cm.list_nodes().await.unwrap().is_empty());
    assert_eq!(cm.local_node().await.unwrap(), local);
    cm.add_node(local.clone()).unwrap();
    assert_eq!(cm.list_nodes().await.unwrap(), vec![local]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_are_seen_in_the_order_they_were_made() {
    let cm = Arc::new(manager());
    let mut rx = cm.subscribe_to_events();
    let writers: Vec<_> = (10..14u64)
        .map(|seed| {
            let cm = Arc::clone(&cm);
            tokio::spawn(async move {
                let node = test_node(seed, 1000, GIB);
                for _ in 0..50 {
                    cm.add_node(node.clone()).unwrap();
                    cm.remove_node(&node.id);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let events = tokio::time::timeout(Duration::from_secs(5), async {
        let mut events = Vec::new();
        while events.len() < 400 {
            events.push(rx.recv().await.unwrap());
        }
        events
    })
    .await
    .unwrap();
    // Per node, additions and removals alternate, starting with an addition.
    for seed in 10..14u64 {
        let id = test_node(seed, 1, 1).id;
        let mine: Vec<bool> = events
            .iter()
            .filter(|e| e.node_id() == id)
            .map(|e| matches!(e, ClusterEvent::NodeAdded(_)))
            .collect();
        assert_eq!(mine.len(), 100);
        assert!(mine
            .iter()
            .enumerate()
            .all(|(i, added)| *added == (i % 2 == 0)));
    }
    assert_eq!(cm.list_nodes().await.unwrap().len(), 1);
}
