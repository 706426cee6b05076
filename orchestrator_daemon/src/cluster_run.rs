//! Cluster mode of the daemon: where peers reach this node, joining the
//! gossip, the gossip series of `/metrics`, and a worker's router (its agent,
//! its own network view, forwarding to the control plane, health).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::any;
use axum::Router;
use cluster_manager::{ChitchatClusterManager, GossipConfig};
use cluster_manager_interface::{ClusterManager, ROLE_LABEL};
use container_runtime_interface::{ContainerRuntime, ContainerState};
use ed25519_dalek::SigningKey;
use observability::health::Health;
use observability::metrics::Metrics;
use orchestrator_shared_types::admission::ControlPlaneRef;
use orchestrator_shared_types::{Node, NodeId};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::config::ClusterSettings;
use super::gossip_metrics::GossipMetrics;
use crate::error::{Error, Result};
use node_agent::proxy::{self, ProxyState};
use orchestrator_rest::error::ApiError;
use orchestrator_rest::network::{GossipInfo, GossipInfoSource};
use peer_tls::PeerClients;

/// Resolves where peers reach this node: (gossip address, API address).
pub(crate) async fn advertised(
    cs: &ClusterSettings,
    api_addr: SocketAddr,
) -> Result<(SocketAddr, SocketAddr)> {
    let host = cs
        .advertise_host
        .clone()
        .unwrap_or_else(|| cs.gossip.listen_addr.ip().to_string());
    let port = cs.gossip.listen_addr.port();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| Error::Config(format!("resolving the advertise address {host:?}: {e}")))?
        .collect();
    let gossip = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| Error::Config(format!("advertise address {host:?} resolves to nothing")))?;
    if gossip.ip().is_unspecified() {
        return Err(Error::Config(format!(
            "advertise address {host:?} is unspecified; give the address peers can reach"
        )));
    }
    if api_addr.ip().is_loopback() && !gossip.ip().is_loopback() {
        warn!(%api_addr, advertise = %gossip.ip(), "the API listens on loopback only: other nodes cannot reach this node's agent");
    }
    Ok((gossip, SocketAddr::new(gossip.ip(), api_addr.port())))
}

/// Copies gossip counters, and how many containers this node runs, into
/// `/metrics` every second.
pub(super) async fn export_gossip_metrics(
    gossip: Arc<ChitchatClusterManager>,
    (runtime, node): (Arc<dyn ContainerRuntime>, NodeId),
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let g = match GossipMetrics::register(&metrics) {
        Ok(g) => g,
        Err(e) => {
            warn!(error = %e, "registering the gossip metrics");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {
                g.update(&gossip.stats());
                if let Ok(list) = runtime.list_containers(node).await {
                    let running = list.iter().filter(|c| c.state == ContainerState::Running).count();
                    g.local_containers.set(i64::try_from(running).unwrap_or(i64::MAX));
                }
            }
        }
    }
}

/// The event stream is the control plane's; a worker says where it is.
async fn events_elsewhere() -> ApiError {
    ApiError::unavailable(
        "this node is a worker: connect the event stream (/api/v1/events) to the control \
         plane (see `ui network status`)",
    )
}

/// Joins the cluster `cs` describes, publishing `local` (its address and
/// role label set here) signed with `key`.
pub(super) async fn start_gossip(
    cs: &ClusterSettings,
    key: &SigningKey,
    mut local: Node,
    api_addr: SocketAddr,
) -> Result<Arc<ChitchatClusterManager>> {
    let (gossip_advertise, api_advertise) = advertised(cs, api_addr).await?;
    match &cs.gossip.keyring {
        Some(keyring) => info!(primary = %keyring.primary(), keys = keyring.key_ids().len(),
            "gossip is sealed with the cluster key"),
        None => warn!(
            "gossip is NOT authenticated or encrypted: anyone who reaches the gossip port can \
             join the cluster and read its records. Give every node the same key file with \
             --gossip-key-file (one base64 32-byte key per line, mode 600)"
        ),
    }
    local.address = api_advertise.to_string();
    local
        .labels
        .insert(ROLE_LABEL.to_owned(), cs.role.as_str().to_owned());
    // A fresh generation at every start, so peers see a restart as one.
    let gcfg = GossipConfig {
        advertise_addr: gossip_advertise,
        generation: GossipConfig::new(cs.gossip.listen_addr, gossip_advertise).generation,
        ..cs.gossip.clone()
    };
    let gossip = ChitchatClusterManager::start(gcfg, key.clone(), local)
        .await
        .map_err(|source| Error::Gossip {
            addr: cs.gossip.listen_addr.to_string(),
            source,
        })?;
    info!(role = cs.role.as_str(), gossip = %gossip_advertise, api = %api_advertise,
        seeds = ?cs.gossip.seeds, "cluster mode");
    Ok(Arc::new(gossip))
}

/// A worker's router: `own` (its agent and network routes), every other
/// `/api/v1` route and `/mcp` forwarded to the control plane, health and
/// metrics.
pub(super) fn worker_router(
    own: Router,
    (cluster, peers): (Arc<dyn ClusterManager>, Arc<PeerClients>),
    health: &Arc<Health>,
    metrics: &Arc<Metrics>,
) -> Router {
    let proxy = ProxyState::new(cluster, peers);
    let forwarded = Router::new()
        .route("/api/v1/events", any(events_elsewhere))
        .route("/api/v1/{*rest}", any(proxy::forward))
        .route("/mcp", any(proxy::forward))
        .with_state(proxy);
    own.merge(forwarded)
        .merge(observability::health::health_routes(
            Arc::clone(health),
            Arc::clone(metrics),
        ))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(metrics),
            observability::http::track_http,
        ))
}

