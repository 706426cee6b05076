//! Builds the components a [`DaemonConfig`] names and runs them until a signal.

use std::sync::Arc;
use std::time::Duration;

use cluster_manager::mock::MockClusterManager;
use container_runtime::youki::cni::overlay::Overlay;
use container_runtime_interface::ContainerRuntime;
use std::net::SocketAddr;

use observability::events::EventHub;
use observability::health::Health;
use tokio::net::TcpListener;

use crate::lifecycle::spawn_control_tasks;
pub use crate::lifecycle::{run_until_signal, Shutdown};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::cluster_run;
use super::config::{DaemonConfig, Role};
use super::control::{auth_gate, node_info, start_control, ControlCluster, Parts};
use super::open::{open_metrics, open_node, open_runtime_for, release_on_stop};
use crate::directory::DirectoryReceiver;
use crate::error::{Error, Result};
use crate::key_rotation::AgentKeyRotation;
use axum::Router;
use cluster_manager::ChitchatClusterManager;
use cluster_manager_interface::ClusterManager;
use node_agent::agent::{self, AgentState};
use node_agent::client::AgentClient;
use node_agent::RoutingRuntime;
use orchestrator_admission::GossipKeyRotation;
use orchestrator_core::Orchestrator;
use orchestrator_dns::{follow_store, NameTable};
use orchestrator_rest as rest;
use orchestrator_rest::info;
use orchestrator_rest::network::{self, NetworkState};
use peer_tls::{NodeTls, PeerClients};
use signed_http::ReplayCache;

/// Events buffered per subscriber before it is told it lagged.
pub(super) const EVENT_HUB_CAPACITY: usize = 1024;

/// How often a worker observes the other members for reputation (gossiped).
const PEER_PROBE_PERIOD: Duration = Duration::from_secs(60);
/// The file in the data directory where the node agent keeps the highest
/// control-plane term it has seen (`node_agent::term`).
pub(crate) const TERM_FILE: &str = "agent-term.json";
/// Longest wait to connect to another node (agent calls, forwarding, probes).
pub(crate) const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "state.db";

/// A running daemon.
pub struct Daemon {
    /// The orchestrator (library API), on a standalone node or the control
    /// plane; `None` on a worker.
    pub orchestrator: Option<Arc<Orchestrator>>,
    /// Where the REST API listens.
    pub api_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: TaskTracker,
    gossip: Option<Arc<ChitchatClusterManager>>,
    routing: Option<Arc<RoutingRuntime>>,
    /// This node's end of the cluster overlay (its tunnel goes with it).
    overlay: Option<Arc<Overlay>>,
}

/// What a cluster node keeps running besides its tasks: gossip, the
/// routing runtime (control plane) and its end of the overlay.
type ClusterParts = (
    Option<Arc<ChitchatClusterManager>>,
    Option<Arc<RoutingRuntime>>,
    Option<Arc<Overlay>>,
);

const COMPONENTS: [&str; 4] = ["store", "reconciler", "runtime", "cluster"];

/// The role of a node without gossip, in `/api/v1/network`.
const STANDALONE: &str = "standalone";

/// How often the control plane lists the containers of other nodes.
const REMOTE_STATUS_POLL: Duration = Duration::from_secs(1);

