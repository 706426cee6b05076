//! `POST /agent/v1/gossip-keys`: the control plane changes this node's
//! gossip keys (the rotation after a member's removal, Serf-style: `install`
//! a new key, `use` it to seal, `remove` the old one). The node persists the
//! change to its key file before it answers, so a restart comes up with the
//! keys it acknowledged.
//!
//! Only an install carries a key (a secret: never logged, never in an
//! error); `use` and `remove` name a key by its public id. Every change is
//! idempotent, so the control plane may retry it.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::agent::AgentState;
use crate::wire::WireError;

/// Path of the route, under [`AGENT_PREFIX`](crate::wire::AGENT_PREFIX).
pub const GOSSIP_KEYS_PATH: &str = "/agent/v1/gossip-keys";

/// One change of a node's gossip keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum GossipKeyChange {
    /// Install `key` (standard base64) to open packets; nothing if present.
    Install {
        /// The key (a secret).
        key: String,
    },
    /// Seal with the installed key `key_id` from now on.
    Use {
        /// The key's id (8 hex digits).
        key_id: String,
    },
    /// Drop the key `key_id` (not the primary); nothing if absent.
    Remove {
        /// The key's id (8 hex digits).
        key_id: String,
    },
}

impl GossipKeyChange {
    /// The operation's name, for logs.
    pub fn op(&self) -> &'static str {
        match self {
            Self::Install { .. } => "install",
            Self::Use { .. } => "use",
            Self::Remove { .. } => "remove",
        }
    }
}

impl std::fmt::Debug for GossipKeyChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Install { .. } => f.write_str("Install { key: <secret> }"),
            Self::Use { key_id } => write!(f, "Use {{ key_id: {key_id} }}"),
            Self::Remove { key_id } => write!(f, "Remove {{ key_id: {key_id} }}"),
        }
    }
}

/// A node's gossip keys after a change, by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipKeyIds {
    /// The key that seals.
    pub primary: String,
    /// Every installed key, the primary first.
    pub keys: Vec<String>,
}

/// Why a change was not made (its message never quotes a key).
#[derive(Debug, thiserror::Error)]
pub enum KeyChangeError {
    /// The change is not possible: not a key, an unknown key id, the primary.
    #[error("{0}")]
    Refused(String),
    /// The key file could not be read or written; nothing changed.
    #[error("{0}")]
    Storage(String),
}

/// A node's gossip keys: its key file and the keyring its gossip uses.
#[async_trait]
pub trait GossipKeyStore: Send + Sync + 'static {
    /// Applies `change`, persisted first, then in use; the keys after it.
    async fn apply(&self, change: &GossipKeyChange) -> Result<GossipKeyIds, KeyChangeError>;
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(WireError::new(code, message))).into_response()
}

/// The route's handler (signed by the control plane, see [`crate::agent`]).
pub(crate) async fn change(State(s): State<AgentState>, body: Bytes) -> Response {
    let Some(store) = s.gossip_keys.as_ref().map(Arc::clone) else {
        return error(
            StatusCode::CONFLICT,
            "operation",
            "gossip is not sealed with a key file on this node".into(),
        );
    };
    // Never echo the body: it may hold a key.
    let change: GossipKeyChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "not a gossip key change".into(),
            )
        }
    };
    match store.apply(&change).await {
        Ok(ids) => {
            info!(op = change.op(), primary = %ids.primary, keys = ids.keys.len(),
                "gossip keys changed by the control plane");
            Json(ids).into_response()
        }
        Err(e @ KeyChangeError::Refused(_)) => {
            warn!(op = change.op(), error = %e, "gossip key change refused");
            error(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
        }
        Err(e @ KeyChangeError::Storage(_)) => {
            warn!(op = change.op(), error = %e, "gossip key change not stored");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "operation",
                e.to_string(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_travel_as_tagged_json_and_never_show_a_key_in_debug() {
        let install = GossipKeyChange::Install {
            key: "c2VjcmV0".into(),
        };
        let json = serde_json::to_value(&install).unwrap_or_default();
        assert_eq!(json["op"], "install");
        assert_eq!(json["key"], "c2VjcmV0");
        assert!(!format!("{install:?}").contains("c2VjcmV0"));
        let back: Result<GossipKeyChange, _> =
            serde_json::from_str(r#"{"op":"remove","key_id":"0badcafe"}"#);
        assert!(matches!(back, Ok(GossipKeyChange::Remove { ref key_id }) if key_id == "0badcafe"));
        assert!(serde_json::from_str::<GossipKeyChange>(r#"{"op":"drop"}"#).is_err());
    }
}
