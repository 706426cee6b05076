//! The `ContainerRuntime` contract (SPEC §5, §9).
//!
//! - [`ContainerRuntime`]: create, stop, remove, inspect and list containers on a
//!   node, read their logs, and subscribe to their state changes.
//! - [`ContainerSpec`], [`ContainerStatus`], [`ContainerState`]: what goes in and
//!   what comes out.
//! - [`RuntimeError`]: the failures a runtime reports.
//! - `testsuite` (feature): the contract tests every implementation runs.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use orchestrator_shared_types::{
    ContainerConfig, ContainerId, InstanceId, NodeId, OrchestrationError, PublicKey, PublishedPort,
    WorkloadId,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

#[cfg(feature = "testsuite")]
pub mod testsuite;

/// What a runtime needs to create one container of an instance.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerSpec {
    /// The instance the container belongs to.
    pub instance_id: InstanceId,
    /// The workload of that instance.
    pub workload_id: WorkloadId,
    /// The container as the manifest describes it.
    pub config: ContainerConfig,
    /// Extra labels the runtime keeps with the container.
    pub labels: BTreeMap<String, String>,
    /// The owner's volumes mounted into it (from `config.volumes`, with
    /// their owner): the runtime makes each on first use.
    pub volumes: Vec<VolumeAttachment>,
    /// The owner's secrets that `config.secret_env` and `config.secret_files`
    /// name, by name: each the armored age file as the owner sealed it. Only
    /// the node's own key opens one; the runtime opens them just before the
    /// process starts and writes their values to no disk.
    pub secrets: BTreeMap<String, String>,
}

/// Why a container that names secret `name` cannot be created: `spec`
/// lacks it, or this node cannot open it. Never holds the value.
pub fn secret_error(spec: &ContainerSpec, name: &str, why: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Create {
        instance: spec.instance_id,
        name: spec.config.name.clone(),
        reason: format!("secret {name:?}: {why}"),
    }
}

impl ContainerSpec {
    /// The sealed value of each secret `config` names, or the error of the
    /// first one `secrets` lacks.
    pub fn sealed_secrets(&self) -> Result<BTreeMap<&str, &str>> {
        let mut out = BTreeMap::new();
        for name in self.config.secret_names() {
            match self.secrets.get(name) {
                Some(sealed) => {
                    out.insert(name, sealed.as_str());
                }
                None => return Err(secret_error(self, name, "its sealed value was not given")),
            }
        }
        Ok(out)
    }
}

/// One of the owner's volumes, by owner and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VolumeRef {
    /// Its owner.
    pub owner: PublicKey,
    /// Its name (a DNS label).
    pub name: String,
}

impl std::fmt::Display for VolumeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}", self.name, self.owner.short())
    }
}

/// A volume mounted into a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeAttachment {
    /// Which volume.
    pub volume: VolumeRef,
    /// Its size in bytes (enforced by the node's kernel).
    pub size_bytes: u64,
    /// Where it appears in the container.
    pub mount_path: String,
    /// Mounted read-only.
    #[serde(default)]
    pub read_only: bool,
}

impl VolumeAttachment {
    /// The attachments of `config`'s volumes, owned by `owner`.
    pub fn of(owner: PublicKey, config: &ContainerConfig) -> Vec<VolumeAttachment> {
        config
            .volumes
            .iter()
            .map(|v| VolumeAttachment {
                volume: VolumeRef {
                    owner,
                    name: v.name.clone(),
                },
                size_bytes: v.size.bytes(),
                mount_path: v.mount_path.clone(),
                read_only: v.read_only,
            })
            .collect()
    }
}

/// Where a container is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// Its process runs.
    Running,
    /// Its process ended.
    Exited,
    /// The runtime cannot tell.
    Unknown,
}

/// A container as the runtime sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// Runtime id.
    pub id: ContainerId,
    /// Node it runs on.
    pub node_id: NodeId,
    /// Instance it belongs to.
    pub instance_id: InstanceId,
    /// Workload of that instance.
    pub workload_id: WorkloadId,
    /// Container name from the manifest.
    pub name: String,
    /// Current state.
    pub state: ContainerState,
    /// Exit code once exited.
    pub exit_code: Option<i32>,
    /// Why it exited: `Completed`, `Error`, `OOMKilled`, `Killed`.
    pub reason: Option<String>,
    /// When its process started.
    pub started_at: Option<DateTime<Utc>>,
    /// When its process ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether it counts as ready: running, and passing its readiness probe
    /// if it has one.
    #[serde(default)]
    pub ready: bool,
    /// Its address on the node's bridge network (none on the host's network
    /// or without a network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Its ports published on the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PublishedPort>,
}

/// Which lines of a log to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last N lines.
    pub tail: Option<usize>,
}

/// One line of a container's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the line was written.
    pub timestamp: DateTime<Utc>,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text, without its newline.
    pub line: String,
}

/// What containers use, from their cgroups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// CPU time consumed so far, in seconds.
    pub cpu_seconds: f64,
    /// Memory in use, in bytes.
    pub memory_bytes: u64,
}