impl Daemon {
    /// Builds and starts everything `config` names; the API port is bound
    /// before anything else starts, so a taken port fails fast.
    pub async fn start(config: &DaemonConfig) -> Result<Self> {
        let (key, mut local) = open_node(config)?;
        let listener = TcpListener::bind(config.api_addr)
            .await
            .map_err(|source| Error::Bind {
                addr: config.api_addr,
                source,
            })?;
        let api_addr = listener.local_addr().map_err(Error::LocalAddr)?;
        let health = Arc::new(Health::new());
        for c in COMPONENTS {
            health.set_starting(c);
        }
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let metrics = open_metrics()?;
        let events = EventHub::new(EVENT_HUB_CAPACITY);
        let node_id = local.id;

        #[cfg(feature = "etcd")]
        if let Some(etcd) = &config.etcd {
            return crate::ha::start(
                config,
                etcd,
                config.cluster.as_ref(),
                (key, local),
                listener,
            )
            .await;
        }
        if config.etcd.is_some() {
            return Err(Error::Config(
                "--store etcd: this build has no etcd support".into(),
            ));
        }
        let Some(cs) = &config.cluster else {
            let (local_runtime, youki) = open_runtime_for(config).await?;
            release_on_stop(&tasks, &cancel, youki);
            // The DNS server asks the node's own runtime about new instances.
            let dns_runtime = Arc::clone(&local_runtime);
            let info = node_info(None, &local);
            info!(audience = %info.audience, "requests must be signed for this audience (GET /api/v1/info)");
            let parts = Parts {
                key: key.clone(),
                gate: auth_gate(config, &key, &info.audience, &metrics),
                health: Arc::clone(&health),
                metrics,
                events,
            };
            let info = info::router(info);
            local.address = api_addr.to_string();
            let simulated = crate::simulated::nodes(&local, config.mock_nodes);
            let members = MockClusterManager::new(local);
            for node in simulated {
                local_runtime.init_node(node.id).await?;
                members.add_node(node)?;
            }
            if config.mock_nodes > 1 {
                warn!(
                    nodes = config.mock_nodes,
                    "--mock-nodes: this node shows {} simulated nodes beside itself",
                    config.mock_nodes - 1
                );
            }
            let cluster: Arc<dyn ClusterManager> = Arc::new(members);
            let network = network::router(
                NetworkState {
                    cluster: Arc::clone(&cluster),
                    gossip: None,
                    role: STANDALONE.to_owned(),
                    peers: None,
                    leader: None,
                },
                parts.gate.clone(),
            )
            .merge(info);
            let (orch, router) = start_control(
                config,
                parts,
                local_runtime,
                cluster,
                (network, ControlCluster::default()),
                &cancel,
            )
            .await?;
            let store = Arc::clone(&orch.deps().store);
            let names = Arc::new(NameTable::new());
            crate::dns::start(
                config,
                (names, Some(store)),
                (dns_runtime, node_id),
                &tasks,
                &cancel,
            )
            .await;
            spawn_control_tasks(&tasks, &orch, &health, &cancel);
            spawn_api(&tasks, (listener, None), router, &cancel);
            return Ok(Self::finish(
                Some(orch),
                api_addr,
                cancel,
                tasks,
                health,
                (None, None, None),
            ));
        };

        let mut cs = cs.clone();
        let operator = Some((local.operator, config.operator_proof.clone()));
        let settled =
            crate::cluster_identity::settle(&mut cs, &config.data_dir, &key, operator).await?;
        let cs = &cs;
        // The bridge takes the subnet handed out at admission, and the
        // overlay starts before the runtime (its threads before any fork).
        let (config, overlay) = crate::overlay::configure(config, cs, &settled, &key).await?;
        let config = &config;
        let (local_runtime, youki) = open_runtime_for(config).await?;
        release_on_stop(&tasks, &cancel, youki);
        let dns_runtime = Arc::clone(&local_runtime);
        let info = node_info(Some(cs.gossip.cluster_id.clone()), &local);
        info!(audience = %info.audience, "requests must be signed for this audience (GET /api/v1/info)");
        let audience: Arc<str> = Arc::from(info.audience.as_str());
        let parts = Parts {
            key: key.clone(),
            gate: auth_gate(config, &key, &info.audience, &metrics),
            health: Arc::clone(&health),
            metrics,
            events,
        };
        let info = info::router(info);
        let gossip = cluster_run::start_gossip(cs, &key, local, api_addr).await?;
        let cluster: Arc<dyn ClusterManager> = Arc::clone(&gossip) as Arc<dyn ClusterManager>;
        if let Some(overlay) = &overlay {
            tasks.spawn(crate::overlay::follow(
                Arc::clone(overlay),
                Arc::clone(&cluster),
                cs.gossip.cluster_id.clone(),
                node_id,
                cancel.child_token(),
            ));
        }
        // Node-to-node traffic is mutual TLS with this node's key (peer_tls).
        let tls = Arc::new(NodeTls::new(&key).map_err(Error::Tls)?);
        let peers = Arc::new(PeerClients::new(Arc::clone(&tls), PEER_CONNECT_TIMEOUT));
        let serving = Some((tls, node_agent::members(Arc::clone(&cluster))));
        let key_store = cluster_run::gossip_key_store(cs, &tasks, &cancel);
        tasks.spawn(cluster_run::export_gossip_metrics(
            Arc::clone(&gossip),
            (Arc::clone(&local_runtime), node_id),
            Arc::clone(&parts.metrics),
            cancel.child_token(),
        ));
        // The names and owners of the cluster's instances: kept from the
        // store on a control plane, handed over by it on a worker.
        let names = Arc::new(NameTable::new());
        let receiver = Arc::new(DirectoryReceiver::new(
            (cs.role == Role::Worker).then(|| Arc::clone(&names)),
            overlay.clone(),
        ));
        // The highest control-plane term this node has obeyed, kept across
        // restarts: a leader whose term is over is refused.
        let terms = Arc::new(
            node_agent::term::TermGate::open(&config.data_dir.join(TERM_FILE))
                .map_err(Error::AgentTerm)?,
        );
        let agent = agent::router(AgentState {
            runtime: Arc::clone(&local_runtime),
            node: node_id,
            cluster: Arc::clone(&cluster),
            replays: Arc::new(ReplayCache::new(config.auth.replay_capacity)),
            max_skew_seconds: config.auth.max_skew_seconds,
            audience: Arc::clone(&audience),
            directory: Some(Arc::clone(&receiver) as Arc<dyn node_agent::directory::DirectorySink>),
            gossip_keys: key_store
                .clone()
                .map(|s| Arc::new(s) as Arc<dyn node_agent::gossip_keys::GossipKeyStore>),
            terms: Some(Arc::clone(&terms)),
        });
        // A worker names the leader whose term it obeys (control planes on
        // etcd); a SQLite cluster's control plane sends no term: none.
        let leader = (cs.role == Role::Worker)
            .then(|| cluster_run::follow_term(terms, Arc::clone(&cluster), &tasks, &cancel));
        let network = network::router(
            NetworkState {
                cluster: Arc::clone(&cluster),
                gossip: Some(cluster_run::gossip_info_source(&gossip)),
                role: cs.role.as_str().to_owned(),
                peers: Some(Arc::clone(&peers)),
                leader,
            },
            parts.gate.clone(),
        )
        .merge(info);

        if cs.role == Role::Worker {
            local_runtime.init_node(node_id).await?;
            crate::dns::start(
                config,
                (names, None),
                (Arc::clone(&local_runtime), node_id),
                &tasks,
                &cancel,
            )
            .await;
            tasks.spawn(orchestrator_trust::gossip::run_prober(
                key.clone(),
                Arc::clone(&cluster),
                PEER_PROBE_PERIOD,
                cancel.child_token(),
            ));
            let router = cluster_run::worker_router(
                agent.merge(network),
                (cluster, peers),
                &health,
                &parts.metrics,
            );
            for c in COMPONENTS {
                health.set_ok(c);
            }
            health.set_ready(true);
            spawn_api(&tasks, (listener, serving), router, &cancel);
            return Ok(Self::finish(
                None,
                api_addr,
                cancel,
                tasks,
                health,
                (Some(gossip), None, overlay),
            ));
        }

        let client = AgentClient::with_peers(key, audience, peers);
        let directory_client = client.clone();
        let rotation = key_store.map(|local| {
            Arc::new(AgentKeyRotation::new(
                local,
                client.clone(),
                Arc::clone(&cluster),
            )) as Arc<dyn GossipKeyRotation>
        });
        let routing = Arc::new(RoutingRuntime::new(
            local_runtime,
            Arc::clone(&cluster),
            client,
            REMOTE_STATUS_POLL,
        ));
        let runtime = Arc::clone(&routing) as Arc<dyn ContainerRuntime>;
        let cc = ControlCluster {
            cluster_id: Some(cs.gossip.cluster_id.clone()),
            admission: if settled.admission {
                cluster_run::admission_config(cs, &gossip, settled.network).await?
            } else {
                None
            },
            rotation,
            ..ControlCluster::default()
        };
        let (orch, router) = start_control(
            config,
            parts,
            runtime,
            cluster,
            (agent.merge(network), cc),
            &cancel,
        )
        .await?;
        let store = Arc::clone(&orch.deps().store);
        tasks.spawn(follow_store(
            store,
            Arc::clone(&names),
            cancel.child_token(),
        ));
        tasks.spawn(crate::directory::push(
            Arc::clone(&names),
            (Arc::clone(&orch.deps().cluster), directory_client, node_id),
            receiver,
            cancel.child_token(),
        ));
        crate::dns::start(
            config,
            (names, None),
            (dns_runtime, node_id),
            &tasks,
            &cancel,
        )
        .await;
        spawn_control_tasks(&tasks, &orch, &health, &cancel);
        spawn_api(&tasks, (listener, serving), router, &cancel);
        Ok(Self::finish(
            Some(orch),
            api_addr,
            cancel,
            tasks,
            health,
            (Some(gossip), Some(routing), overlay),
        ))
    }

