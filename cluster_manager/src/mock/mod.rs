//! [`MockClusterManager`]: in-memory membership for tests and demos.
//!
//! The membership exists from construction: the local node is a member, and
//! every trait method works before [`ClusterManager::initialize`], which only
//! records that it was called (and may be called any number of times). A real
//! gossip manager may be stricter; callers should call `initialize` first.
//!
//! Tests change the membership with [`MockClusterManager::add_node`],
//! [`update_node`](MockClusterManager::update_node),
//! [`remove_node`](MockClusterManager::remove_node) and
//! [`set_status`](MockClusterManager::set_status). Every change is broadcast
//! while the membership lock is held, so events arrive in the order the changes
//! were made, and a subscriber that subscribes and then lists misses nothing.
//!
//! A member's status moves only through [`Node::transition`]: a change the
//! node state machine forbids (a `Down` node back as `NotReady`, say) is
//! refused with [`ClusterError::IllegalTransition`], and nothing changes.

mod nodes;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use cluster_manager_interface::{ClusterError, ClusterEvent, ClusterManager, Result};
use orchestrator_shared_types::{Node, NodeId, NodeStatus};
use tokio::sync::broadcast;

pub use nodes::test_node;

/// Capacity of the event broadcast; a subscriber further behind than this lags.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// An in-memory [`ClusterManager`] whose membership the caller drives.
///
/// ```
/// # use cluster_manager::{test_node, MockClusterManager};
/// # use cluster_manager_interface::{ClusterEvent, ClusterManager};
/// # use orchestrator_shared_types::NodeStatus;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = MockClusterManager::new(test_node(1, 4000, 8 << 30));
/// cluster.initialize().await?;
/// let mut events = cluster.subscribe_to_events();
///
/// let worker = test_node(2, 2000, 4 << 30);
/// cluster.add_node(worker.clone())?;
/// cluster.set_status(&worker.id, NodeStatus::Down)?;
/// assert_eq!(cluster.list_nodes().await?.len(), 2);
///
/// assert!(matches!(events.recv().await?, ClusterEvent::NodeAdded(n) if n.id == worker.id));
/// assert!(matches!(events.recv().await?,
///     ClusterEvent::NodeUpdated(n) if n.status == NodeStatus::Down));
/// # Ok(())
/// # }
/// ```
pub struct MockClusterManager {
    local_id: NodeId,
    state: Mutex<State>,
    events: broadcast::Sender<ClusterEvent>,
}

struct State {
    initialized: bool,
    /// The local node's latest record, kept even if it is removed from the members.
    local: Node,
    members: BTreeMap<NodeId, Node>,
}

impl std::fmt::Debug for MockClusterManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockClusterManager")
            .field("local_id", &self.local_id)
            .finish_non_exhaustive()
    }
}

impl MockClusterManager {
    /// A cluster whose only member is `local`, the node this process runs as.
    pub fn new(local: Node) -> Self {
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        let members = BTreeMap::from([(local.id, local.clone())]);
        Self {
            local_id: local.id,
            state: Mutex::new(State {
                initialized: false,
                local,
                members,
            }),
            events,
        }
    }

    /// Whether `initialize` was called.
    pub fn is_initialized(&self) -> bool {
        self.lock().initialized
    }

    /// A node joins (or comes back): stores `node`, replacing any record of
    /// it, and emits `NodeAdded`. Fails with [`ClusterError::IllegalTransition`]
    /// (changing nothing) if it is a member whose status may not move to
    /// `node`'s.
    pub fn add_node(&self, node: Node) -> Result<()> {
        let mut state = self.lock();
        Self::check_move(&state, &node)?;
        self.store(&mut state, node.clone());
        self.publish(ClusterEvent::NodeAdded(node));
        Ok(())
    }

    /// Replaces a member's record and emits `NodeUpdated`, or adds it and
    /// emits `NodeAdded` if it is not a member. Fails with
    /// [`ClusterError::IllegalTransition`] (changing nothing) if the member's
    /// status may not move to `node`'s.
    pub fn update_node(&self, node: Node) -> Result<()> {
        let mut state = self.lock();
        Self::check_move(&state, &node)?;
        let known = state.members.contains_key(&node.id);
        self.store(&mut state, node.clone());
        self.publish(if known {
            ClusterEvent::NodeUpdated(node)
        } else {
            ClusterEvent::NodeAdded(node)
        });
        Ok(())
    }

