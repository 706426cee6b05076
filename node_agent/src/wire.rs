//! The agent protocol (`/agent/v1`): request and response bodies, and how a
//! [`RuntimeError`] travels as `{"error": {"code", "message", "id"}}` and comes
//! back as the same variant.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use container_runtime_interface::{RuntimeError, VolumeAttachment, VolumeRef};
use orchestrator_shared_types::{ContainerConfig, ContainerId, InstanceId, NodeId, WorkloadId};
use serde::{Deserialize, Serialize};

/// Path prefix of the agent routes.
pub const AGENT_PREFIX: &str = "/agent/v1";

/// The error code of a call refused for its control-plane term (409): a
/// newer term is in force on the node ([`crate::term`]).
pub const STALE_TERM: &str = "stale_term";

/// `POST /agent/v1/containers`: what to create.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateContainer {
    /// The instance.
    pub instance_id: InstanceId,
    /// Its workload.
    pub workload_id: WorkloadId,
    /// The container.
    pub config: ContainerConfig,
    /// Extra labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The owner's volumes it mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeAttachment>,
    /// The sealed secrets it names (ciphertext only: the node opens them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

/// `DELETE /agent/v1/volumes/{owner}/{name}`: wipes a volume.
pub fn volume_path(volume: &VolumeRef) -> String {
    format!(
        "{AGENT_PREFIX}/volumes/{}/{}",
        volume.owner.to_hex(),
        orchestrator_shared_types::auth::encode_path_segment(&volume.name)
    )
}

/// The node-local id of a created (or already existing) container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Created {
    /// Node-local container id.
    pub id: ContainerId,
}

/// `POST /agent/v1/containers/{id}/stop`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Stop {
    /// Grace period before SIGKILL, in milliseconds.
    pub grace_ms: u64,
}

/// An agent error.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireError {
    /// The error.
    pub error: WireErrorDetail,
}

/// Code, message and, where it applies, the container id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireErrorDetail {
    /// `not_found`, `already_exists`, `image_pull`, `create`, `operation`,
    /// `shut_down`, `unknown_node`, `unauthorized`, `forbidden`, `bad_request`,
    /// `stale_term` ([`STALE_TERM`]).
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// The container concerned (node-local id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The image concerned (`image_pull`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The volume concerned (`volume`, `volume_in_use`, whose message is
    /// the number of containers using it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

impl WireError {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error: WireErrorDetail {
                code: code.to_owned(),
                message: message.into(),
                id: None,
                image: None,
                volume: None,
            },
        }
    }

    /// How a runtime error is answered.
    pub fn from_runtime(e: &RuntimeError) -> (StatusCode, Self) {
        let (status, code, id) = match e {
            RuntimeError::NotFound(id) => (StatusCode::NOT_FOUND, "not_found", Some(id)),
            RuntimeError::AlreadyExists(id) => (StatusCode::CONFLICT, "already_exists", Some(id)),
            RuntimeError::ImagePull { .. } => (StatusCode::BAD_GATEWAY, "image_pull", None),
            RuntimeError::Create { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "create", None),
            RuntimeError::Operation { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "operation", None)
            }
            RuntimeError::ShutDown => (StatusCode::SERVICE_UNAVAILABLE, "shut_down", None),
            RuntimeError::Unsupported { .. } => (StatusCode::NOT_IMPLEMENTED, "unsupported", None),
            RuntimeError::Volume { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "volume", None),
            RuntimeError::VolumeInUse { .. } => (StatusCode::CONFLICT, "volume_in_use", None),
            RuntimeError::UnknownNode(_) | RuntimeError::NodeUnreachable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unknown_node", None)
            }
        };
        let mut body = match e {
            RuntimeError::ImagePull { image, reason } => {
                let mut b = Self::new(code, reason.clone());
                b.error.image = Some(image.clone());
                b
            }
            RuntimeError::Volume { volume, reason } => {
                let mut b = Self::new(code, reason.clone());
                b.error.volume = Some(volume.clone());
                b
            }
            RuntimeError::VolumeInUse { volume, containers } => {
                let mut b = Self::new(code, containers.to_string());
                b.error.volume = Some(volume.clone());
                b
            }
            _ => Self::new(code, e.to_string()),
        };
        body.error.id = id.map(|i| i.0.clone());
        (status, body)
    }

    /// The runtime error this answer stands for, as the caller on `node` sees
    /// it; `routed` turns a node-local container id into a routed one.
    pub fn into_runtime(
        self,
        node: NodeId,
        routed: impl Fn(ContainerId) -> ContainerId,
    ) -> RuntimeError {
        let d = self.error;
        let id = d.id.map(ContainerId);
        match (d.code.as_str(), id) {
            ("not_found", Some(id)) => RuntimeError::NotFound(routed(id)),
            ("already_exists", Some(id)) => RuntimeError::AlreadyExists(routed(id)),
            ("image_pull", _) => RuntimeError::ImagePull {
                image: d.image.unwrap_or_default(),
                reason: d.message,
            },
            ("shut_down", _) => RuntimeError::ShutDown,
            ("unsupported", _) => RuntimeError::Unsupported {
                operation: "this call",
            },
            ("volume", _) => RuntimeError::Volume {
                volume: d.volume.unwrap_or_default(),
                reason: d.message,
            },
            ("volume_in_use", _) => RuntimeError::VolumeInUse {
                volume: d.volume.unwrap_or_default(),
                containers: d.message.parse().unwrap_or(1),
            },
            ("unknown_node", _) => RuntimeError::UnknownNode(node),
            // The node answered: not unreachable, and no retry with this
            // term can succeed (a newer leader is in force).
            (STALE_TERM, _) => RuntimeError::Operation {
                operation: "refused for its stale control-plane term by the agent of",
                id: ContainerId(node.short()),
                reason: d.message,
            },
            (_, id) => RuntimeError::Operation {
                operation: "asking the agent of",
                id: id.map_or_else(|| ContainerId(node.short()), routed),
                reason: format!("{}: {}", d.code, d.message),
            },
        }
    }
}
