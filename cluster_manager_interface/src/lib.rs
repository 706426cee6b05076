//! The `ClusterManager` contract (SPEC §5, §8): who is in the cluster, and
//! what changes.
//!
//! - [`ClusterManager`]: the local node, lookups, and a broadcast of
//!   [`ClusterEvent`]s.
//! - [`ClusterError`]: its failures.
//! - `testsuite` (feature): the contract tests every implementation runs.

use async_trait::async_trait;
use orchestrator_shared_types::{Node, NodeId, NodeStatus, OrchestrationError};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Label every daemon puts on its own node record to say what it does in the
/// cluster: [`ROLE_CONTROL_PLANE`] or [`ROLE_WORKER`].
pub const ROLE_LABEL: &str = "univrs.io/role";
/// The node that keeps the state and runs the scheduler.
pub const ROLE_CONTROL_PLANE: &str = "control-plane";
/// A node that runs what the control plane assigns to it.
pub const ROLE_WORKER: &str = "worker";

/// Whether `node` says it is the control plane (its label: believed only
/// where no control-plane key is pinned, see [`is_control_plane_of`]).
pub fn is_control_plane(node: &Node) -> bool {
    node.labels.get(ROLE_LABEL).map(String::as_str) == Some(ROLE_CONTROL_PLANE)
}

/// Whether `node` is a control plane for a node that pins `pinned`
/// ([`ClusterManager::pinned_control_planes`]): one of those keys, whatever
/// its label says; with none pinned (no admission), its label decides.
pub fn is_control_plane_of(node: &Node, pinned: &[NodeId]) -> bool {
    if pinned.is_empty() {
        is_control_plane(node)
    } else {
        pinned.contains(&node.id)
    }
}

/// The live control plane among `nodes` for a node that pins `pinned` (see
/// [`is_control_plane_of`]): the one with the smallest id if several qualify.
pub fn find_control_plane<'a>(nodes: &'a [Node], pinned: &[NodeId]) -> Option<&'a Node> {
    nodes
        .iter()
        .filter(|n| is_control_plane_of(n, pinned) && n.status != NodeStatus::Down)
        .min_by_key(|n| n.id)
}

/// One member as this node's membership protocol sees it (`ui network peers`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Peer {
    /// Its id (Ed25519 public key).
    pub node_id: NodeId,
    /// Where it gossips (`host:port`); empty where there is no gossip (the mock).
    #[serde(default)]
    pub gossip_addr: String,
    /// Where its API and agent listen (`host:port`).
    pub api_addr: String,
    /// Changes each time the node restarts.
    #[serde(default)]
    pub generation: u64,
    /// [`ROLE_CONTROL_PLANE`] or [`ROLE_WORKER`] (empty if it did not say).
    #[serde(default)]
    pub role: String,
    /// Health as this node sees it.
    pub status: NodeStatus,
    /// Whether the failure detector considers it alive.
    pub live: bool,
    /// Whether it is this node.
    pub is_self: bool,
}

impl Peer {
    /// A peer made from a member record (for managers without gossip).
    pub fn from_node(node: &Node, local: &NodeId) -> Self {
        Self {
            node_id: node.id,
            gossip_addr: String::new(),
            api_addr: node.address.clone(),
            generation: 0,
            role: node.labels.get(ROLE_LABEL).cloned().unwrap_or_default(),
            status: node.status,
            live: node.status != NodeStatus::Down,
            is_self: node.id == *local,
        }
    }
}

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
    /// The cluster manager's configuration is invalid (what and why).
    #[error("invalid cluster manager configuration: {0}")]
    InvalidConfig(String),
    /// The membership socket could not be bound.
    #[error("cannot bind the membership socket to {addr}: {reason}")]
    Bind {
        /// The address it tried.
        addr: std::net::SocketAddr,
        /// What the system said.
        reason: String,
    },
    /// A local node record is not the node of the signing key it is published with.
    #[error("node {node_id} is not the public key of the node signing key ({key_id})")]
    KeyMismatch {
        /// The id in the record.
        node_id: NodeId,
        /// The public key of the signing key.
        key_id: NodeId,
    },
    /// A published key or value that cannot be gossiped (what and why).
    #[error("cannot publish {key:?}: {reason}")]
    Publish {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The local node record could not be encoded for publication.
    #[error("cannot encode the local node record: {0}")]
    RecordEncoding(String),
    /// A node status change the node state machine forbids; nothing changed.
    #[error("refused a node status change")]
    IllegalTransition(#[from] orchestrator_shared_types::lifecycle::TransitionError),
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

/// A value another member published beside its record
/// ([`ClusterManager::publish`]), as gossip delivered it. Gossip authenticates
/// nothing: whoever reaches a member's gossip port can put values under any
/// node's name, so a value must carry its own proof (a signature) if what it
/// says matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gossiped {
    /// The member it is published under.
    pub node: NodeId,
    /// Its key.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// The longest value [`ClusterManager::publish`] takes, in bytes (a gossip
/// packet must hold it whole).
pub const MAX_GOSSIP_VALUE: usize = 32 * 1024;

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
    /// Publishes `value` under `key` beside this node's record, for every
    /// member to read with [`Self::gossiped`], for a while (an hour with
    /// chitchat) after which it is forgotten. Keys are namespaced
    /// `"<prefix>:<name>"`; a manager without gossip (the single-node mock)
    /// keeps nothing and says so with `Ok(false)`.
    async fn publish(&self, key: &str, value: &str) -> Result<bool> {
        let _ = (key, value);
        Ok(false)
    }
    /// What other members published under keys starting with `prefix`.
    async fn gossiped(&self, prefix: &str) -> Result<Vec<Gossiped>> {
        let _ = prefix;
        Ok(Vec::new())
    }
    /// The control-plane keys this node obeys: those pinned when it joined
    /// with a token, and those a pinned key added since in a signed member
    /// list. Empty where nothing is pinned (no admission): then the role
    /// label of a member's record decides, as before.
    fn pinned_control_planes(&self) -> Vec<NodeId> {
        Vec::new()
    }
    /// The newest member list a pinned control plane signed, as this node
    /// verified and follows it (its own, on the control plane that signs
    /// it); `None` without admission or before one arrived.
    fn member_list(&self) -> Option<orchestrator_shared_types::admission::MemberList> {
        None
    }
    /// Every member this node knows of, live or dead, as its membership
    /// protocol sees it. The default derives them from [`Self::list_nodes`].
    async fn peers(&self) -> Result<Vec<Peer>> {
        let local = self.local_node().await?.id;
        Ok(self
            .list_nodes()
            .await?
            .iter()
            .map(|n| Peer::from_node(n, &local))
            .collect())
    }
}