    pub(crate) fn finish(
        orchestrator: Option<Arc<Orchestrator>>,
        api_addr: SocketAddr,
        cancel: CancellationToken,
        tasks: TaskTracker,
        health: Arc<Health>,
        (gossip, routing, overlay): ClusterParts,
    ) -> Self {
        if orchestrator.is_some() {
            for c in COMPONENTS {
                health.set_ok(c);
            }
            health.set_ready(true);
        }
        tasks.close();
        Self {
            orchestrator,
            api_addr,
            cancel,
            tasks,
            gossip,
            routing,
            overlay,
        }
    }

    /// Stops everything, letting in-flight work finish.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.tasks.wait().await;
        if let Some(orch) = self.orchestrator {
            match Arc::try_unwrap(orch) {
                Ok(o) => o.shutdown().await,
                Err(_) => warn!("orchestrator still shared at shutdown; not waiting for it"),
            }
        }
        if let Some(routing) = self.routing {
            routing.shutdown().await;
        }
        if let Some(gossip) = self.gossip {
            gossip.shutdown().await;
        }
        drop(self.overlay);
    }
}

/// Serves the API on `listener`; in a cluster, with mutual TLS for the
/// member nodes `tls.1` admits on the same port.
pub(crate) fn spawn_api(
    tasks: &TaskTracker,
    (listener, tls): (TcpListener, Option<(Arc<NodeTls>, peer_tls::Members)>),
    router: Router,
    cancel: &CancellationToken,
) {
    let api_cancel = cancel.child_token();
    tasks.spawn(async move {
        let served = match tls {
            None => rest::serve(listener, router, api_cancel).await,
            Some((tls, members)) => {
                let stop = async move { api_cancel.cancelled().await };
                peer_tls::serve(listener, router, &tls, members, stop).await
            }
        };
        if let Err(e) = served {
            error!(error = %e, "the REST API stopped");
        }
    });
}
