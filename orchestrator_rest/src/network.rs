//! `/api/v1/network`: this node's own view of the cluster — its gossip
//! settings and counters, the peers its failure detector knows, and which of
//! them it can reach. Answered locally on every node (a worker does not
//! forward these), so an operator can compare what each node sees. These
//! routes are for users in person: no MCP tool maps to them, so an agent's
//! call (token or `X-Univrs-Agent`) is refused here as on every route
//! outside its tools, whatever its token's scope or state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use cluster_manager_interface::{ClusterManager, Peer};
use peer_tls::PeerClients;

use crate::auth::{self, AgentCall, AuthGate};
use crate::error::{ApiError, ApiResult};
use crate::openapi::CommonErrors;
use crate::workloads::query;
use crate::{paginate, Page, PageParams};
use cluster_manager_interface::find_control_plane;
use orchestrator_api::routes;

/// What the network routes need.
#[derive(Clone)]
pub struct NetworkState {
    /// Membership.
    pub cluster: Arc<dyn ClusterManager>,
    /// This node's gossip settings and counters, when the node gossips.
    pub gossip: Option<GossipInfoSource>,
    /// This node's role (`control-plane`, `worker`, or `standalone`).
    pub role: String,
    /// Clients to the peers over mutual TLS, for reachability probes (none
    /// on a standalone node, which has no peers).
    pub peers: Option<Arc<PeerClients>>,
    /// The elected leader among several control planes (`--store etcd`);
    /// `None` with one control plane.
    pub leader: Option<LeaderSource>,
}

/// Reads the control plane elected leader, `None` while none is (the
/// daemon builds it from its election).
pub type LeaderSource = Arc<dyn Fn() -> Option<Leader> + Send + Sync>;

/// Reads this node's gossip settings and counters (the daemon builds it from
/// its gossip manager).
pub type GossipInfoSource = Arc<dyn Fn() -> GossipInfo + Send + Sync>;

pub use orchestrator_api::{GossipInfo, Leader, NetworkStatus, Reachability};

fn to_api(e: cluster_manager_interface::ClusterError) -> ApiError {
    ApiError::unavailable(format!("reading the membership: {e}"))
}

/// `GET /api/v1/network` (cluster mode only: 404 on a standalone node).
#[utoipa::path(get, path = "/api/v1/network", tag = "network",
    responses((status = 200, body = NetworkStatus), CommonErrors))]
pub async fn status(State(s): State<NetworkState>) -> ApiResult<Json<NetworkStatus>> {
    let local = s.cluster.local_node().await.map_err(to_api)?;
    let nodes = s.cluster.list_nodes().await.map_err(to_api)?;
    let peers = s.cluster.peers().await.map_err(to_api)?;
    let cp = find_control_plane(&nodes, &s.cluster.pinned_control_planes());
    let live = peers.iter().filter(|p| p.live).count() as u64;
    Ok(Json(NetworkStatus {
        node_id: local.id,
        role: s.role.clone(),
        control_plane: cp.map(|n| n.id),
        control_plane_address: cp.map(|n| n.address.clone()),
        peers_live: live,
        peers_dead: peers.len() as u64 - live,
        gossip: s.gossip.as_ref().map(|read| read()),
        leader: s.leader.as_ref().and_then(|read| read()),
    }))
}

/// `GET /api/v1/network/peers`: every peer this node knows, live or dead.
#[utoipa::path(get, path = "/api/v1/network/peers", tag = "network", params(PageParams),
    responses((status = 200, body = Page<Peer>), CommonErrors))]
pub async fn peers(
    State(s): State<NetworkState>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<Page<Peer>>> {
    let page = query(q)?;
    let mut peers = s.cluster.peers().await.map_err(to_api)?;
    peers.sort_by_key(|p| p.node_id.to_string());
    Ok(Json(paginate(peers, &page, |p| p.node_id.to_string())?))
}

/// How long a reachability probe waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /api/v1/network/discover`: probes every known peer's `/health`.
#[utoipa::path(get, path = "/api/v1/network/discover", tag = "network",
    responses((status = 200, body = Page<Reachability>), CommonErrors))]
pub async fn discover(State(s): State<NetworkState>) -> ApiResult<Json<Page<Reachability>>> {
    let mut peers = s.cluster.peers().await.map_err(to_api)?;
    peers.sort_by_key(|p| p.node_id.to_string());
    let clients = s.peers.clone();
    let probes = peers.into_iter().map(|peer| {
        let clients = clients.clone();
        async move {
            let started = Instant::now();
            // Over mutual TLS: reachable means the node at that address
            // proved it is this peer.
            let url = peer_tls::url(&peer.api_addr, "/health");
            let result = match clients.as_deref().map(|c| c.client(peer.node_id)) {
                Some(Ok(http)) => http
                    .get(&url)
                    .timeout(PROBE_TIMEOUT)
                    .send()
                    .await
                    .map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("this node has no peer clients".to_owned()),
            };
            let (reachable, latency_ms, error) = match result {
                Ok(r) if r.status().is_success() => {
                    (true, Some(started.elapsed().as_secs_f64() * 1e3), None)
                }
                Ok(r) => (
                    false,
                    None,
                    Some(format!("/health answered {}", r.status())),
                ),
                Err(e) => (false, None, Some(e)),
            };
            Reachability {
                peer,
                reachable,
                latency_ms,
                error,
            }
        }
    });
    Ok(Json(Page {
        items: futures::future::join_all(probes).await,
        next_cursor: None,
    }))
}

/// Refuses agents' calls: the network routes are no MCP tool's.
async fn users_only(req: Request, next: Next) -> ApiResult<Response> {
    if req.extensions().get::<AgentCall>().is_some() {
        return Err(ApiError::forbidden(format!(
            "agents may only make the calls of MCP tools; GET {} is for the user in person",
            req.uri().path()
        )));
    }
    Ok(next.run(req).await)
}

/// The network routes, authenticated by `gate`, for users in person.
pub fn router(state: NetworkState, gate: AuthGate) -> Router {
    Router::new()
        .route(routes::NETWORK, get(status))
        .route(routes::NETWORK_PEERS, get(peers))
        .route(routes::NETWORK_DISCOVER, get(discover))
        .route_layer(axum::middleware::from_fn(users_only))
        .route_layer(auth::layer(&gate))
        .with_state(state)
}
