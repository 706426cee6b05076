//! `PUT /agent/v1/directory`: the control plane hands this node the names
//! and owners of the cluster's instances (an
//! [`orchestrator_shared_types::net::Directory`]), which this node's DNS
//! server answers from and its overlay keeps owners apart by. Only the
//! control plane may call it (see [`crate::agent`]); a directory older than
//! the one in use changes nothing.

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use orchestrator_shared_types::net::Directory;
use serde::{Deserialize, Serialize};

use crate::agent::AgentState;
use crate::wire::WireError;

/// Path of the route.
pub const DIRECTORY_PATH: &str = "/agent/v1/directory";

/// The answer: the version this node holds now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryHeld {
    /// The version in use after the call.
    pub version: u64,
}

/// Where a node puts the directory it is handed.
#[async_trait]
pub trait DirectorySink: Send + Sync + 'static {
    /// Takes `directory` into use unless an equal or newer one is; the
    /// version in use after, or why it could not be used.
    async fn receive(&self, directory: Directory) -> Result<u64, String>;
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(WireError::new(code, message))).into_response()
}

/// The route's handler (signed by the control plane, see [`crate::agent`]).
pub(crate) async fn put(State(s): State<AgentState>, body: Bytes) -> Response {
    let Some(sink) = s.directory.clone() else {
        return error(
            StatusCode::CONFLICT,
            "operation",
            "this node has no use for a directory (no bridge network)".into(),
        );
    };
    let directory: Directory = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("not a directory: {e}"),
            )
        }
    };
    match sink.receive(directory).await {
        Ok(version) => Json(DirectoryHeld { version }).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "operation", e),
    }
}
