//! Nodes of the cluster.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, PublicKey};
use crate::resources::Resources;

/// A node's health as the cluster sees it (state machine in `ontology/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum NodeStatus {
    /// Healthy and accepting work (unless cordoned).
    Ready,
    /// Reachable but not healthy.
    NotReady,
    /// Not heard from recently; not yet declared down.
    Unknown,
    /// Declared dead; its instances are rescheduled.
    Down,
}

/// Effect of a taint on instances that do not tolerate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TaintEffect {
    /// Never schedule a non-tolerating instance here.
    NoSchedule,
    /// Avoid scheduling a non-tolerating instance here.
    PreferNoSchedule,
    /// Do not schedule, and evict what runs here without tolerating it.
    NoExecute,
}

/// A taint repels instances that do not tolerate it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value (may be empty).
    #[serde(default)]
    pub value: String,
    /// What it does to non-tolerating instances.
    pub effect: TaintEffect,
}

/// A member of the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Node {
    /// Its Ed25519 public key.
    pub id: NodeId,
    /// Where its agent can be reached (`host:port`).
    pub address: String,
    /// Health.
    pub status: NodeStatus,
    /// Cordoned: keeps what it runs, accepts nothing new.
    #[serde(default)]
    pub unschedulable: bool,
    /// Labels for node selectors and affinity.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Taints.
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// Total resources of the machine.
    pub resources_capacity: Resources,
    /// What the orchestrator may hand out (capacity minus system reserve).
    pub resources_allocatable: Resources,
    /// The operator who runs this node.
    pub operator: PublicKey,
    /// When it joined.
    pub joined_at: DateTime<Utc>,
}

impl Node {
    /// Whether new instances may be placed here at all.
    pub fn is_schedulable(&self) -> bool {
        self.status == NodeStatus::Ready && !self.unschedulable
    }
}
