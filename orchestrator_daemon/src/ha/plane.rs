//! What every control plane on etcd with gossip runs, leading or not: the
//! gossip, its end of the overlay, its node agent (mutual TLS, with the
//! term gate), the peer clients it forwards through (see `cluster`).

use std::sync::Arc;

use axum::Router;
use cluster_manager::ChitchatClusterManager;
use cluster_manager_interface::ClusterManager;
use container_runtime::youki::cni::overlay::Overlay;
use container_runtime_interface::ContainerRuntime;
use ed25519_dalek::SigningKey;
use node_agent::agent::{self, AgentState};
use orchestrator_dns::NameTable;
use orchestrator_shared_types::Node;
use peer_tls::{NodeTls, PeerClients};
use signed_http::ReplayCache;
use state_store_interface::StateStore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::cluster::{Joined, Workers};
use crate::config::DaemonConfig;
use crate::directory::DirectoryReceiver;
use crate::error::{Error, Result};
use crate::run::{PEER_CONNECT_TIMEOUT, TERM_FILE};

/// A control plane's part of the cluster.
pub(super) struct Plane {
    pub(super) gossip: Arc<ChitchatClusterManager>,
    pub(super) peers: Arc<PeerClients>,
    /// Its TLS identity and who may connect with it.
    pub(super) tls: (Arc<NodeTls>, peer_tls::Members),
    /// Its node agent's routes.
    pub(super) agent: Router,
    /// What it needs when it leads.
    pub(super) workers: Workers,
}

/// What [`Plane::start`] takes from the daemon.
pub(super) struct Inputs<'a> {
    pub(super) config: &'a DaemonConfig,
    pub(super) key: &'a SigningKey,
    pub(super) local: Node,
    pub(super) api_addr: std::net::SocketAddr,
    pub(super) runtime: Arc<dyn ContainerRuntime>,
    pub(super) names: Arc<NameTable>,
    pub(super) overlay: Option<Arc<Overlay>>,
    pub(super) audience: Arc<str>,
    pub(super) metrics: Arc<observability::metrics::Metrics>,
    /// The store, whose registry of control planes is followed.
    pub(super) store: Arc<dyn StateStore>,
}

impl Plane {
    /// Joins the gossip as `joined` settled and starts the node agent.
    pub(super) async fn start(
        joined: Joined,
        i: Inputs<'_>,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Result<Self> {
        let cs = &joined.cs;
        let node = i.local.id;
        // The leader places instances on every control plane: this node's
        // runtime is ready for them whoever leads (a worker does the same).
        i.runtime.init_node(node).await?;
        let gossip = crate::cluster_run::start_gossip(cs, i.key, i.local, i.api_addr).await?;
        let cluster = Arc::clone(&gossip) as Arc<dyn ClusterManager>;
        if let Some(overlay) = &i.overlay {
            tasks.spawn(crate::overlay::follow(
                Arc::clone(overlay),
                Arc::clone(&cluster),
                cs.gossip.cluster_id.clone(),
                node,
                cancel.child_token(),
            ));
        }
        let tls = Arc::new(NodeTls::new(i.key).map_err(Error::Tls)?);
        let peers = Arc::new(PeerClients::new(Arc::clone(&tls), PEER_CONNECT_TIMEOUT));
        let key_store = crate::cluster_run::gossip_key_store(cs, tasks, cancel);
        tasks.spawn(crate::cluster_run::export_gossip_metrics(
            Arc::clone(&gossip),
            (Arc::clone(&i.runtime), node),
            i.metrics,
            cancel.child_token(),
        ));
        let receiver = Arc::new(DirectoryReceiver::new(None, i.overlay.clone()));
        let terms = node_agent::term::TermGate::open(&i.config.data_dir.join(TERM_FILE))
            .map_err(Error::AgentTerm)?;
        let agent = agent::router(AgentState {
            runtime: Arc::clone(&i.runtime),
            node,
            cluster: Arc::clone(&cluster),
            replays: Arc::new(ReplayCache::new(i.config.auth.replay_capacity)),
            max_skew_seconds: i.config.auth.max_skew_seconds,
            audience: Arc::clone(&i.audience),
            directory: Some(Arc::clone(&receiver) as Arc<dyn node_agent::directory::DirectorySink>),
            gossip_keys: key_store
                .clone()
                .map(|s| Arc::new(s) as Arc<dyn node_agent::gossip_keys::GossipKeyStore>),
            terms: Some(Arc::new(terms)),
        });
        tasks.spawn(follow_registry(
            Arc::clone(&i.store),
            Arc::clone(&gossip),
            cancel.child_token(),
        ));
        let members = node_agent::members(Arc::clone(&cluster));
        Ok(Self {
            workers: Workers {
                gossip: Arc::clone(&gossip),
                peers: Arc::clone(&peers),
                audience: i.audience,
                key_store,
                local_runtime: i.runtime,
                names: i.names,
                receiver,
                network: joined.network,
                me: joined.me,
            },
            gossip,
            peers,
            tls: (tls, members),
            agent,
        })
    }
}

/// How often a control plane reads the registry of control planes again.
const REGISTRY_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Pins every control plane that registers in etcd after this one started
/// (it pinned those before at its start), so that a leader registered later
/// is obeyed here: its member list followed, its agent calls and mutual-TLS
/// connections admitted. etcd is trusted with that: whoever writes it holds
/// the cluster's state already.
async fn follow_registry(
    store: Arc<dyn StateStore>,
    gossip: Arc<ChitchatClusterManager>,
    cancel: CancellationToken,
) {
    let mut pinned = std::collections::BTreeSet::new();
    let mut tick = tokio::time::interval(REGISTRY_CHECK);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match orchestrator_admission::records::control_planes(store.as_ref()).await {
            Ok(all) => {
                let ids: Vec<_> = all.iter().map(|c| c.node_id).collect();
                if ids.iter().any(|id| !pinned.contains(id)) {
                    gossip.pin_control_planes(&ids);
                    pinned.extend(ids);
                    tracing::info!(
                        control_planes = pinned.len(),
                        "control planes pinned from etcd"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the registered control planes"),
        }
    }
}
