//! The `cluster` topic of the event stream carries membership: a member
//! joining, lost, returning and leaving, with the counts after the change.

mod common;

use std::time::Duration;

use cluster_manager::mock::test_node;
use common::{memory_harness, NODE_CPU, NODE_MEM};
use observability::events::{Event, Topic};
use orchestrator_shared_types::NodeStatus;
use tokio::sync::broadcast;

/// The next `cluster` event, failing after a deadline.
async fn next_cluster_event(rx: &mut broadcast::Receiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Ok(e) if e.topic == Topic::Cluster => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("event hub closed"),
            }
        }
    })
    .await
    .expect("a cluster event within 5 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_reach_the_cluster_topic() {
    let h = memory_harness(2).await;
    let mut rx = h.orch.deps().events.subscribe();

    let newcomer = test_node(3, NODE_CPU, NODE_MEM);
    h.cluster.add_node(newcomer.clone()).unwrap();
    let e = next_cluster_event(&mut rx).await;
    assert_eq!(e.kind, "cluster.member_joined", "{e:?}");
    assert_eq!(e.data["node"], serde_json::json!(newcomer.id));
    assert_eq!(e.data["nodes_total"], 3, "{e:?}");
    assert_eq!(e.data["nodes_usable"], 3, "{e:?}");

    h.cluster
        .set_status(&newcomer.id, NodeStatus::Down)
        .unwrap();
    let e = next_cluster_event(&mut rx).await;
    assert_eq!(e.kind, "cluster.member_lost", "{e:?}");
    assert_eq!(e.data["nodes_usable"], 2, "{e:?}");

    h.cluster
        .set_status(&newcomer.id, NodeStatus::Ready)
        .unwrap();
    let e = next_cluster_event(&mut rx).await;
    assert_eq!(e.kind, "cluster.member_returned", "{e:?}");
    assert_eq!(e.data["nodes_usable"], 3, "{e:?}");

    assert!(h.cluster.remove_node(&newcomer.id).is_some());
    let e = next_cluster_event(&mut rx).await;
    assert_eq!(e.kind, "cluster.member_left", "{e:?}");
    assert_eq!(e.data["nodes_total"], 2, "{e:?}");
    h.stop().await;
}
