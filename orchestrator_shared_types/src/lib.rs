//! The domain model every other crate speaks (SPEC §4).
//!
//! - [`admission`]: join tokens, join requests and the signed member list.
//! - [`auth`]: the signed-request scheme of the REST API (SPEC §11), both sides.
//! - [`agent`]: AI agents (docs/AGENTS.md): agent tokens, the automation policy
//!   the daemon enforces, and the MCP tool each REST request amounts to.
//! - [`ids`]: `NodeId`, `PublicKey`, `WorkloadId`, `InstanceId`, `ContainerId`.
//! - [`quantity`]: Kubernetes resource quantities (`100m`, `1.5`, `64Mi`, `1Gi`).
//! - [`resources`]: node resources, container requests and limits, QoS class.
//! - [`node`]: `Node`, its status, labels and taints.
//! - [`operator`]: operator proofs, so a node's claimed operator is proven by
//!   the operator's own signature.
//! - [`workload`]: the manifest (`WorkloadSpec`), the stored `WorkloadDefinition`,
//!   placement, restart policy and update strategy.
//! - [`trust`]: a workload owner's trust rules (where it may run).
//! - [`volume`]: named volumes (`volumes:` of a container) and their records.
//! - [`instance`]: `WorkloadInstance` and its status.
//! - [`lifecycle`]: the node and instance state machines (mirrored in `ontology/`).
//! - [`manifest`]: parsing manifests from YAML or JSON with errors that name the field.
//! - [`validation`]: semantic checks of a manifest, collecting every problem with its path.
//! - [`error`]: `OrchestrationError`, the one error at the shared boundary.
//! - `private_fs` (Unix): the daemon's data at rest, directories 0700 and
//!   files 0600, and atomic private writes.
//!
//! YAML goes through `serde_yaml_ng`, the maintained fork of the archived
//! `serde_yaml` with the same API; `serde_path_to_error` gives deserialisation
//! errors the path of the offending field.

pub mod admission;
pub mod agent;
pub mod auth;
pub mod error;
pub mod health;
pub mod ids;
pub mod instance;
pub mod lifecycle;
pub mod manifest;
pub mod net;
pub mod node;
pub mod operator;
pub mod ports;
#[cfg(unix)]
pub mod private_fs;
pub mod quantity;
pub mod resources;
pub mod secret;
pub mod trust;
pub mod validation;
pub mod volume;
pub mod workload;

pub use error::{OrchestrationError, Result};
pub use ids::{ContainerId, InstanceId, NodeId, PublicKey, WorkloadId};
pub use instance::{InstanceStatus, WorkloadInstance};
pub use manifest::ManifestError;
pub use node::{Node, NodeStatus, Taint, TaintEffect};
pub use ports::{HostPort, NetworkMode, PublishedPort};
pub use quantity::{CpuQuantity, MemoryQuantity};
pub use resources::{QosClass, ResourceList, ResourceRequirements, Resources};
pub use trust::TrustRules;
pub use volume::{VolumeMount, VolumeRecord};
pub use workload::{
    ContainerConfig, LabelOperator, LabelRequirement, Placement, PortSpec, Probe, ProbeAction,
    RestartPolicy, Revision, SecretEnvRef, SecretFileRef, Toleration, TolerationOperator,
    UpdateStrategy, WorkloadDefinition, WorkloadSpec,
};
