//! On a worker, every `/api/v1` request (but `/api/v1/network`, answered
//! locally) is forwarded to the control plane with its signature headers and
//! body untouched, so the control plane authenticates the caller itself and
//! answers exactly as if asked directly. The answer streams back as it comes
//! (`logs?follow=true` works through a worker).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use cluster_manager_interface::ClusterManager;
use futures::TryStreamExt;
use tracing::{debug, warn};

use super::find_control_plane;
use crate::rest::error::ApiError;

/// Largest request body forwarded.
const BODY_LIMIT: usize = 8 << 20;
/// Longest wait to connect to the control plane.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Headers passed on to the control plane.
const FORWARDED_REQUEST_HEADERS: [&str; 6] = [
    "x-auth-publickey",
    "x-auth-timestamp",
    "x-auth-signature",
    "content-type",
    "accept",
    "user-agent",
];

/// What the forwarding needs.
#[derive(Clone)]
pub struct ProxyState {
    /// Membership, to find the control plane.
    pub cluster: Arc<dyn ClusterManager>,
    /// HTTP client to it.
    pub http: reqwest::Client,
}

impl ProxyState {
    /// Forwarding through `cluster`'s control plane.
    pub fn new(cluster: Arc<dyn ClusterManager>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { cluster, http })
    }
}

/// Forwards one request to the control plane.
pub async fn forward(State(state): State<ProxyState>, req: Request) -> Response {
    match try_forward(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn try_forward(state: &ProxyState, req: Request) -> Result<Response, ApiError> {
    let nodes = state
        .cluster
        .list_nodes()
        .await
        .map_err(|e| ApiError::unavailable(format!("reading the membership: {e}")))?;
    let Some(cp) = find_control_plane(&nodes) else {
        return Err(ApiError::unavailable(
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
        .map_err(|_| ApiError::payload_too_large(BODY_LIMIT))?;
    let url = format!("http://{}{path}", cp.address);
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .map_err(|_| ApiError::bad_request(format!("method {} is not supported", parts.method)))?;
    let mut out = state.http.request(method, &url);
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(v) = parts.headers.get(name) {
            out = out.header(name, v.as_bytes());
        }
    }
    if !bytes.is_empty() {
        out = out.body(bytes);
    }
    let resp = out.send().await.map_err(|e| {
        warn!(control_plane = %cp.id.short(), url, error = %e, "forwarding to the control plane failed");
        ApiError::unavailable(format!(
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
        if matches!(
            name.as_str(),
            "content-type" | "content-length" | "retry-after"
        ) {
            if let Ok(n) = HeaderName::from_bytes(name.as_str().as_bytes()) {
                builder = builder.header(n, value.as_bytes());
            }
        }
    }
    let stream = resp.bytes_stream().map_err(std::io::Error::other);
    builder
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)
}
