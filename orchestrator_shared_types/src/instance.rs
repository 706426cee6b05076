//! Instances: one replica of a workload placed on a node.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{ContainerId, InstanceId, NodeId, WorkloadId};
use crate::ports::PublishedPort;

/// Lifecycle of an instance (state machine in `ontology/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InstanceStatus {
    /// Placed; containers not running yet (or waiting for a restart).
    Pending,
    /// Its containers run.
    Running,
    /// Its containers exited with code 0 and will not be restarted.
    Succeeded,
    /// Its containers failed and will not be restarted, or could not start.
    Failed,
    /// Its node cannot be reached; what runs there is not known.
    Unknown,
}

impl InstanceStatus {
    /// Whether the instance is finished for good.
    pub fn is_terminal(self) -> bool {
        matches!(self, InstanceStatus::Succeeded | InstanceStatus::Failed)
    }
}

/// One replica of a workload on one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkloadInstance {
    /// Its id.
    pub id: InstanceId,
    /// The workload it belongs to.
    pub workload_id: WorkloadId,
    /// The workload generation it runs.
    pub generation: u64,
    /// The node it is placed on.
    pub node_id: NodeId,
    /// Its containers, in the order of the workload's `containers`.
    #[serde(default)]
    pub container_ids: Vec<ContainerId>,
    /// Lifecycle status.
    pub status: InstanceStatus,
    /// How many times its containers were restarted.
    #[serde(default)]
    pub restarts: u32,
    /// Exit code of the last container exit.
    #[serde(default)]
    pub last_exit_code: Option<i32>,
    /// Why it is in its status (`Completed`, `Error`, `NodeLost`, …).
    #[serde(default)]
    pub reason: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When its containers last started.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When its containers last exited.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Earliest time of the next restart (crash-loop back-off).
    #[serde(default)]
    pub restart_after: Option<DateTime<Utc>>,
    /// Running, and every container passes its readiness probe (or has none).
    #[serde(default)]
    pub ready: bool,
    /// The address it is reached at on the node's bridge (none on the
    /// host's network, or with no network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Its ports published on the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PublishedPort>,
}

impl WorkloadInstance {
    /// A new `Pending` instance of `workload_id` at `generation` on `node_id`.
    pub fn pending(workload_id: WorkloadId, generation: u64, node_id: NodeId) -> Self {
        let now = Utc::now();
        Self {
            id: InstanceId::new(),
            workload_id,
            generation,
            node_id,
            container_ids: Vec::new(),
            status: InstanceStatus::Pending,
            restarts: 0,
            last_exit_code: None,
            reason: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            restart_after: None,
            ready: false,
            address: None,
            ports: Vec::new(),
        }
    }
}
