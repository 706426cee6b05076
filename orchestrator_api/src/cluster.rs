//! The cluster: its status at a glance (`/api/v1/cluster/status`) and one
//! node's own view of it (`/api/v1/network`, `/peers`, `/discover`).
//!
//! Fields a daemon of another version may lack default, so its answer
//! still reads.

use std::collections::BTreeMap;

use orchestrator_shared_types::{NodeId, Resources};
use serde::{Deserialize, Serialize};

pub use cluster_manager_interface::Peer;

/// The cluster at a glance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ClusterStatus {
    /// Nodes known.
    pub nodes_total: u64,
    /// Nodes Ready.
    pub nodes_ready: u64,
    /// Workloads stored.
    pub workloads_total: u64,
    /// Instances stored.
    pub instances_total: u64,
    /// Instances by status (`Running`, `Pending`, …).
    pub instances: BTreeMap<String, u64>,
    /// Total resources of the nodes.
    pub capacity: Resources,
    /// Resources the nodes offer to workloads.
    pub allocatable: Resources,
    /// What the instances placed on each node request, by node: those that
    /// hold their place (Pending, Running or Unknown). A node with none is
    /// absent.
    pub requested: BTreeMap<NodeId, Resources>,
    /// Nodes Down (dead to the failure detector, or lost).
    pub nodes_down: u64,
    /// The node that keeps the state and schedules (absent on a standalone node).
    pub control_plane: Option<NodeId>,
    /// Every member as the membership protocol sees it.
    pub members: Vec<Peer>,
    /// Network health: decentralization, bootstrap ratio, operator diversity.
    pub network_health: NetworkHealthView,
}

/// Network health figures (SPEC §17), each 0–1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct NetworkHealthView {
    /// `1 − largest operator's share of the nodes`.
    pub decentralization: f64,
    /// Share of nodes that joined less than 30 days ago.
    pub bootstrap_ratio: f64,
    /// Distinct operators / nodes.
    pub operator_diversity: f64,
    /// Distinct operators.
    pub operators: usize,
}

/// Gossip settings and counters of one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct GossipInfo {
    /// Cluster name; nodes of other clusters are ignored.
    pub cluster_id: String,
    /// Where this node gossips (UDP).
    pub listen_addr: String,
    /// What peers use to reach it.
    pub advertise_addr: String,
    /// Seeds it was given.
    pub seeds: Vec<String>,
    /// Milliseconds between gossip rounds.
    pub gossip_interval_ms: u64,
    /// Phi-accrual threshold above which a peer is declared dead.
    pub phi_threshold: f64,
    /// Seconds a dead peer is kept (as Down) before it is forgotten.
    pub dead_node_grace_seconds: u64,
    /// This run's generation (changes at each restart).
    pub generation: u64,
    /// Gossip records refused because their signature or contents did not verify.
    pub rejected_records: u64,
    /// Bytes sent by gossip.
    pub bytes_sent: u64,
    /// Bytes received by gossip.
    pub bytes_received: u64,
}

/// One node's view of the cluster (`GET /api/v1/network`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkStatus {
    /// The node that answered.
    pub node_id: NodeId,
    /// `control-plane`, `worker`, or `standalone` (no gossip).
    #[serde(default)]
    pub role: String,
    /// The control plane as this node sees it, if one is live.
    #[serde(default)]
    pub control_plane: Option<NodeId>,
    /// Its API address.
    #[serde(default)]
    pub control_plane_address: Option<String>,
    /// Peers (this node included) considered alive.
    #[serde(default)]
    pub peers_live: u64,
    /// Peers considered dead.
    #[serde(default)]
    pub peers_dead: u64,
    /// Gossip settings and counters (absent without gossip).
    #[serde(default)]
    pub gossip: Option<GossipInfo>,
    /// The control plane that leads, when several share an etcd store
    /// (`--store etcd`) and one is elected; absent with one control plane.
    #[serde(default)]
    pub leader: Option<Leader>,
}

