//! Values published beside the node record (`ClusterManager::publish`):
//! they reach every member, attributed to the publisher, and what cannot be
//! gossiped is refused with the reason.

#![allow(clippy::unwrap_used)]

mod gossip_common;

use cluster_manager_interface::{ClusterError, ClusterManager, MAX_GOSSIP_VALUE};
use gossip_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_values_reach_the_other_members_under_the_publishers_id() {
    let (pa, pb) = (free_port(), free_port());
    let a = start(1, pa, &[], GENERATION).await;
    let b = start(2, pb, &[pa], GENERATION).await;
    assert!(a.publish("ev:1", "first").await.unwrap());
    assert!(a.publish("ev:2", "second").await.unwrap());
    assert!(a.publish("other:1", "not evidence").await.unwrap());
    eventually("b sees both ev values of a", || async {
        b.gossiped("ev:").await.unwrap().len() == 2
    })
    .await;
    let mut seen = b.gossiped("ev:").await.unwrap();
    seen.sort_by(|x, y| x.key.cmp(&y.key));
    assert!(seen.iter().all(|g| g.node == id_of(&key(1))), "{seen:?}");
    let values: Vec<_> = seen.iter().map(|g| g.value.as_str()).collect();
    assert_eq!(values, ["first", "second"]);
    // A node does not read back its own values.
    assert!(a.gossiped("ev:").await.unwrap().is_empty());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn what_cannot_be_gossiped_is_refused_with_the_reason() {
    let a = start(1, free_port(), &[], GENERATION).await;
    let big = "x".repeat(MAX_GOSSIP_VALUE + 1);
    for (k, v) in [
        ("node", "the record's key"),
        ("no-prefix", "v"),
        (":name", "v"),
        ("ev:", "v"),
        ("ev:with space", "v"),
        ("ev:big", big.as_str()),
    ] {
        let err = a.publish(k, v).await.unwrap_err();
        assert!(matches!(err, ClusterError::Publish { .. }), "{k}: {err}");
    }
    a.shutdown().await;
}
