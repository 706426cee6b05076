//! The caller's volumes (`GET /api/v1/volumes`, `DELETE /api/v1/volumes/{name}`).

use chrono::{DateTime, Utc};
use orchestrator_shared_types::NodeId;
use serde::{Deserialize, Serialize};

/// One of the caller's volumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "jsonschema", derive(schemars::JsonSchema))]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// The node it lives on.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[cfg_attr(feature = "jsonschema", schemars(with = "String"))]
    pub node: NodeId,
    /// Its size (`64Mi`).
    pub size: String,
    /// Its size in bytes.
    #[serde(default)]
    pub size_bytes: u64,
    /// The caller's workloads whose manifest mounts it.
    #[serde(default)]
    pub used_by: Vec<String>,
    /// When its first instance was placed.
    pub created_at: DateTime<Utc>,
    /// Being wiped.
    #[serde(default)]
    pub deleting: bool,
}
