//! A follower control plane's API (`--store etcd`): every request it does
//! not answer itself is forwarded, as it came, to the elected leader.
//!
//! The follower answers only what is its own: `/health`, `/ready`,
//! `/metrics`, `GET /api/v1/info` and the network routes (which name the
//! leader). Everything else — signed API calls, MCP, the OpenAPI document —
//! goes to the leader with its method, path, query, headers and body
//! unchanged, and the leader's answer comes back as it was, streamed (so a
//! followed log keeps flowing). The follower verifies nothing itself and
//! adds no authority: the signature names the cluster (all control planes
//! share its audience), not the node, so the leader checks it, its replay
//! window and the caller's rights exactly as for a request sent to it
//! directly. A follower that forwarded a request twice would be refused the
//! second time by the leader's replay cache.
//!
//! A WebSocket upgrade (`/api/v1/events`) is forwarded too: opened at the
//! leader with the client's headers, then relayed both ways (`ws`).
//!
//! Control planes with gossip (a cluster with workers) forward over mutual
//! TLS, each proving its node key and checking the leader's: a join request
//! forwarded to the leader, and its answer with the gossip key, never cross
//! the network in clear. Without gossip (and for the event stream) the
//! forwarding is plain HTTP, as clients talk to the API.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use orchestrator_rest::error::ApiError;
use orchestrator_rest::network::Leader;
use orchestrator_shared_types::NodeId;
use peer_tls::PeerClients;
use tokio::sync::watch;
use tracing::debug;

mod ws;

/// How long connecting to the leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What the forwarding handler needs.
#[derive(Clone)]
struct Forwarding {
    leader: watch::Receiver<Option<Leader>>,
    /// This node: a request is never forwarded to itself.
    node: NodeId,
    http: reqwest::Client,
    /// With gossip: mutual TLS to the leader, as this node.
    peers: Option<Arc<PeerClients>>,
    /// Largest body forwarded (the API's own limit).
    body_limit: usize,
}

/// The router that forwards everything it gets to the leader `leader` names.
pub(crate) fn router(
    leader: watch::Receiver<Option<Leader>>,
    (node, peers): (NodeId, Option<Arc<PeerClients>>),
    body_limit: usize,
) -> Router {
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        // The leader's answers are relayed as they are, redirects included.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    Router::new().fallback(forward).with_state(Forwarding {
        leader,
        node,
        http,
        peers,
        body_limit,
    })
}

/// Headers that belong to one connection and are not relayed (RFC 9110 §7.6.1),
/// plus `host` (the leader's is its own) and `content-length` (recomputed).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn relayed(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !hop_by_hop(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

async fn forward(State(f): State<Forwarding>, req: Request) -> Response {
    let leader = f.leader.borrow().clone();
    let Some(leader) = leader else {
        return retry_later("no control plane leads at the moment (an election is under way)");
    };
    if leader.node_id == f.node {
        return retry_later("this control plane was just elected and is taking over");
    }
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    if parts.headers.contains_key(header::UPGRADE) {
        return ws::forward(parts, &leader, &path).await;
    }
    let body = match axum::body::to_bytes(body, f.body_limit).await {
        Ok(b) => b,
        Err(_) => return ApiError::payload_too_large(f.body_limit).into_response(),
    };
    let (http, url) = match &f.peers {
        None => (f.http.clone(), format!("http://{}{path}", leader.address)),
        Some(peers) => match peers.client(leader.node_id) {
            Ok(c) => (c, peer_tls::url(&leader.address, &path)),
            Err(e) => {
                return ApiError::internal(format!("a TLS client for the leader: {e}"))
                    .into_response()
            }
        },
    };
    debug!(%url, method = %parts.method, "forwarding to the leader");
    let sent = http
        .request(parts.method, &url)
        .headers(relayed(&parts.headers))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status();
            let headers = relayed(resp.headers());
            let mut out = Response::new(Body::from_stream(resp.bytes_stream()));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            out
        }
        Err(e) => ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "leader_unreachable",
            message: format!(
                "forwarding to the leader {} at {}: {e}",
                leader.node_id, leader.address
            ),
        }
        .into_response(),
    }
}

/// 503 with `Retry-After: 1`.
fn retry_later(why: &str) -> Response {
    let mut resp = ApiError::unavailable(format!("{why}; try again in a second")).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    resp
}
