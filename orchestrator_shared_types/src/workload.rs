//! Workloads: the manifest a user writes and the definition the cluster stores.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{PublicKey, WorkloadId};
use crate::node::{Taint, TaintEffect};
use crate::resources::{QosClass, ResourceRequirements, Resources};
use crate::trust::TrustRules;

/// What a user asks for: the manifest (YAML or JSON). Unknown fields are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Name, unique per owner: lowercase letters, digits and `-`, at most 63 characters.
    pub name: String,
    /// How many instances should run.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// The containers of each instance (at least one).
    pub containers: Vec<ContainerConfig>,
    /// Labels of the workload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Where instances may go.
    #[serde(default, skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
    /// What to do when containers exit.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// How an update replaces running instances.
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
    /// Trust rules of this workload: hard constraints on where it may run,
    /// enforced together with its owner's pushed trust policy (`ui policy
    /// push`; see [`TrustRules::and`]), which they can narrow, never widen.
    #[serde(default, skip_serializing_if = "TrustRules::is_empty")]
    pub trust: TrustRules,
    /// The network of each instance (`bridge`, `host` or `none`); absent:
    /// the label `univrs.io/network`, else `bridge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::ports::NetworkMode>,
}

fn default_replicas() -> u32 {
    1
}

impl WorkloadSpec {
    /// Resources one instance reserves: the sum of its containers' effective requests.
    pub fn instance_request(&self) -> Resources {
        self.containers.iter().fold(Resources::ZERO, |acc, c| {
            acc.saturating_add(c.resources.effective_request())
        })
    }

    /// QoS class of an instance.
    pub fn qos_class(&self) -> QosClass {
        QosClass::of(self.containers.iter().map(|c| &c.resources))
    }

    /// Whether `other` differs in what instances run (so instances must be replaced),
    /// as opposed to only in the replica count or labels.
    pub fn template_differs(&self, other: &WorkloadSpec) -> bool {
        self.containers != other.containers
            || self.placement != other.placement
            || self.restart_policy != other.restart_policy
            || self.network_mode() != other.network_mode()
    }
}

/// A workload as stored: the spec plus identity, owner and generation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkloadDefinition {
    /// Fixed at creation.
    pub id: WorkloadId,
    /// The key that created it; only it (or an admin) may change it.
    pub owner: PublicKey,
    /// Bumped whenever the instance template changes; instances record theirs.
    pub generation: u64,
    /// The manifest.
    pub spec: WorkloadSpec,
    /// The template before the last change of template, kept for rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<Revision>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl WorkloadDefinition {
    /// A new workload at generation 1.
    pub fn new(owner: PublicKey, spec: WorkloadSpec) -> Self {
        let now = Utc::now();
        Self {
            id: WorkloadId::new(),
            owner,
            generation: 1,
            spec,
            previous: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Name of the workload.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// An earlier template of a workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revision {
    /// The generation that ran it.
    pub generation: u64,
    /// The spec of that generation.
    pub spec: WorkloadSpec,
}

/// One container of an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContainerConfig {
    /// Name, unique within the workload.
    pub name: String,
    /// Image reference (`registry/repo:tag` or `@sha256:…`).
    pub image: String,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Replaces the image's default arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Environment variables taken from the owner's secrets: opened on the
    /// node just before start and given to the process, never written to
    /// the node's disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<SecretEnvRef>,
    /// Files holding the owner's secrets, read-only, on a tmpfs of the node
    /// (never its disk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_files: Vec<SecretFileRef>,
    /// Ports the container listens on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSpec>,
    /// Requests and limits.
    #[serde(default)]
    pub resources: ResourceRequirements,
    /// Named volumes of the owner mounted into the container; an instance
    /// that uses one runs on the node where it lives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<crate::volume::VolumeMount>,
    /// Restart the container when this fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// The instance counts as ready only while this succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
}

/// An environment variable whose value comes from a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretEnvRef {
    /// Variable name.
    pub name: String,
    /// Secret name in the owner's store.
    pub secret: String,
}

/// A file whose content is a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretFileRef {
    /// Absolute path of the file in the container.
    pub path: String,
    /// Secret name in the owner's store.
    pub secret: String,
}

/// A port a container listens on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// Port number, 1–65535.
    pub container_port: u32,
    /// `TCP` (default) or `UDP`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The node's port it is published on. On the host's network (the
    /// default) the container's port is the node's port: leave it out or
    /// give the same number. The schedulers never put two instances that
    /// take the same port on one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u32>,
}

fn default_protocol() -> String {
    "TCP".to_owned()
}

