//! Several control planes sharing one etcd store (`--store etcd`), one of
//! which leads (feature `etcd`).
//!
//! Every such daemon serves the API on its address from its start. While
//! it follows, it forwards every request it does not answer itself to the
//! leader (`forward`), and campaigns in etcd's election (a lease plus a
//! campaign, [`EtcdStore::campaign`]). When it wins it starts the
//! orchestrator — reconciler, scheduler, trust and credit writers, the full
//! API — over the store *fenced* by its leadership: every write it makes is
//! conditional on its leader key still being held at its revision, so once
//! another leads, its late writes fail ([`EtcdStore::set_fence`]).
//!
//! It stops acting when its leadership is lost: the lease could not be
//! renewed and may expire (the election's `lost` fires before it does), or
//! the daemon stops (it resigns, so another takes over at once). Then it
//! cancels everything it ran as the leader, serves as a follower again and
//! campaigns anew: it rejoins as a follower without a restart.
//!
//! The audit log lives in the store too (`AuditLog::in_store`): one
//! hash chain for the cluster, reopened by each new leader.
//!
//! The cluster's identity — the audience every signed request names — is
//! written once in the store by the first control plane to start, so a
//! request signed for the cluster is good at every control plane, and one
//! signed for another cluster at none.
//!
//! Without gossip, the instances run on the leader's own node: after a
//! failover the new leader places them on its node, as it does for any node
//! it does not see. With gossip (`--gossip-addr`), the control planes form
//! one cluster with workers, and only the leader drives the nodes, with
//! calls that carry its term (`cluster`).

mod cluster;
mod plane;
mod routing;

