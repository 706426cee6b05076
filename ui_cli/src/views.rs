//! The parts of the server's answers that tables show.
//!
//! Deliberately lenient (every field defaults): a newer server that adds or
//! renames a field still prints, and `-o json` always shows the full answer.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// Parses `value` into a view, naming `what` if it does not fit.
pub fn view<T: DeserializeOwned>(value: &Value, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(value.clone())
        .map_err(|e| anyhow::anyhow!("unexpected {what} from the server: {e}"))
}

/// A workload as the API returns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Workload {
    /// Its id.
    pub id: String,
    /// The manifest.
    pub spec: Spec,
    /// Instance counts.
    pub status: Status,
    /// Creation time (RFC 3339).
    pub created_at: Option<String>,
}

impl Workload {
    /// The name, or the id if the answer has no name.
    pub fn name(&self) -> &str {
        if self.spec.name.is_empty() {
            &self.id
        } else {
            &self.spec.name
        }
    }

    /// Whether every wanted replica runs the current generation.
    pub fn is_rolled_out(&self) -> bool {
        self.status.running == self.spec.replicas && self.status.up_to_date == self.spec.replicas
    }
}

/// The manifest fields tables show.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Spec {
    /// Workload name.
    pub name: String,
    /// Replicas wanted.
    pub replicas: u32,
}

/// Instance counts of a workload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Replicas wanted.
    pub desired: u32,
    /// Running.
    pub running: u32,
    /// Placed, not running yet.
    pub pending: u32,
    /// Failed.
    pub failed: u32,
    /// Running the current generation.
    pub up_to_date: u32,
    /// Replicas no node could take yet.
    #[serde(default)]
    pub unscheduled: u32,
    /// Why (the filter or trust rule that excluded the nodes).
    #[serde(default)]
    pub reason: Option<String>,
}

/// An instance as the API returns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Instance {
    /// Its id.
    pub id: String,
    /// The node it is placed on (hex).
    pub node_id: String,
    /// Lifecycle status.
    pub status: String,
    /// Container restarts.
    pub restarts: u32,
    /// Why it is in its status.
    pub reason: Option<String>,
}

/// A node as the API returns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Node {
    /// Its key (hex).
    pub id: String,
    /// Agent address.
    pub address: String,
    /// Health.
    pub status: String,
    /// Cordoned.
    pub unschedulable: bool,
    /// What the orchestrator may hand out.
    pub resources_allocatable: Resources,
    /// Total resources.
    pub resources_capacity: Resources,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its operator's key (hex).
    pub operator: String,
    /// When it joined (RFC 3339).
    pub joined_at: Option<String>,
}

/// CPU and memory.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Millicores.
    pub cpu_millis: u64,
    /// Bytes.
    pub memory_bytes: u64,
}

/// One line of a workload's logs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogEntry {
    /// The instance that wrote it.
    pub instance: String,
    /// The container that wrote it.
    pub container: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text.
    pub line: String,
}

/// The answer of `/health`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    /// Per component.
    pub components: std::collections::BTreeMap<String, ComponentHealth>,
}

/// One component's health.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ComponentHealth {
    /// `ok` or `failing`.
    pub status: String,
    /// Why it fails.
    pub message: Option<String>,
}

/// The answer of `/api/v1/cluster/status`, as far as `ui status` shows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClusterStatus {
    /// Nodes known.
    pub nodes_total: u64,
    /// Nodes Ready.
    pub nodes_ready: u64,
    /// Nodes Down (0 from daemons that predate the field).
    pub nodes_down: u64,
    /// The control plane's id (hex), when there is one.
    pub control_plane: Option<String>,
    /// Every member as the membership protocol sees it (empty from older daemons).
    pub members: Vec<Peer>,
}

/// A member of the cluster as one node sees it (`/api/v1/network/peers`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Peer {
    /// Its id (hex).
    pub node_id: String,
    /// Where it gossips (empty without gossip).
    pub gossip_addr: String,
    /// Where its API listens.
    pub api_addr: String,
    /// Changes at each restart.
    pub generation: u64,
    /// `control-plane` or `worker` (empty if it did not say).
    pub role: String,
    /// `Ready`, `NotReady`, `Unknown` or `Down`.
    pub status: String,
    /// Alive to the failure detector.
    pub live: bool,
    /// The node that answered.
    pub is_self: bool,
}

/// A peer and whether the node asked could reach it (`/api/v1/network/discover`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Reachability {
    /// The peer.
    #[serde(flatten)]
    pub peer: Peer,
    /// Whether its `/health` answered.
    pub reachable: bool,
    /// How long it took (ms), when it answered.
    pub latency_ms: Option<f64>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// The answer of `/api/v1/network`: one node's view of the cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NetworkStatus {
    /// The node that answered (hex).
    pub node_id: String,
    /// `control-plane`, `worker` or `standalone`.
    pub role: String,
    /// The live control plane (hex), if any.
    pub control_plane: Option<String>,
    /// Its API address.
    pub control_plane_address: Option<String>,
    /// Peers alive (the node itself included).
    pub peers_live: u64,
    /// Peers dead.
    pub peers_dead: u64,
    /// Gossip settings and counters (absent without gossip).
    pub gossip: Option<GossipInfo>,
}

