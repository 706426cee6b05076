//! [`Api`]: how the tools reach the orchestrator.

use async_trait::async_trait;
use serde_json::Value;

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with an error (its `{error: {code, message}}`).
    #[error("{message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code (`bad_request`, `not_found`, …), when there was one.
        code: Option<String>,
        /// The API's message (it names the bad field).
        message: String,
    },
    /// The daemon could not be reached or the answer was unreadable.
    #[error("cannot reach the orchestrator daemon: {0}")]
    Unreachable(String),
}

/// A signed call to the REST API (docs/API.md) as the user.
#[async_trait]
pub trait Api: Send + Sync + 'static {
    /// Sends `method path` (path with its query) with an optional JSON body;
    /// the answer's body as text.
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, ApiError>;
}
