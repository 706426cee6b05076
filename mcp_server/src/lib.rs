//! The MCP server through which AI agents drive the orchestrator (SPEC §12),
//! on the official Rust SDK (`rmcp`).
//!
//! - [`api`]: [`Api`], the one thing the tools act through — a signed call to
//!   the REST API as the user — so an agent can do exactly what its user can
//!   with `ui`, ownership rules included, and every answer is the API's.
//! - [`tools`]: [`OrchestratorMcp`], the `rmcp` server and its tools.
//! - [`context`]: resources (cluster status, each workload) and the
//!   `diagnose_workload` prompt.
//! - [`args`]: the tools' arguments (JSON Schemas from these types and the
//!   shared manifest type), checked before anything is sent.
//!
//! Transports: stdio (`ui mcp`, as the user). The streamable-HTTP transport
//! in the daemon, delegated agent tokens, the automation policy, approvals
//! and the audit log come next (issue 6).

pub mod api;
pub mod args;
pub mod context;
pub mod tools;

pub use api::{Api, ApiError};
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