use routing::{follow_leader, follower_router, serve, set, Current};

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use cluster_manager::mock::MockClusterManager;
use cluster_manager_interface::ClusterManager;
use container_runtime_interface::ContainerRuntime;
use observability::health::Health;
use orchestrator_audit::AuditLog;
use orchestrator_rest::info;
use orchestrator_rest::network::{self, Leader, NetworkState};
use orchestrator_shared_types::{Node, NodeId};
use state_store_interface::{EtcdConfig, EtcdStore, StateStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::{ClusterSettings, DaemonConfig, EtcdSettings};
use crate::control::{auth_gate, node_info, start_control, ControlCluster, Parts};
use crate::error::{Error, Result};
use crate::lifecycle::spawn_control_tasks;
use crate::open::{open_metrics, open_runtime_for, release_on_stop};
use crate::run::{Daemon, EVENT_HUB_CAPACITY};

/// The record kind and key of the cluster's identity in the store.
pub(crate) const IDENTITY: (&str, &str) = ("cluster", "id");
/// The record kind and key of the credit ledger's authority key.
pub(crate) const LEDGER_KEY: (&str, &str) = ("cluster", "ledger-key");
/// The role of such a daemon in `GET /api/v1/network`.
const ROLE: &str = "control-plane";
/// Longest wait for a term's reconciler to stop before the next campaign.
const WIND_DOWN: Duration = Duration::from_secs(5);
/// How long to wait before campaigning again after etcd failed.
const RETRY: Duration = Duration::from_secs(1);

/// What a term of leadership needs from the daemon.
struct Term {
    config: DaemonConfig,
    parts: Parts,
    store: Arc<EtcdStore>,
    runtime: Arc<dyn ContainerRuntime>,
    cluster: Arc<dyn ClusterManager>,
    /// The routes this daemon always answers itself (info, network).
    own: Router,
    /// `/health`, `/ready`, `/metrics` (the leader's full API has its own).
    health_routes: Router,
    cluster_id: String,
    /// The credit ledger's authority, the same for every leader.
    ledger_key: ed25519_dalek::SigningKey,
    current: Current,
    health: Arc<Health>,
    tasks: TaskTracker,
    /// What the daemon says in the election: its id and API address.
    candidacy: Vec<u8>,
    leader: watch::Receiver<Option<Leader>>,
    node: NodeId,
    /// With gossip: the peer clients followers forward through.
    peers: Option<Arc<peer_tls::PeerClients>>,
    /// With gossip: what the leader drives the nodes with.
    workers: Option<cluster::Workers>,
}

/// Starts a control plane over the etcd store `etcd` names: the API on
/// `listener` at once, the election and, while it leads, the orchestrator;
/// with `cs` (gossip), as one of the control planes of a cluster with workers.
pub(crate) async fn start(
    config: &DaemonConfig,
    etcd: &EtcdSettings,
    cs: Option<&ClusterSettings>,
    (key, mut local): (ed25519_dalek::SigningKey, Node),
    listener: TcpListener,
) -> Result<Daemon> {
    let api_addr = listener.local_addr().map_err(Error::LocalAddr)?;
    let store = EtcdStore::connect_with(EtcdConfig::new(&etcd.endpoints, &etcd.prefix))
        .await
        .map_err(Error::Store)?;
    store.initialize().await.map_err(Error::Store)?;
    let store = Arc::new(store);
    let fresh = format!("{:032x}", rand::random::<u128>());
    let cluster_id = store
        .record_once(IDENTITY.0, IDENTITY.1, &fresh)
        .await
        .map_err(Error::Store)?;
    let ledger_key = ledger_key(&store).await?;
    info!(cluster = %cluster_id, endpoints = %etcd.endpoints.join(","), prefix = %etcd.prefix,
        "state store: etcd; this control plane campaigns to lead");
    let joined = match cs {
        Some(cs) => Some(
            cluster::settle(
                &store,
                cs,
                (&config.data_dir, &key),
                &cluster_id,
                (api_addr, etcd.advertise_api),
            )
            .await?,
        ),
        None => None,
    };
    let advertised = match &joined {
        Some(j) => j.me.api_addr.clone(),
        None => advertised(etcd, api_addr)?.to_string(),
    };
    let (config, overlay) = match &joined {
        Some(j) => crate::overlay::configure(config, &j.cs, &j.settled, &key).await?,
        None => (config.clone(), None),
    };
    let config = &config;

    let health = Arc::new(Health::new());
    for c in ["store", "reconciler", "runtime", "cluster"] {
        health.set_starting(c);
    }
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let metrics = open_metrics()?;
    let (runtime, youki) = open_runtime_for(config).await?;
    release_on_stop(&tasks, &cancel, youki);
    let node = local.id;
    let info = node_info(Some(cluster_id.clone()), &local);
    info!(audience = %info.audience, "requests must be signed for this audience (GET /api/v1/info)");
    let parts = Parts {
        key: key.clone(),
        gate: auth_gate(config, &key, &info.audience, &metrics),
        health: Arc::clone(&health),
        metrics: Arc::clone(&metrics),
        events: observability::events::EventHub::new(EVENT_HUB_CAPACITY),
    };
    let names = Arc::new(orchestrator_dns::NameTable::new());
    let (plane, cluster) = match joined {
        Some(joined) => {
            let p = plane::Plane::start(
                joined,
                plane::Inputs {
                    config,
                    key: &key,
                    local,
                    api_addr,
                    runtime: Arc::clone(&runtime),
                    names: Arc::clone(&names),
                    overlay: overlay.clone(),
                    audience: Arc::from(info.audience.as_str()),
                    metrics: Arc::clone(&metrics),
                    store: Arc::clone(&store) as Arc<dyn StateStore>,
                },
                &tasks,
                &cancel,
            )
            .await?;
            let cluster = Arc::clone(&p.gossip) as Arc<dyn ClusterManager>;
            (Some(p), cluster)
        }
        None => {
            local.address = advertised.clone();
            let cluster: Arc<dyn ClusterManager> = Arc::new(MockClusterManager::new(local));
            (None, cluster)
        }
    };

    let leader = follow_leader(
        store.observe_leader().await.map_err(Error::Store)?,
        &tasks,
        &cancel,
    );
    let source = leader.clone();
    let mut own = network::router(
        NetworkState {
            cluster: Arc::clone(&cluster),
            gossip: plane
                .as_ref()
                .map(|p| crate::cluster_run::gossip_info_source(&p.gossip)),
            role: ROLE.to_owned(),
            peers: plane.as_ref().map(|p| Arc::clone(&p.peers)),
            leader: Some(Arc::new(move || source.borrow().clone())),
        },
        parts.gate.clone(),
    )
    .merge(info::router(info));
    if let Some(p) = &plane {
        own = own.merge(p.agent.clone());
    }
    let peers = plane.as_ref().map(|p| Arc::clone(&p.peers));
    let health_routes = observability::health::health_routes(Arc::clone(&health), metrics);
    let current: Current = Arc::new(RwLock::new(follower_router(
        &own,
        &health_routes,
        (&leader, peers.clone()),
        node,
        config,
    )));

    match &plane {
        // The names follow the store on every control plane; the leader
        // pushes them to the nodes.
        Some(_) => {
            tasks.spawn(orchestrator_dns::follow_store(
                Arc::clone(&store) as Arc<dyn StateStore>,
                Arc::clone(&names),
                cancel.child_token(),
            ));
            crate::dns::start(
                config,
                (Arc::clone(&names), None),
                (Arc::clone(&runtime), node),
                &tasks,
                &cancel,
            )
            .await;
        }
        None => {
            crate::dns::start(
                config,
                (names, Some(Arc::clone(&store) as Arc<dyn StateStore>)),
                (Arc::clone(&runtime), node),
                &tasks,
                &cancel,
            )
            .await;
        }
    }
    let candidacy = serde_json::to_vec(&Leader {
        node_id: node,
        address: advertised,
        term: None,
    })
    .map_err(|e| Error::Config(format!("encoding the candidacy: {e}")))?;
    let (gossip, tls, workers) = match plane {
        Some(p) => (Some(p.gossip), Some(p.tls), Some(p.workers)),
        None => (None, None, None),
    };
    let term = Term {
        config: config.clone(),
        parts,
        store,
        runtime,
        cluster,
        own,
        health_routes,
        cluster_id,
        ledger_key,
        current: Arc::clone(&current),
        health: Arc::clone(&health),
        tasks: tasks.clone(),
        candidacy,
        leader,
        node,
        peers,
        workers,
    };
    for c in ["store", "runtime", "cluster"] {
        health.set_ok(c);
    }
    // A follower serves (it forwards): ready from the start.
    health.set_ok("reconciler");
    health.set_ready(true);
    tasks.spawn(campaign_forever(term, etcd.lease_ttl, cancel.child_token()));
    serve(&tasks, (listener, tls), current, &cancel);
    Ok(Daemon::finish(
        None,
        api_addr,
        cancel,
        tasks,
        health,
        (gossip, None, overlay),
    ))
}

/// The credit ledger's authority key, made by the first control plane to
/// start and kept in etcd, so that every leader signs the ledger's control
/// entries (limits, holds) with the one key the ledger replays against.
/// Whoever can read it could sign such entries, but only writing to etcd
/// makes them count, and a writer of etcd holds the whole cluster state
/// already: etcd must be reachable by the control planes only (README).
async fn ledger_key(store: &EtcdStore) -> Result<ed25519_dalek::SigningKey> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    let stored = store
        .record_once(LEDGER_KEY.0, LEDGER_KEY.1, &fresh)
        .await
        .map_err(Error::Store)?;
    let bytes: [u8; 32] = hex::decode(stored.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "the credit ledger key in etcd ({} {}) is not 64 hex characters",
                LEDGER_KEY.0, LEDGER_KEY.1
            ))
        })?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&bytes))
}