/// The gossip part of `/api/v1/network`: `g`'s settings and counters.
fn gossip_info(g: &ChitchatClusterManager) -> GossipInfo {
    let c = g.config();
    let s = g.stats();
    GossipInfo {
        cluster_id: c.cluster_id.clone(),
        listen_addr: c.listen_addr.to_string(),
        advertise_addr: c.advertise_addr.to_string(),
        seeds: c.seeds.clone(),
        gossip_interval_ms: u64::try_from(c.gossip_interval.as_millis()).unwrap_or(u64::MAX),
        phi_threshold: c.phi_threshold,
        dead_node_grace_seconds: c.dead_node_grace.as_secs(),
        generation: c.generation,
        rejected_records: s.rejected_records,
        bytes_sent: s.bytes_sent,
        bytes_received: s.bytes_received,
    }
}

/// Reads `gossip`'s settings and counters for `/api/v1/network`.
pub(super) fn gossip_info_source(gossip: &Arc<ChitchatClusterManager>) -> GossipInfoSource {
    let gossip = Arc::clone(gossip);
    Arc::new(move || gossip_info(&gossip))
}

/// What this control plane's join tokens carry: its key and addresses, and
/// the primary key of its gossip key file, read at every issue so a rotated
/// key is handed out. `None` (with a warning) without a key file.
pub(super) async fn admission_config(
    cs: &ClusterSettings,
    gossip: &Arc<ChitchatClusterManager>,
    network: Option<crate::cluster_identity::NodeNetwork>,
) -> Result<Option<orchestrator_admission::AdmissionConfig>> {
    let Some(path) = cs.gossip_key_file.clone() else {
        warn!("no gossip key file: join tokens cannot be issued");
        return Ok(None);
    };
    let local = gossip.local_node().await.map_err(|source| Error::Gossip {
        addr: cs.gossip.listen_addr.to_string(),
        source,
    })?;
    let control_plane = ControlPlaneRef {
        node_id: local.id,
        gossip_addr: gossip.config().advertise_addr.to_string(),
        api_addr: local.address,
    };
    Ok(Some(orchestrator_admission::AdmissionConfig {
        cluster_id: cs.gossip.cluster_id.clone(),
        control_planes: vec![control_plane],
        gossip_key: gossip_key_source(Some(path)),
        network: network.map(|n| orchestrator_admission::ClusterNetwork {
            cidr: n.cidr,
            own: n.subnet,
        }),
    }))
}

/// The primary key of the gossip key file `path`, read at every token
/// issued so a rotated key is handed out; empty (with a warning) when it
/// cannot be read or there is no file.
pub(crate) fn gossip_key_source(
    path: Option<std::path::PathBuf>,
) -> orchestrator_admission::GossipKeySource {
    Arc::new(move || {
        let Some(path) = &path else {
            warn!("no gossip key file: a join token carries no gossip key");
            return String::new();
        };
        match crate::gossip_keys::load(path) {
            Ok(keys) => keys
                .first()
                .map(|k| k.to_base64().to_string())
                .unwrap_or_default(),
            Err(e) => {
                warn!(error = %e, "reading the gossip key file for a join token");
                String::new()
            }
        }
    })
}

/// How often a worker looks up the leader whose term it obeys.
const TERM_LOOKUP: Duration = Duration::from_millis(500);

/// The leader whose term `terms` holds, with its address from `cluster`,
/// kept current for `GET /api/v1/network` until `cancel`.
pub(super) fn follow_term(
    terms: Arc<node_agent::term::TermGate>,
    cluster: Arc<dyn ClusterManager>,
    tasks: &tokio_util::task::TaskTracker,
    cancel: &CancellationToken,
) -> orchestrator_rest::network::LeaderSource {
    let (tx, rx) = tokio::sync::watch::channel(None);
    let cancel = cancel.child_token();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(TERM_LOOKUP);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let leader = match terms.current() {
                None => None,
                Some((term, node_id)) => {
                    let address = cluster
                        .get_node(&node_id)
                        .await
                        .ok()
                        .flatten()
                        .map(|n| n.address)
                        .unwrap_or_default();
                    Some(orchestrator_rest::network::Leader {
                        node_id,
                        address,
                        term: Some(term),
                    })
                }
            };
            tx.send_if_modified(|old| {
                let changed = *old != leader;
                *old = leader;
                changed
            });
        }
    });
    Arc::new(move || rx.borrow().clone())
}

/// The store of this node's gossip key file, re-read on SIGHUP until
/// `cancel`; `None` when gossip is not sealed.
pub(crate) fn gossip_key_store(
    cs: &ClusterSettings,
    tasks: &tokio_util::task::TaskTracker,
    cancel: &CancellationToken,
) -> Option<crate::key_store::KeyFileStore> {
    let (Some(path), Some(keyring)) = (&cs.gossip_key_file, &cs.gossip.keyring) else {
        return None;
    };
    tasks.spawn(crate::gossip_keys::reload_on_sighup(
        path.clone(),
        Arc::clone(keyring),
        cancel.child_token(),
    ));
    Some(crate::key_store::KeyFileStore::new(
        path.clone(),
        Arc::clone(keyring),
    ))
}