    /// A node leaves or is declared dead: it is no longer listed, and
    /// `NodeRemoved` is emitted. Returns its last record, or `None` (and emits
    /// nothing) if it was not a member. Removing the local node leaves
    /// `local_node` answering with its last record.
    pub fn remove_node(&self, id: &NodeId) -> Option<Node> {
        let mut state = self.lock();
        let removed = state.members.remove(id)?;
        self.publish(ClusterEvent::NodeRemoved(*id));
        Some(removed)
    }

    /// Moves a member's health through [`Node::transition`] and emits
    /// `NodeUpdated` if it changed. Fails with [`ClusterError::UnknownNode`],
    /// or [`ClusterError::IllegalTransition`] (changing nothing) for a move
    /// the node state machine forbids.
    pub fn set_status(&self, id: &NodeId, status: NodeStatus) -> Result<Node> {
        self.modify(id, |node| Ok(node.transition(status)?))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is a single map insert or removal, so a panic elsewhere
        // cannot leave the state half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses a record of a member whose status may not move to the new one.
    fn check_move(state: &State, node: &Node) -> Result<()> {
        if let Some(held) = state.members.get(&node.id) {
            held.clone().transition(node.status)?;
        }
        Ok(())
    }

    /// Stores `node` as a member (and as the local record if it is local).
    fn store(&self, state: &mut State, node: Node) {
        if node.id == self.local_id {
            state.local = node.clone();
        }
        state.members.insert(node.id, node);
    }

    /// Applies `change` to a member; emits `NodeUpdated` if the record changed.
    fn modify(&self, id: &NodeId, change: impl FnOnce(&mut Node) -> Result<()>) -> Result<Node> {
        let mut state = self.lock();
        let mut node = state
            .members
            .get(id)
            .cloned()
            .ok_or(ClusterError::UnknownNode(*id))?;
        change(&mut node)?;
        if state.members.get(id) != Some(&node) {
            self.store(&mut state, node.clone());
            self.publish(ClusterEvent::NodeUpdated(node.clone()));
        }
        Ok(node)
    }

    /// Sends an event; call with the state lock held so events keep the order
    /// of the changes.
    fn publish(&self, event: ClusterEvent) {
        // An error only means nobody subscribes right now, which is fine.
        if self.events.send(event).is_err() {
            tracing::trace!("no cluster event subscribers");
        }
    }
}

#[async_trait]
impl ClusterManager for MockClusterManager {
    async fn initialize(&self) -> Result<()> {
        self.lock().initialized = true;
        Ok(())
    }

    async fn local_node(&self) -> Result<Node> {
        Ok(self.lock().local.clone())
    }

    async fn get_node(&self, id: &NodeId) -> Result<Option<Node>> {
        Ok(self.lock().members.get(id).cloned())
    }

    async fn list_nodes(&self) -> Result<Vec<Node>> {
        Ok(self.lock().members.values().cloned().collect())
    }

    /// Emits `NodeUpdated` only if the flag changes.
    async fn set_unschedulable(&self, id: &NodeId, unschedulable: bool) -> Result<Node> {
        self.modify(id, |node| {
            node.unschedulable = unschedulable;
            Ok(())
        })
    }

    fn subscribe_to_events(&self) -> broadcast::Receiver<ClusterEvent> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use orchestrator_shared_types::lifecycle::TransitionError;

    use super::*;

    #[tokio::test]
    async fn a_status_change_the_node_machine_forbids_is_refused() {
        let cluster = MockClusterManager::new(test_node(1, 1000, 1 << 30));
        let worker = test_node(2, 1000, 1 << 30);
        cluster.add_node(worker.clone()).unwrap();
        let down = cluster.set_status(&worker.id, NodeStatus::Down).unwrap();
        let mut events = cluster.subscribe_to_events();

        let err = cluster
            .set_status(&worker.id, NodeStatus::NotReady)
            .unwrap_err();
        assert!(
            matches!(
                err,
                ClusterError::IllegalTransition(TransitionError::Node {
                    from: NodeStatus::Down,
                    to: NodeStatus::NotReady,
                    ..
                })
            ),
            "{err:?}"
        );
        let mut unhealthy = worker.clone();
        unhealthy.transition(NodeStatus::NotReady).unwrap();
        assert!(cluster.update_node(unhealthy.clone()).is_err());
        assert!(cluster.add_node(unhealthy).is_err());

        assert_eq!(cluster.get_node(&worker.id).await.unwrap(), Some(down));
        assert!(
            events.try_recv().is_err(),
            "a refused change publishes nothing"
        );
        // A move the machine allows still goes through.
        let back = cluster.set_status(&worker.id, NodeStatus::Ready).unwrap();
        assert_eq!(back.status, NodeStatus::Ready);
    }
}