/// The address the other control planes reach this one's API at.
fn advertised(etcd: &EtcdSettings, bound: SocketAddr) -> Result<SocketAddr> {
    match etcd.advertise_api {
        Some(a) => Ok(a),
        None if bound.ip().is_unspecified() => Err(Error::Config(format!(
            "the API binds {bound}, which the other control planes cannot dial: say where they \
             reach it with --advertise-api HOST:PORT"
        ))),
        None => Ok(bound),
    }
}

/// Campaigns, leads while elected, follows again when the lead is lost;
/// until `cancel`.
async fn campaign_forever(t: Term, ttl: Duration, cancel: CancellationToken) {
    loop {
        let won = tokio::select! {
            () = cancel.cancelled() => return,
            won = t.store.campaign(t.candidacy.clone(), ttl) => won,
        };
        let leadership = match won {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "campaigning to lead failed; trying again");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(RETRY) => continue,
                }
            }
        };
        // From here every write is conditional on this leadership.
        t.store.set_fence(Some(leadership.fence()));
        let lost = leadership.lost();
        let acting = cancel.child_token();
        let led = tokio::select! {
            () = lost.cancelled() => Err("the lease was lost while starting".to_owned()),
            started = lead(&t, term_of(&leadership), &acting) => started,
        };
        let (orch, routing) = match led {
            Ok((orch, routing)) => {
                info!(node = %t.node, lease_ttl_ms = leadership.ttl().as_millis() as u64,
                    "this control plane leads");
                tokio::select! {
                    () = lost.cancelled() => {}
                    () = cancel.cancelled() => {}
                }
                (Some(orch), routing)
            }
            Err(e) => {
                error!(error = %e, "starting to lead failed; stepping down");
                (None, None)
            }
        };
        // Requests go to the leader from now on, then what led stops.
        set(
            &t.current,
            follower_router(
                &t.own,
                &t.health_routes,
                (&t.leader, t.peers.clone()),
                t.node,
                &t.config,
            ),
        );
        acting.cancel();
        // The reconciler lets its passes in flight finish (their writes are
        // fenced): wait for it, so that a next term never runs beside it.
        if let Some(orch) = orch {
            let until = tokio::time::Instant::now() + WIND_DOWN;
            while !orch.is_finished() && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if !orch.is_finished() {
                warn!("the last term's reconciler is still stopping");
            }
        }
        if let Some(routing) = routing {
            routing.shutdown().await;
        }
        if lost.is_cancelled() && !cancel.is_cancelled() {
            warn!("this control plane lost its lease and stopped acting; it follows again");
        }
        if cancel.is_cancelled() || !lost.is_cancelled() {
            // Stopping, or stepping down: hand over at once.
            leadership.resign().await;
        }
        if cancel.is_cancelled() {
            return;
        }
    }
}

