//! Reputation, attestations and mutual credit (SPEC §17): a node's
//! reputation as the caller sees it, what an accepted attestation says, the
//! caller's credit balance and the entries of its history.

use chrono::{DateTime, Utc};
use orchestrator_shared_types::{NodeId, PublicKey};
use serde::{Deserialize, Serialize};

/// A node's reputation as the caller sees it
/// (`GET /api/v1/nodes/{id}/reputation`). Every component and the composite
/// are 0–1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reputation {
    /// The node.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub node: NodeId,
    /// Its operator.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub operator: PublicKey,
    /// Heartbeats answered (U).
    #[serde(default)]
    pub uptime: f64,
    /// Instances that reached their desired state (R).
    #[serde(default)]
    pub reliability: f64,
    /// Resources delivered versus promised (H).
    #[serde(default)]
    pub honesty: f64,
    /// Time participating, logarithmic (A).
    #[serde(default)]
    pub age: f64,
    /// The trust of its operator through the operators the caller trusts (T̂).
    #[serde(default)]
    pub attestation_trust: f64,
    /// `C = U·R·H·(0.65 + 0.35·max(A, T̂))`.
    #[serde(default)]
    pub composite: f64,
    /// The active days A comes from.
    #[serde(default)]
    pub active_days: u32,
    /// Qualifying attestations of the node's operator, for the caller.
    #[serde(default)]
    pub qualifying_attestations: u32,
}

/// What an accepted attestation says (the answer of `POST /api/v1/attestations`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attested {
    /// The vouching operator (the caller).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub issuer: PublicKey,
    /// The operator vouched for.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub subject: PublicKey,
    /// Weight 0–1.
    pub weight: f64,
    /// Until when it counts.
    pub expires_at: DateTime<Utc>,
    /// Whether it was new (false: the same attestation was already recorded).
    #[serde(default)]
    pub new: bool,
}

/// A credit account (`GET /api/v1/credits/balance`, and the answer of a
/// transfer), in milli-units.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Balance {
    /// The account (hex key).
    pub account: String,
    /// Balance in milli-units (negative: owed).
    pub balance: i64,
    /// Set aside by open holds (pledges).
    pub held: i64,
    /// Balance minus holds.
    pub available: i64,
    /// Credit limit: `available` may not go below `-limit`.
    pub limit: i64,
    /// The nonce the next transfer should carry (at least).
    pub next_nonce: u64,
}

/// Body of `POST /api/v1/credits/transfer`: the request signature is the
/// payer's proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferRequest {
    /// The operator paid (hex key).
    pub to: String,
    /// Milli-units, more than zero.
    pub amount: i64,
    /// Above every nonce the payer used before.
    pub nonce: u64,
}

/// One entry of a credit account's history (`GET /api/v1/credits/history`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEntry {
    /// The entry's position in the ledger (the cursor for the next page).
    pub seq: u64,
    /// When it was applied.
    pub at: DateTime<Utc>,
    /// `transfer`, `hold`, `settle`, `release` or `set_limit`.
    pub kind: String,
    /// The other account (hex key or `commons`), when there is one.
    #[serde(default)]
    pub counterparty: Option<String>,
    /// How the account's balance changed, in milli-units.
    #[serde(default)]
    pub balance_delta: i64,
    /// How the account's holds changed, in milli-units.
    #[serde(default)]
    pub held_delta: i64,
    /// The transfer's reference, or the hold's id.
    #[serde(default)]
    pub reference: String,
}