/// Failures of a container runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No container with this id.
    #[error("container {0} not found")]
    NotFound(ContainerId),
    /// The instance already has a container of this name; creation is idempotent.
    #[error("container {0} already exists")]
    AlreadyExists(ContainerId),
    /// The node is not served by this runtime, or was not initialised.
    #[error("node {0} is not initialised on this runtime")]
    UnknownNode(NodeId),
    /// The node cannot be reached (partitioned or dead); what runs there keeps
    /// its state, but nothing about it can be read or changed.
    #[error("node {0} is unreachable")]
    NodeUnreachable(NodeId),
    /// The image could not be pulled.
    #[error("pulling image {image}: {reason}")]
    ImagePull {
        /// Image reference.
        image: String,
        /// Why it failed.
        reason: String,
    },
    /// The container could not be created or started.
    #[error("creating container {name} of instance {instance}: {reason}")]
    Create {
        /// Instance.
        instance: InstanceId,
        /// Container name.
        name: String,
        /// Why it failed.
        reason: String,
    },
    /// A container operation failed.
    #[error("{operation} container {id}: {reason}")]
    Operation {
        /// What was being done (`stopping`, `removing`, …).
        operation: &'static str,
        /// Which container.
        id: ContainerId,
        /// Why it failed.
        reason: String,
    },
    /// The runtime is shutting down.
    #[error("runtime is shut down")]
    ShutDown,
    /// This runtime cannot do that (volumes on a runtime without them).
    #[error("{operation} is not supported by this runtime")]
    Unsupported {
        /// What was asked.
        operation: &'static str,
    },
    /// A volume could not be made, mounted or wiped.
    #[error("volume {volume}: {reason}")]
    Volume {
        /// Which volume.
        volume: String,
        /// Why it failed.
        reason: String,
    },
    /// A volume is mounted by containers, so it cannot be wiped.
    #[error("volume {volume} is in use by {containers} container(s)")]
    VolumeInUse {
        /// Which volume.
        volume: String,
        /// How many containers use it.
        containers: usize,
    },
}

impl From<RuntimeError> for OrchestrationError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::NotFound(id) => OrchestrationError::NotFound {
                kind: "container",
                id: id.to_string(),
            },
            RuntimeError::VolumeInUse { volume, .. } => OrchestrationError::Conflict {
                kind: "volume",
                id: volume,
                message: "it is in use by containers".to_owned(),
            },
            other => OrchestrationError::Runtime(other.to_string()),
        }
    }
}

/// Result with [`RuntimeError`].
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Runs containers on nodes.
///
/// Creation is idempotent per (instance, container name): creating again returns
/// [`RuntimeError::AlreadyExists`] with the existing id. Every state change of a
/// container (started, exited) is published to [`ContainerRuntime::subscribe_status`].
#[async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Prepares `node` to run containers (directories, cgroups, …).
    async fn init_node(&self, node: NodeId) -> Result<()>;
    /// Creates and starts a container on `node`.
    async fn create_container(&self, node: NodeId, spec: &ContainerSpec) -> Result<ContainerId>;
    /// Stops a container: SIGTERM, then SIGKILL after `grace`. Stopping a stopped
    /// container succeeds.
    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<()>;
    /// Removes a container (stopping it first if it runs) and everything it left.
    async fn remove_container(&self, id: &ContainerId) -> Result<()>;
    /// The container's current status.
    async fn get_container_status(&self, id: &ContainerId) -> Result<ContainerStatus>;
    /// Every container on `node`.
    async fn list_containers(&self, node: NodeId) -> Result<Vec<ContainerStatus>>;
    /// Lines of the container's output so far.
    async fn get_container_logs(&self, id: &ContainerId, opts: LogOptions) -> Result<Vec<LogLine>>;
    /// The container's output from now on (after the lines so far), until it exits.
    async fn follow_container_logs(&self, id: &ContainerId) -> Result<BoxStream<'static, LogLine>>;
    /// State changes of every container of this runtime.
    fn subscribe_status(&self) -> broadcast::Receiver<ContainerStatus>;
    /// What the running containers of `node` use now, summed; `None` when
    /// the runtime does not measure it (the mock).
    async fn usage(&self, node: NodeId) -> Result<Option<ResourceUsage>> {
        let _ = node;
        Ok(None)
    }
    /// What container `id` has used since it started (CPU time) and uses now
    /// (memory), from its cgroup — readable until the container is removed,
    /// also after it exited; `None` when the runtime does not measure it
    /// (the mock). Honesty probes (reputation) time a benchmark container
    /// with it.
    async fn container_usage(&self, id: &ContainerId) -> Result<Option<ResourceUsage>> {
        let _ = id;
        Ok(None)
    }
    /// Wipes volume `volume` on `node` (its data overwritten, then removed):
    /// refused with [`RuntimeError::VolumeInUse`] while a container of this
    /// runtime mounts it; a volume the node does not have is already gone.
    async fn delete_volume(&self, node: NodeId, volume: &VolumeRef) -> Result<()> {
        let _ = (node, volume);
        Err(RuntimeError::Unsupported {
            operation: "deleting a volume",
        })
    }
}
