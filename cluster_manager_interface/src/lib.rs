//! The `ClusterManager` contract (SPEC §5, §8): who is in the cluster, and
//! what changes.
//!
//! - [`ClusterManager`]: the local node, lookups, and a broadcast of
//!   [`ClusterEvent`]s.
//! - [`ClusterError`]: its failures.
//! - `testsuite` (feature): the contract tests every implementation runs.

use async_trait::async_trait;
use orchestrator_shared_types::{Node, NodeId, OrchestrationError};
use tokio::sync::broadcast;

#[cfg(feature = "testsuite")]
pub mod testsuite;

/// A change of membership or of a member's record.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterEvent {
    /// A node joined (or came back).
    NodeAdded(Node),
    /// A node's record changed (status, labels, resources, cordon).
    NodeUpdated(Node),
    /// A node left or was declared dead.
    NodeRemoved(NodeId),
}

impl ClusterEvent {
    /// The node the event is about.
    pub fn node_id(&self) -> NodeId {
        match self {
            ClusterEvent::NodeAdded(n) | ClusterEvent::NodeUpdated(n) => n.id,
            ClusterEvent::NodeRemoved(id) => *id,
        }
    }
}

/// Failures of a cluster manager.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `initialize` was not called, or failed.
    #[error("cluster manager is not initialised")]
    NotInitialized,
    /// No such node.
    #[error("node {0} is not a member")]
    UnknownNode(NodeId),
    /// The membership task stopped.
    #[error("cluster manager is shut down")]
    ShutDown,
}

impl From<ClusterError> for OrchestrationError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::UnknownNode(id) => OrchestrationError::NotFound {
                kind: "node",
                id: id.to_string(),
            },
            other => OrchestrationError::Cluster(other.to_string()),
        }
    }
}

/// Result with [`ClusterError`].
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

/// Membership of the cluster.
///
/// To see every change, subscribe first and then list: an event that arrives
/// between the two is then seen twice rather than missed, and events are
/// idempotent to apply.
#[async_trait]
pub trait ClusterManager: Send + Sync + 'static {
    /// Joins the cluster (or starts the in-process membership).
    async fn initialize(&self) -> Result<()>;
    /// The node this process runs as.
    async fn local_node(&self) -> Result<Node>;
    /// A member by id, if known.
    async fn get_node(&self, id: &NodeId) -> Result<Option<Node>>;
    /// Every known member, in any status.
    async fn list_nodes(&self) -> Result<Vec<Node>>;
    /// Cordons (`true`) or uncordons a node: it keeps what it runs but takes nothing new.
    async fn set_unschedulable(&self, id: &NodeId, unschedulable: bool) -> Result<Node>;
    /// Membership changes from now on.
    fn subscribe_to_events(&self) -> broadcast::Receiver<ClusterEvent>;
}