/// A health probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Probe {
    /// What the probe does.
    #[serde(flatten)]
    pub action: ProbeAction,
    /// Seconds after start before the first probe.
    #[serde(default)]
    pub initial_delay_seconds: u32,
    /// Seconds between probes (≥ 1).
    #[serde(default = "default_period")]
    pub period_seconds: u32,
    /// Seconds before a probe counts as failed (≥ 1).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
    /// Consecutive failures that count as failure (≥ 1).
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
}

fn default_period() -> u32 {
    10
}
fn default_timeout() -> u32 {
    1
}
fn default_failure_threshold() -> u32 {
    3
}

/// The check a probe performs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProbeAction {
    /// Run a command in the container; exit 0 is success.
    Exec {
        /// The command.
        command: Vec<String>,
    },
    /// HTTP GET; a 2xx or 3xx status is success.
    HttpGet {
        /// Request path.
        #[serde(default = "default_path")]
        path: String,
        /// Port.
        port: u32,
    },
    /// TCP connect; a connection is success.
    TcpSocket {
        /// Port.
        port: u32,
    },
}

fn default_path() -> String {
    "/".to_owned()
}

/// Where instances may be placed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Nodes must carry every one of these labels with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Nodes must satisfy every requirement (required node affinity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_affinity: Vec<LabelRequirement>,
    /// Taints these instances tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// At most this many instances of the workload per node (hard anti-affinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_node: Option<u32>,
}

impl Placement {
    /// Whether nothing is constrained.
    pub fn is_empty(&self) -> bool {
        *self == Placement::default()
    }

    /// Whether these tolerations let an instance onto a node with `taints`
    /// (`PreferNoSchedule` taints never exclude).
    pub fn tolerates_all(&self, taints: &[Taint]) -> bool {
        taints.iter().all(|t| {
            t.effect == TaintEffect::PreferNoSchedule
                || self.tolerations.iter().any(|tol| tol.tolerates(t))
        })
    }

    /// Whether a node with `labels` passes the node selector and affinity.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.node_affinity.iter().all(|r| r.matches(labels))
    }
}

/// A label requirement (`key In [a, b]`, `key Exists`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LabelRequirement {
    /// Label key.
    pub key: String,
    /// How to compare.
    pub operator: LabelOperator,
    /// Values for `In` and `NotIn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Comparison of a label requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LabelOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl LabelRequirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match self.operator {
            LabelOperator::In => v.is_some_and(|v| self.values.contains(v)),
            LabelOperator::NotIn => v.is_none_or(|v| !self.values.contains(v)),
            LabelOperator::Exists => v.is_some(),
            LabelOperator::DoesNotExist => v.is_none(),
        }
    }
}

/// Tolerates taints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    /// Taint key; empty with `Exists` tolerates every taint.
    #[serde(default)]
    pub key: String,
    /// `Equal` (default) or `Exists`.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// Value for `Equal`.
    #[serde(default)]
    pub value: String,
    /// Effect tolerated; none means every effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
}

/// How a toleration matches a taint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TolerationOperator {
    /// Key and value must match.
    #[default]
    Equal,
    /// Key must match (any key if empty).
    Exists,
}

impl Toleration {
    /// Whether this toleration covers `taint`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => self.key.is_empty() || self.key == taint.key,
            TolerationOperator::Equal => self.key == taint.key && self.value == taint.value,
        }
    }
}

/// What happens when an instance's containers exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RestartPolicy {
    /// Restart whatever the exit code.
    #[default]
    Always,
    /// Restart only on a non-zero exit code.
    OnFailure,
    /// Never restart.
    Never,
}

/// A rolling update: how far above and below `replicas` the rollout may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateStrategy {
    /// Extra instances allowed above `replicas` during a rollout.
    #[serde(default = "default_surge")]
    pub max_surge: u32,
    /// Instances allowed below `replicas` running during a rollout.
    #[serde(default)]
    pub max_unavailable: u32,
    /// Return to the previous template when new instances keep failing.
    #[serde(default = "default_true")]
    pub auto_rollback: bool,
    /// Failures of new-generation instances that trigger the rollback.
    #[serde(default = "default_rollback_failures")]
    pub rollback_after_failures: u32,
}

fn default_surge() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_rollback_failures() -> u32 {
    3
}

impl Default for UpdateStrategy {
    fn default() -> Self {
        Self {
            max_surge: default_surge(),
            max_unavailable: 0,
            auto_rollback: true,
            rollback_after_failures: default_rollback_failures(),
        }
    }
}
