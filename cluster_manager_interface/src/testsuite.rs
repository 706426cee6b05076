//! The contract every [`ClusterManager`] must meet, as tests any implementation
//! runs against itself (feature `testsuite`).
//!
//! ```ignore
//! cluster_manager_interface::testsuite::run_all(|| async {
//!     Arc::new(MyClusterManager::new(config)) as Arc<dyn ClusterManager>
//! })
//! .await;
//! ```
//!
//! Every case starts from a fresh manager from the factory and calls
//! `initialize` first; asserts only what the trait documents, changes nothing
//! but the local node's cordon flag, and waits for events with a deadline
//! ([`DEADLINE`]), skipping events about other nodes. Failures panic with a
//! message naming the case, as tests do.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use orchestrator_shared_types::{Node, NodeId};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::{ClusterEvent, ClusterManager};

/// How long a case waits for an event or for a change to show.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Runs every case, each on a fresh manager from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn ClusterManager>>,
{
    the_local_node_is_a_member(make().await).await;
    unknown_nodes_are_none(make().await).await;
    cordoning_the_local_node_is_published(make().await).await;
    subscribing_then_listing_misses_no_change(make().await).await;
}

/// After `initialize`, the local node is listed and `get_node` finds it.
pub async fn the_local_node_is_a_member(cm: Arc<dyn ClusterManager>) {
    let local = initialized_local(&*cm).await;
    let listed = list(&*cm).await;
    assert!(
        listed.iter().any(|n| n.id == local.id),
        "the local node {} is not listed: {listed:?}",
        local.id
    );
    let found = cm
        .get_node(&local.id)
        .await
        .unwrap_or_else(|e| panic!("get_node(local): {e}"));
    let found = found.unwrap_or_else(|| panic!("get_node finds no local node {}", local.id));
    assert_eq!(found.id, local.id);
}

/// `get_node` of an id that is not a member is `Ok(None)`, not an error.
pub async fn unknown_nodes_are_none(cm: Arc<dyn ClusterManager>) {
    let local = initialized_local(&*cm).await;
    let stranger = NodeId(local.id.0.map(|b| !b));
    let found = cm.get_node(&stranger).await;
    assert!(
        matches!(found, Ok(None)),
        "get_node of non-member {stranger}: expected Ok(None), got {found:?}"
    );
}

/// Cordoning the local node returns, publishes (`NodeUpdated`) and lists the
/// cordoned record; uncordoning undoes it.
pub async fn cordoning_the_local_node_is_published(cm: Arc<dyn ClusterManager>) {
    let local = initialized_local(&*cm).await;
    set_unschedulable(&*cm, &local.id, false).await;
    let mut events = cm.subscribe_to_events();

    let returned = set_unschedulable(&*cm, &local.id, true).await;
    assert!(
        returned.unschedulable,
        "set_unschedulable(true) returned {returned:?}"
    );
    let updated = wait_for_update(&mut events, &local.id, true).await;
    assert_eq!(updated.id, local.id);
    let listed = list(&*cm).await;
    let listed = listed.iter().find(|n| n.id == local.id);
    assert!(
        listed.is_some_and(|n| n.unschedulable),
        "list_nodes shows the cordoned local node as {listed:?}"
    );

    let returned = set_unschedulable(&*cm, &local.id, false).await;
    assert!(
        !returned.unschedulable,
        "set_unschedulable(false) returned {returned:?}"
    );
    wait_for_update(&mut events, &local.id, false).await;
    let found = cm
        .get_node(&local.id)
        .await
        .unwrap_or_else(|e| panic!("get_node(local): {e}"));
    assert!(
        found.as_ref().is_some_and(|n| !n.unschedulable),
        "get_node shows the uncordoned local node as {found:?}"
    );
}

/// A subscriber that subscribes and then lists, applying every event to the
/// listing, ends up with the same membership as `list_nodes`, while changes
/// happen concurrently and after the listing.
pub async fn subscribing_then_listing_misses_no_change(cm: Arc<dyn ClusterManager>) {
    let local = initialized_local(&*cm).await;
    let local_id = local.id;
    let toggler = {
        let cm = Arc::clone(&cm);
        tokio::spawn(async move {
            for i in 0..100 {
                set_unschedulable(&*cm, &local_id, i % 2 == 0).await;
                tokio::task::yield_now().await;
            }
        })
    };
    let mut events = cm.subscribe_to_events();
    let mut view: BTreeMap<NodeId, Node> =
        list(&*cm).await.into_iter().map(|n| (n.id, n)).collect();
    if let Err(e) = toggler.await {
        panic!("the task changing the local node failed: {e}");
    }
    // One more change, certainly after the listing.
    let last = view.get(&local.id).is_none_or(|n| !n.unschedulable);
    set_unschedulable(&*cm, &local.id, !last).await;
    set_unschedulable(&*cm, &local.id, last).await;

    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        loop {
            match events.try_recv() {
                Ok(event) => apply(&mut view, event),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(n)) => panic!("event subscriber lagged by {n} events"),
                Err(TryRecvError::Closed) => panic!("the event channel closed"),
            }
        }
        let actual: BTreeMap<NodeId, Node> =
            list(&*cm).await.into_iter().map(|n| (n.id, n)).collect();
        if view == actual {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listing plus the events {view:?} never matched list_nodes {actual:?}"
        );
        let wait = tokio::time::timeout_at(deadline, events.recv()).await;
        match wait {
            Ok(Ok(event)) => apply(&mut view, event),
            Ok(Err(RecvError::Lagged(n))) => panic!("event subscriber lagged by {n} events"),
            Ok(Err(RecvError::Closed)) => panic!("the event channel closed"),
            Err(_) => {}
        }
    }
    let cordoned = view.get(&local.id).map(|n| n.unschedulable);
    assert_eq!(
        cordoned,
        Some(last),
        "the last change is not in the subscriber's view"
    );
}

/// Applies an event to a membership view (events are idempotent).
fn apply(view: &mut BTreeMap<NodeId, Node>, event: ClusterEvent) {
    match event {
        ClusterEvent::NodeAdded(n) | ClusterEvent::NodeUpdated(n) => {
            view.insert(n.id, n);
        }
        ClusterEvent::NodeRemoved(id) => {
            view.remove(&id);
        }
    }
}

async fn initialized_local(cm: &dyn ClusterManager) -> Node {
    cm.initialize()
        .await
        .unwrap_or_else(|e| panic!("initialize: {e}"));
    cm.local_node()
        .await
        .unwrap_or_else(|e| panic!("local_node after initialize: {e}"))
}

async fn list(cm: &dyn ClusterManager) -> Vec<Node> {
    cm.list_nodes()
        .await
        .unwrap_or_else(|e| panic!("list_nodes: {e}"))
}

async fn set_unschedulable(cm: &dyn ClusterManager, id: &NodeId, value: bool) -> Node {
    cm.set_unschedulable(id, value)
        .await
        .unwrap_or_else(|e| panic!("set_unschedulable({id}, {value}): {e}"))
}

/// Waits for `NodeUpdated` of `id` with the given cordon flag, skipping other events.
async fn wait_for_update(
    events: &mut broadcast::Receiver<ClusterEvent>,
    id: &NodeId,
    unschedulable: bool,
) -> Node {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(ClusterEvent::NodeUpdated(n))
                    if n.id == *id && n.unschedulable == unschedulable =>
                {
                    return n
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => panic!("event subscriber lagged by {n} events"),
                Err(RecvError::Closed) => panic!("the event channel closed"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no NodeUpdated of {id} with unschedulable = {unschedulable} within {DEADLINE:?}"
            )
        })
}
