//! The reconciler's view of cluster membership, kept current from cluster events.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cluster_manager_interface::ClusterEvent;
use orchestrator_shared_types::{Node, NodeId, NodeStatus};

#[derive(Default)]
struct Inner {
    by_id: HashMap<NodeId, Node>,
    /// Cached list for the scheduler; rebuilt after a change.
    list: Option<Arc<Vec<Node>>>,
}

/// Nodes as last reported by the cluster manager. Cheap to read concurrently.
#[derive(Clone, Default)]
pub struct NodeView {
    inner: Arc<RwLock<Inner>>,
}

/// What an event changed about a node, as far as placement is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeChange {
    /// Nothing that matters to instances.
    Minor,
    /// It became usable (joined, came back, became Ready).
    Usable,
    /// It was lost (removed or went Down).
    Lost,
    /// Something else changed (labels, resources, cordon).
    Changed,
}

impl NodeView {
    /// A view holding `nodes`.
    pub fn new(nodes: Vec<Node>) -> Self {
        let view = Self::default();
        view.replace_all(nodes);
        view
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the whole membership.
    pub fn replace_all(&self, nodes: Vec<Node>) {
        let mut inner = self.write();
        inner.by_id = nodes.into_iter().map(|n| (n.id, n)).collect();
        inner.list = None;
    }

    /// Applies a cluster event and says what it changed.
    pub fn apply(&self, event: &ClusterEvent) -> NodeChange {
        let mut inner = self.write();
        inner.list = None;
        match event {
            ClusterEvent::NodeAdded(n) | ClusterEvent::NodeUpdated(n) => {
                let before = inner.by_id.insert(n.id, n.clone());
                let was_live = before
                    .as_ref()
                    .is_some_and(|b| b.status != NodeStatus::Down);
                let live = n.status != NodeStatus::Down;
                match (was_live, live) {
                    (false, true) => NodeChange::Usable,
                    (true, false) => NodeChange::Lost,
                    _ if before.as_ref() == Some(n) => NodeChange::Minor,
                    _ if n.status == NodeStatus::Ready
                        && before.is_some_and(|b| b.status != NodeStatus::Ready) =>
                    {
                        NodeChange::Usable
                    }
                    _ => NodeChange::Changed,
                }
            }
            ClusterEvent::NodeRemoved(id) => {
                if inner.by_id.remove(id).is_some() {
                    NodeChange::Lost
                } else {
                    NodeChange::Minor
                }
            }
        }
    }

    /// A node by id.
    pub fn get(&self, id: &NodeId) -> Option<Node> {
        self.read().by_id.get(id).cloned()
    }

    /// Whether instances on `id` should be considered lost: the node is gone or Down.
    pub fn is_lost(&self, id: &NodeId) -> bool {
        self.read()
            .by_id
            .get(id)
            .is_none_or(|n| n.status == NodeStatus::Down)
    }

    /// Every node, shared (no copy while nothing changed).
    pub fn list(&self) -> Arc<Vec<Node>> {
        if let Some(list) = &self.read().list {
            return Arc::clone(list);
        }
        let mut inner = self.write();
        let mut nodes: Vec<Node> = inner.by_id.values().cloned().collect();
        nodes.sort_by_key(|n| n.id);
        let list = Arc::new(nodes);
        inner.list = Some(Arc::clone(&list));
        list
    }
}
