//! AI agents: calls held for the user's approval, and token revocations.
//! (The automation policy is `orchestrator_shared_types::agent::AgentPolicy`.)

use std::fmt;

use chrono::{DateTime, Utc};
use orchestrator_shared_types::PublicKey;
use serde::{Deserialize, Serialize};

/// Where an approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for the user.
    Pending,
    /// Approved; the call is running.
    Executing,
    /// Approved and run; see the result.
    Approved,
    /// Denied; nothing ran.
    Denied,
    /// The daemon stopped while running it; not run again.
    Failed,
    /// Nobody decided within the approval TTL; never run.
    Expired,
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Executing => "executing",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Expired => "expired",
        })
    }
}

/// What the approved call answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalResult {
    /// HTTP status.
    pub status: u16,
    /// The answer's body (at most 64 KiB).
    pub body: String,
}

/// A call waiting for (or past) the user's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    /// Id (32 hex characters, ordered by creation).
    pub id: String,
    /// The user the agent acts for (hex key).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub user: PublicKey,
    /// The agent.
    pub agent: String,
    /// The MCP tool the call amounts to.
    pub tool: String,
    /// HTTP method of the held call.
    pub method: String,
    /// Path (with query) of the held call.
    pub path: String,
    /// Its body, as text.
    #[serde(default)]
    pub body: Option<String>,
    /// Its `Content-Type`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Where it stands.
    pub state: ApprovalState,
    /// When the agent asked.
    pub created_at: DateTime<Utc>,
    /// When the user decided.
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    /// What the call answered, once run.
    #[serde(default)]
    pub result: Option<ApprovalResult>,
}

/// A token revocation (the answer of `POST /api/v1/agent/tokens/{id}/revoke`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revocation {
    /// The token id.
    pub id: String,
    /// Who revoked it (hex key).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub revoked_by: PublicKey,
    /// Whether the revoker is an admin (then it applies to any user's token).
    pub admin: bool,
    /// When.
    pub revoked_at: DateTime<Utc>,
}

/// Which approvals `GET /api/v1/approvals` lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApprovalFilter {
    /// Those still waiting (the default).
    #[default]
    Pending,
    /// All of them.
    All,
}

impl ApprovalFilter {
    /// The value of the `state` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::All => "all",
        }
    }
}
