//! On a worker, every `/api/v1` request (but `/api/v1/network`, answered
//! locally) and every `/mcp` request is forwarded to the control plane with
//! its signature headers — or its agent token, and the agent's name — and
//! body untouched, so the control plane authenticates the caller itself,
//! holds an agent's call to its user's automation policy, and answers exactly
//! as if asked directly. It travels over mutual TLS ([`peer_tls`]) to the
//! pinned control plane only: the connection is made only if the node at
//! the control plane's address proves it holds that control plane's key, so
//! a member advertising that address receives nothing, and signatures and
//! agent tokens never cross the network in clear. The answer streams back as it comes
//! (`logs?follow=true` and MCP event streams work through a worker).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use cluster_manager_interface::ClusterManager;
use futures::TryStreamExt;
use tracing::{debug, warn};

use cluster_manager_interface::find_control_plane;
use peer_tls::PeerClients;
use signed_http::Rejection;

/// Largest request body forwarded.
const BODY_LIMIT: usize = 8 << 20;

/// Headers passed on to the control plane, besides every `mcp-*` header of
/// the MCP transport (session, protocol version, and in 2026-07-28 the
/// method, name and `mcp-param-*` routing headers). Dropping
/// `authorization` (an agent token) would only get the call refused;
/// dropping `x-univrs-agent` would turn an agent's signed call into its
/// user's own, out of reach of the automation policy — so both travel.
/// Since signing scheme v2 the agent's name is signed too, so dropping or
/// changing it would only get the call refused; the audience the request was
/// signed for is the cluster's, the same on this node and the control plane.
const FORWARDED_REQUEST_HEADERS: [&str; 10] = [
    "x-auth-publickey",
    "x-auth-timestamp",
    "x-auth-signature",
    "x-auth-audience",
    "authorization",
    orchestrator_shared_types::agent::HEADER_AGENT,
    "content-type",
    "accept",
    "user-agent",
    "last-event-id",
];

/// Headers of the control plane's answer passed back, besides `mcp-*`.
const FORWARDED_RESPONSE_HEADERS: [&str; 4] = [
    "content-type",
    "content-length",
    "retry-after",
    "www-authenticate",
];

/// Whether header `name` (lower case) travels with a forwarded request.
fn forwarded_request_header(name: &str) -> bool {
    FORWARDED_REQUEST_HEADERS.contains(&name) || name.starts_with("mcp-")
}

/// Whether header `name` (lower case) of the answer travels back.
fn forwarded_response_header(name: &str) -> bool {
    FORWARDED_RESPONSE_HEADERS.contains(&name) || name.starts_with("mcp-")
}

/// What the forwarding needs.
#[derive(Clone)]
pub struct ProxyState {
    /// Membership, to find the control plane.
    pub cluster: Arc<dyn ClusterManager>,
    /// Clients to peer nodes over mutual TLS, as this node.
    pub peers: Arc<PeerClients>,
}

impl ProxyState {
    /// Forwarding through `cluster`'s control plane, connecting as `peers`.
    pub fn new(cluster: Arc<dyn ClusterManager>, peers: Arc<PeerClients>) -> Self {
        Self { cluster, peers }
    }
}

/// Forwards one request to the control plane.
pub async fn forward(State(state): State<ProxyState>, req: Request) -> Response {
    match try_forward(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn try_forward(state: &ProxyState, req: Request) -> Result<Response, Rejection> {
    let nodes = state
        .cluster
        .list_nodes()
        .await
        .map_err(|e| Rejection::unavailable(format!("reading the membership: {e}")))?;
    // Only a pinned control plane, when keys are pinned: a member's label
    // never makes it one.
    let pinned = state.cluster.pinned_control_planes();
    let Some(cp) = find_control_plane(&nodes, &pinned) else {
        return Err(Rejection::unavailable(
            "no control plane is reachable from this node; the request was not forwarded \
             (it changes nothing) — retry, or ask the control plane directly",
        ));
    };
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| Rejection::payload_too_large(BODY_LIMIT))?;
    let url = peer_tls::url(&cp.address, &path);
    let http = state.peers.client(cp.id).map_err(Rejection::internal)?;
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .map_err(|_| Rejection::bad_request(format!("method {} is not supported", parts.method)))?;
    let mut out = http.request(method, &url);
    for (name, value) in &parts.headers {
        if forwarded_request_header(name.as_str()) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    if !bytes.is_empty() {
        out = out.body(bytes);
    }
    let resp = out.send().await.map_err(|e| {
        warn!(control_plane = %cp.id.short(), url, error = %e, "forwarding to the control plane failed");
        Rejection::unavailable(format!(
            "the control plane {} at {} cannot be reached: the request was not forwarded \
             or its answer was lost; retry",
            cp.id.short(),
            cp.address
        ))
    })?;
    debug!(url, status = %resp.status(), "forwarded to the control plane");
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut builder = Response::builder().status(status);
    for (name, value) in resp.headers() {
        if forwarded_response_header(name.as_str()) {
            if let Ok(n) = HeaderName::from_bytes(name.as_str().as_bytes()) {
                builder = builder.header(n, value.as_bytes());
            }
        }
    }
    let stream = resp.bytes_stream().map_err(std::io::Error::other);
    builder
        .body(Body::from_stream(stream))
        .map_err(Rejection::internal)
}
