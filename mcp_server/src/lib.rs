//! The MCP server through which AI agents drive the orchestrator (SPEC §12),
//! on the official Rust SDK (`rmcp`).
//!
//! - [`api`]: [`Api`], the one thing the tools act through — a call to the
//!   REST API for a [`Caller`] — so an agent can do exactly what its user
//!   (and, over HTTP, its token and the user's automation policy) allows,
//!   ownership rules included, and every answer is the API's.
//! - [`tools`]: [`OrchestratorMcp`], the `rmcp` server and its tools.
//! - [`context`]: resources (cluster status, each workload) and the
//!   `diagnose_workload` prompt.
//! - [`args`]: the tools' arguments (JSON Schemas from these types and the
//!   shared manifest type), checked before anything is sent; a bad one is a
//!   tool error naming it.
//! - [`approval`]: answers of calls held for the user's approval (HTTP 202),
//!   which tools report as results, not errors.
//! - [`http`]: [`http_service`], the streamable-HTTP transport.
//!
//! Transports:
//! - stdio ([`serve_stdio`], `ui mcp`): the [`Caller`] is always the default
//!   one; `ui`'s [`Api`] signs every call with the user's key and names the
//!   agent (`X-Univrs-Agent`).
//! - streamable HTTP ([`http_service`], mounted by the daemon at `/mcp`): the
//!   [`Caller`] of each tool call, resource read or prompt is taken from its
//!   own HTTP request (`rmcp` puts the request's `http::request::Parts` in
//!   the MCP request's extensions) and carries its `Authorization: Bearer
//!   <agent token>`, which the daemon's [`Api`] forwards on the REST call.
//!   The daemon enforces the token, the automation policy and approvals, and
//!   audits the call (docs/AGENTS.md).

pub mod api;
pub mod approval;
pub mod args;
pub mod context;
pub mod http;
pub mod tools;

pub use self::http::http_service;
pub use api::{Api, ApiError, Caller};
pub use tools::OrchestratorMcp;

/// Serves the tools over stdin/stdout until the client hangs up. Nothing
/// else may write to stdout meanwhile (logs go to stderr).
pub async fn serve_stdio(api: std::sync::Arc<dyn Api>) -> Result<(), ServeError> {
    use rmcp::ServiceExt;
    let running = OrchestratorMcp::new(api)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Start(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| ServeError::Stopped(e.to_string()))?;
    Ok(())
}

/// Why serving ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The session could not start (the client's `initialize` failed).
    #[error("starting the MCP session: {0}")]
    Start(String),
    /// The session ended with an error.
    #[error("serving MCP: {0}")]
    Stopped(String),
}