/// The term of `leadership` that agent calls carry: its fence revision.
fn term_of(leadership: &state_store_interface::Leadership) -> u64 {
    u64::try_from(leadership.fence().revision).unwrap_or(0)
}

/// What a term runs: the orchestrator, and with workers the routing runtime.
type Led = (
    Arc<orchestrator_core::Orchestrator>,
    Option<Arc<node_agent::RoutingRuntime>>,
);

/// Starts the orchestrator over the fenced store and serves its API; with
/// workers, drives the nodes with calls that carry `term`.
async fn lead(t: &Term, term: u64, acting: &CancellationToken) -> std::result::Result<Led, String> {
    let store = Arc::clone(&t.store) as Arc<dyn StateStore>;
    // The cluster's one audit log, in the store: each term re-reads its
    // tail (the last leader may have appended), and the fence keeps a
    // deposed leader from extending it.
    let audit = AuditLog::in_store(Arc::clone(&store))
        .await
        .map(Arc::new)
        .map_err(|e| format!("opening the audit log in etcd: {e}"))?;
    let driving = match &t.workers {
        Some(w) => Some(
            w.drive(store.as_ref(), &t.parts.key, &t.cluster_id, term)
                .await
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let runtime = driving.as_ref().map_or_else(
        || Arc::clone(&t.runtime),
        |d| Arc::clone(&d.routing) as Arc<dyn ContainerRuntime>,
    );
    let cc = ControlCluster {
        cluster_id: Some(t.cluster_id.clone()),
        store: Some(Arc::clone(&store)),
        audit: Some(audit),
        ledger_key: Some(t.ledger_key.clone()),
        admission: driving.as_ref().map(|d| d.admission.clone()),
        rotation: driving.as_ref().and_then(|d| d.rotation.clone()),
    };
    let (orch, router) = start_control(
        &t.config,
        t.parts.clone(),
        runtime,
        Arc::clone(&t.cluster),
        (t.own.clone(), cc),
        acting,
    )
    .await
    .map_err(|e| e.to_string())?;
    if let (Some(w), Some(d)) = (&t.workers, &driving) {
        w.spawn(d, (store, &t.parts.key), &t.tasks, acting);
        info!(term, "this leader drives the nodes with its term");
    }
    spawn_control_tasks(&t.tasks, &orch, &t.health, acting);
    set(&t.current, router);
    Ok((orch, driving.map(|d| d.routing)))
}
