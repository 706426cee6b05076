//! The REST API's wire contract (SPEC §11, `docs/API.md`): what travels
//! between the server (`orchestrator_rest`) and its clients (`ui_cli`,
//! `mcp_server`), so both sides use one declaration.
//!
//! - [`ErrorBody`]: `{"error": {"code", "message"}}`, the body of every error.
//! - [`Page`]: `{"items": [...], "next_cursor": ...}`, every list.
//! - [`workloads`]: a workload with its instance counts, scaling, log lines.
//! - [`cluster`]: the cluster's status, one node's view of the network.
//! - [`agents`]: approvals of agent calls, token revocations.
//! - [`trust`]: reputation, attestations, credit balance and history.
//! - [`volumes`]: the caller's volumes.
//! - [`audit`]: the audit log's entries and its check.
//! - [`health`]: the body of `/health`.
//! - [`info`]: the body of `GET /api/v1/info`, with the audience requests
//!   are signed for.
//! - [`routes`]: every route path, with segments and queries encoded.
//! - [`client`] (feature `client`): a blocking client that signs every
//!   request and answers with these types.
//!
//! Depends on `serde`, the domain types (`orchestrator_shared_types`,
//! `cluster_manager_interface`'s `Peer`) and, behind features, `utoipa`,
//! `schemars` and `ureq`; nothing of the server or of any backend. Clients stay tolerant of
//! newer servers: no type here denies unknown fields (request bodies the
//! server checks aside), and fields an older server may omit default.

pub mod agents;
pub mod audit;
#[cfg(feature = "client")]
pub mod client;
pub mod cluster;
pub mod health;
pub mod info;
pub mod routes;
pub mod secrets;
pub mod trust;
pub mod volumes;
pub mod workloads;

pub use agents::{Approval, ApprovalFilter, ApprovalResult, ApprovalState, Revocation};
pub use audit::{AuditEntry, Verification};
pub use cluster::{
    ClusterMember, ClusterStatus, GossipInfo, JoinAdmitted, JoinRequest, JoinRole, JoinTokenIssued,
    JoinTokenRequest, KeyRotation, KeyRotationLeftBehind, Leader, MemberRemoved, NetworkHealthView,
    NetworkStatus, Peer, Reachability,
};
pub use health::{ComponentReport, ComponentState, HealthReport, OverallStatus};
pub use info::NodeInfo;
pub use secrets::{PutSecret, SealedSecret};
pub use trust::{Attested, Balance, LedgerEntry, Reputation, TransferRequest};
pub use volumes::Volume;
pub use workloads::{LogEntry, ScaleRequest, Workload, WorkloadStatus};

use serde::{Deserialize, Serialize};

/// The error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "jsonschema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "jsonschema", derive(schemars::JsonSchema))]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `unsupported_media_type`, `too_many_requests`,
    /// `unavailable`, `internal`.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

impl ErrorBody {
    /// The body of an error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// A page of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items of this page.
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}
