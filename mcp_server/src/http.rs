//! The streamable-HTTP transport, for the daemon to mount at `/mcp`. Each
//! HTTP request is a [`Caller`](crate::Caller) of its own: the tools read its
//! `Authorization` header (the agent token) from the request and the daemon's
//! [`Api`] forwards it, so every call is authenticated and judged by the
//! automation policy on its own, whatever session it belongs to.

use std::sync::{Arc, OnceLock};

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::tools::OrchestratorMcp;

/// The streamable-HTTP MCP service for mounting in an axum router (`Router::nest_service("/mcp", ...)`).
///
/// Clients speaking protocol 2026-07-28 are served statelessly, one HTTP
/// request per MCP request, with JSON answers; clients of the earlier
/// revisions get a session from the `initialize` handshake. `cancel` (a child
/// of the daemon's shutdown token) ends the sessions and their streams.
pub fn http_service(
    api: Arc<dyn Api>,
    cancel: CancellationToken,
) -> StreamableHttpService<OrchestratorMcp, LocalSessionManager> {
    // Built on the first MCP request, not when the daemon starts: the tool
    // router generates every tool's JSON schema, memory and code an idle
    // daemon never needs (BENCHMARKS.md, "Daemon resident memory").
    let server = OnceLock::new();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_json_response(true)
        .with_cancellation_token(cancel)
        // rmcp accepts only loopback `Host`s by default, against DNS
        // rebinding: a web page making the user's browser call a server that
        // trusts whoever can reach it. The daemon listens on real interfaces
        // for remote agents, and every call must carry an agent token in
        // `Authorization`, which a browser never adds on its own, so a
        // rebound page gets nothing; a loopback-only list would only lock
        // remote agents out.
        .disable_allowed_hosts();
    StreamableHttpService::new(
        move || {
            Ok(server
                .get_or_init(|| OrchestratorMcp::new(Arc::clone(&api)))
                .clone())
        },
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
