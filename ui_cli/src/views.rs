//! Reading the server's JSON into the API's wire types (`orchestrator_api`),
//! which tables show. Those types ignore fields they do not know, so a newer
//! server still prints, and `-o json` always shows the full answer.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Parses `value` into a wire type, naming `what` if it does not fit.
pub fn view<T: DeserializeOwned>(value: &Value, what: &str) -> anyhow::Result<T> {
    T::deserialize(value).map_err(|e| anyhow::anyhow!("unexpected {what} from the server: {e}"))
}

/// The word a status enum travels as (`Running`, `Ready`, `pending`).
pub fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Test fixtures: answers as a server sends them, built from the wire types
/// and changed where a test says so.
#[cfg(test)]
pub mod fixtures {
    use orchestrator_api::{Workload, WorkloadStatus};
    use orchestrator_shared_types::{
        NodeId, PublicKey, WorkloadDefinition, WorkloadId, WorkloadInstance, WorkloadSpec,
    };
    use serde_json::{json, Value};

    /// `base` with `changes` merged in (objects field by field, anything
    /// else replaced).
    pub fn merged(mut base: Value, changes: Value) -> Value {
        match (&mut base, changes) {
            (Value::Object(b), Value::Object(c)) => {
                for (k, v) in c {
                    let old = b.remove(&k).unwrap_or(Value::Null);
                    b.insert(k, merged(old, v));
                }
                base
            }
            (_, c) => c,
        }
    }

    /// A workload `w` of one container, with `changes`.
    pub fn workload(changes: Value) -> Value {
        let spec =
            WorkloadSpec::from_yaml("name: w\ncontainers:\n  - name: main\n    image: w:1\n")
                .expect("manifest");
        let w = Workload {
            workload: WorkloadDefinition::new(PublicKey([1; 32]), spec),
            status: WorkloadStatus::default(),
        };
        merged(serde_json::to_value(w).expect("json"), changes)
    }

    /// A Pending instance, with `changes`.
    pub fn instance(changes: Value) -> Value {
        let i = WorkloadInstance::pending(WorkloadId::new(), 1, NodeId([2; 32]));
        merged(serde_json::to_value(i).expect("json"), changes)
    }

    /// A Ready node, with `changes`.
    pub fn node(changes: Value) -> Value {
        let base = json!({
            "id": "03".repeat(32), "address": "127.0.0.1:7000", "status": "Ready",
            "unschedulable": false, "labels": {}, "taints": [],
            "resources_capacity": {"cpu_millis": 4000, "memory_bytes": 8u64 << 30},
            "resources_allocatable": {"cpu_millis": 4000, "memory_bytes": 8u64 << 30},
            "operator": "04".repeat(32), "joined_at": "2026-11-22T10:00:00Z"
        });
        merged(base, changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator_api::{ClusterStatus, NetworkStatus, Reachability, Workload};
    use serde_json::json;

    #[test]
    fn workloads_parse_leniently() {
        let w: Workload = view(
            &fixtures::workload(json!({"spec": {"name": "hello", "replicas": 3},
                    "status": {"running": 3, "up_to_date": 3, "new_field": 1}})),
            "workload",
        )
        .expect("parses");
        assert_eq!(w.name(), "hello");
        assert!(w.is_rolled_out());
        let w: Workload = view(
            &fixtures::workload(json!({"newer": {"field": 1}})),
            "workload",
        )
        .expect("parses");
        assert_eq!(w.name(), "w");
    }

    #[test]
    fn cluster_status_from_an_older_daemon_has_no_members() {
        let c: ClusterStatus = view(
            &json!({"nodes_total": 2, "nodes_ready": 2, "workloads_total": 1,
                    "capacity": {"cpu_millis": 1, "memory_bytes": 0}}),
            "cluster status",
        )
        .expect("parses");
        assert_eq!((c.nodes_total, c.nodes_ready, c.nodes_down), (2, 2, 0));
        assert!(c.control_plane.is_none() && c.members.is_empty());
    }

    #[test]
    fn reachability_reads_the_flattened_peer() {
        let r: Reachability = view(
            &json!({"node_id": "ab".repeat(32), "gossip_addr": "", "generation": 0,
                    "api_addr": "10.0.0.2:9090", "role": "worker",
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
            &json!({"node_id": "ab".repeat(32), "role": "worker", "control_plane": null,
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
