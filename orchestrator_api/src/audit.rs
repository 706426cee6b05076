//! The audit log over HTTP: its entries (`GET /api/v1/audit`) and the check
//! of its hash chain (`GET /api/v1/audit/verify`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One audited call (as the log keeps it and `GET /api/v1/audit` lists it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When the call was answered.
    pub time: DateTime<Utc>,
    /// The caller's public key as sent (hex), if any.
    pub key: Option<String>,
    /// The agent acting for the caller (`X-Univrs-Agent`), if any.
    pub agent: Option<String>,
    /// `METHOD path`.
    pub action: String,
    /// The request body (truncated to 8 KiB).
    pub args: String,
    /// `allowed`, `refused`, `pending_approval`, or `approved` (run on approval).
    pub decision: String,
    /// The HTTP status answered.
    pub status: u16,
    /// Hash of the previous entry.
    pub prev: String,
    /// SHA-256 over `prev` and this entry's other fields.
    pub hash: String,
}

/// Result of checking the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verification {
    /// Whether every entry verifies.
    #[serde(default)]
    pub ok: bool,
    /// Entries checked (when ok).
    #[serde(default)]
    pub entries: u64,
    /// What is wrong (when not).
    #[serde(default)]
    pub error: Option<String>,
}