/// The elected control plane (`leader` of `GET /api/v1/network`): the one
/// that runs the reconciler, the scheduler and the trust and credit writers,
/// and to which the others forward the API's requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Leader {
    /// Its node id.
    pub node_id: NodeId,
    /// Its API address, HOST:PORT.
    pub address: String,
    /// Its term (the fence revision its agent calls carry), as a worker
    /// last saw it; absent on control planes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
}

/// One peer's reachability from the node asked (an item of
/// `GET /api/v1/network/discover`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reachability {
    /// The peer.
    #[serde(flatten)]
    pub peer: Peer,
    /// Whether its API answered `/health` within the timeout.
    #[serde(default)]
    pub reachable: bool,
    /// How long it took, in milliseconds, when it answered.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Why it did not answer.
    #[serde(default)]
    pub error: Option<String>,
}

pub use orchestrator_shared_types::admission::{JoinRequest, JoinRole};

/// `POST /api/v1/cluster/join-tokens`: what token to issue (admin keys only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "jsonschema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct JoinTokenRequest {
    /// Lifetime in seconds, 1 to 604800 (default 3600).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// `worker` (default) or `control-plane`.
    #[serde(default)]
    #[cfg_attr(feature = "jsonschema", schemars(with = "Option<String>"))]
    pub role: Option<JoinRole>,
}

/// A join token just issued. The token is a secret: it admits one node and
/// carries the cluster's gossip key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinTokenIssued {
    /// The token, for `orchestrator_daemon --join`.
    pub token: String,
    /// Its public id (recorded with the member it admits).
    pub id: String,
    /// The role it admits.
    pub role: JoinRole,
    /// When it stops being accepted.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// An admitted member of the cluster (`GET /api/v1/cluster/members`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterMember {
    /// Its node id.
    pub node_id: NodeId,
    /// Its operator.
    pub operator: orchestrator_shared_types::PublicKey,
    /// What it was admitted as.
    pub role: JoinRole,
    /// When.
    pub admitted_at: chrono::DateTime<chrono::Utc>,
    /// The id of the token it used.
    pub token_id: String,
    /// Its subnet of the cluster network (`10.88.3.0/24`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
}

/// The answer to a join request (`POST /api/v1/cluster/join`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinAdmitted {
    /// The cluster joined.
    pub cluster_id: String,
    /// The member as recorded.
    pub member: ClusterMember,
    /// The cluster's current gossip key (standard base64, a secret): the
    /// token's may have been rotated away since it was issued. Absent from
    /// control planes older than key rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gossip_key: Option<String>,
    /// The cluster network's range (`10.88.0.0/16`); the member's own subnet
    /// of it is in `member`. Absent in clusters made before the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_cidr: Option<String>,
}

/// The answer to `DELETE /api/v1/cluster/members/{id}`: the removed member
/// and the gossip key rotation that followed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberRemoved {
    /// The removed member (its fields at the top level, as before rotation).
    #[serde(flatten)]
    pub member: ClusterMember,
    /// The key rotation; absent when the control plane rotates no key
    /// (gossip not sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rotation: Option<KeyRotation>,
}

/// How the gossip key rotation after a removal went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyRotation {
    /// Whether every remaining member seals with the new key and dropped
    /// the old one.
    pub complete: bool,
    /// The new key's id (8 hex digits; never the key); absent when the
    /// rotation failed on the control plane itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The members that completed it (the control plane included).
    #[serde(default)]
    pub rotated: Vec<NodeId>,
    /// The members that did not: cut off from gossip until they get the
    /// current key (copy the control plane's key file and send SIGHUP) or
    /// are removed and join again with a new token.
    #[serde(default)]
    pub left_behind: Vec<KeyRotationLeftBehind>,
    /// Why the rotation failed on the control plane itself (the old key is
    /// then still in use everywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A member left behind by a key rotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyRotationLeftBehind {
    /// The member.
    pub node_id: NodeId,
    /// Why.
    pub reason: String,
}
