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
    fn a_wrong_shape_is_an_error() {
        let err = view::<Workload>(&json!({"spec": 3}), "workload").expect_err("fails");
        assert!(err
            .to_string()
            .starts_with("unexpected workload from the server"));
    }
}
