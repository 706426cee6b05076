//! The body of `GET /api/v1/info`: who this node is and which audience
//! requests to it must be signed for (SPEC §11, signing scheme v2).

use serde::{Deserialize, Serialize};

/// Body of `GET /api/v1/info` (unsigned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "jsonschema", derive(schemars::JsonSchema))]
pub struct NodeInfo {
    /// What a request to this node must be signed for: the cluster id, or a
    /// standalone node's own node id.
    pub audience: String,
    /// The cluster this node belongs to; `null` on a standalone node.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// This node's id (hex of its Ed25519 public key).
    pub node_id: String,
    /// The daemon's version.
    pub version: String,
}