/// Gossip settings and counters of one node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GossipInfo {
    /// Cluster name.
    pub cluster_id: String,
    /// Where it gossips.
    pub listen_addr: String,
    /// What peers use to reach it.
    pub advertise_addr: String,
    /// Seeds it was given.
    pub seeds: Vec<String>,
    /// Milliseconds between rounds.
    pub gossip_interval_ms: u64,
    /// Phi-accrual threshold.
    pub phi_threshold: f64,
    /// Seconds a dead peer is kept before it is forgotten.
    pub dead_node_grace_seconds: u64,
    /// This run's generation.
    pub generation: u64,
    /// Records refused because they did not verify.
    pub rejected_records: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

/// An agent call waiting for (or decided by) its user (`/api/v1/approvals`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Approval {
    /// Its id (32 hex).
    pub id: String,
    /// The agent that made the call.
    pub agent: String,
    /// The MCP tool the call amounts to.
    pub tool: String,
    /// HTTP method of the stored request.
    pub method: String,
    /// Path of the stored request.
    pub path: String,
    /// `pending`, `executing`, `approved`, `denied` or `failed`.
    pub state: String,
    /// When the agent made the call (RFC 3339).
    pub created_at: Option<String>,
    /// When it was approved or denied (RFC 3339).
    pub decided_at: Option<String>,
    /// What the request answered once approved.
    pub result: Option<ApprovalResult>,
}

/// The answer of an approved call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApprovalResult {
    /// Its HTTP status.
    pub status: u16,
    /// Its body (at most 64 KiB).
    pub body: String,
}

/// A node's reputation as one user sees it (`/api/v1/nodes/{id}/reputation`).
/// Every component and the composite are 0–1.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Reputation {
    /// The node (hex).
    pub node: String,
    /// Its operator (hex).
    pub operator: String,
    /// Heartbeats answered.
    pub uptime: f64,
    /// Instances that reached their desired state.
    pub reliability: f64,
    /// Resources delivered versus promised.
    pub honesty: f64,
    /// Time participating (logarithmic).
    pub age: f64,
    /// Attestations, weighted by how much the user trusts their issuers.
    pub attestation_trust: f64,
    /// The combination of them all.
    pub composite: f64,
    /// Days the node has been observed.
    pub active_days: u64,
    /// Attestations that pass the user's rules.
    pub qualifying_attestations: u64,
}

/// A credit account (`/api/v1/credits/balance`), in milli-units.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Balance {
    /// The account's operator key (hex).
    pub account: String,
    /// Balance (negative when in debt).
    pub balance: i64,
    /// Held for instances still running.
    pub held: i64,
    /// How far below zero the account may go.
    pub limit: i64,
    /// What may still be spent.
    pub available: i64,
}

/// One entry of a credit account's history (`/api/v1/credits/history`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LedgerEntry {
    /// Position in the ledger.
    pub seq: u64,
    /// `transfer`, `hold`, `settle`, `release` or `set_limit`.
    pub kind: String,
    /// The other account (hex key or `commons`), when there is one.
    #[serde(default)]
    pub counterparty: Option<String>,
    /// How the user's balance changed, in milli-units.
    #[serde(default)]
    pub balance_delta: i64,
    /// How the user's holds changed, in milli-units.
    #[serde(default)]
    pub held_delta: i64,
    /// When (RFC 3339).
    pub at: Option<String>,
    /// What it is for (an instance id, a transfer's nonce).
    pub reference: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn workloads_parse_leniently() {
        let w: Workload = view(
            &json!({"id": "x", "spec": {"name": "hello", "replicas": 3, "containers": []},
                    "status": {"running": 3, "up_to_date": 3, "new_field": 1}}),
            "workload",
        )
        .expect("parses");
        assert_eq!(w.name(), "hello");
        assert!(w.is_rolled_out());
        let w: Workload = view(&json!({"id": "x"}), "workload").expect("parses");
        assert_eq!(w.name(), "x");
    }

    #[test]
    fn cluster_status_from_an_older_daemon_has_no_members() {
        let c: ClusterStatus = view(
            &json!({"nodes_total": 2, "nodes_ready": 2, "workloads_total": 1,
                    "capacity": {"cpu_millis": 1}}),
            "cluster status",
        )
        .expect("parses");
        assert_eq!((c.nodes_total, c.nodes_ready, c.nodes_down), (2, 2, 0));
        assert!(c.control_plane.is_none() && c.members.is_empty());
    }

    #[test]
    fn reachability_reads_the_flattened_peer() {
        let r: Reachability = view(
            &json!({"node_id": "ab", "api_addr": "10.0.0.2:9090", "role": "worker",
                    "status": "Ready", "live": true, "is_self": false,
                    "reachable": true, "latency_ms": 1.25, "error": null}),
            "reachability",
        )
        .expect("parses");
        assert_eq!(r.peer.api_addr, "10.0.0.2:9090");
        assert!(r.peer.live && r.reachable);
        assert_eq!(r.latency_ms, Some(1.25));
        assert!(r.error.is_none());
    }

    #[test]
    fn network_status_without_gossip() {
        let n: NetworkStatus = view(
            &json!({"node_id": "ab", "role": "worker", "control_plane": null,
                    "control_plane_address": null, "peers_live": 1, "peers_dead": 0,
                    "gossip": null}),
            "network status",
        )
        .expect("parses");
        assert_eq!(n.role, "worker");
        assert!(n.gossip.is_none() && n.control_plane.is_none());
    }

    #[test]
    fn a_wrong_shape_is_an_error() {
        let err = view::<Workload>(&json!({"spec": 3}), "workload").expect_err("fails");
        assert!(err
            .to_string()
            .starts_with("unexpected workload from the server"));
    }
}
