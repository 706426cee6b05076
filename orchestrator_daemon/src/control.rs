//! Starting the orchestrator of a standalone node or a control plane: the
//! parts every daemon shares, who the node is (`GET /api/v1/info`), the
//! gate of its signed routes, and the control plane's own services
//! (admission, trust and credit, the REST API with its audit log).

use std::sync::Arc;

use axum::Router;
use cluster_manager_interface::ClusterManager;
use container_runtime_interface::ContainerRuntime;
use ed25519_dalek::SigningKey;
use observability::events::EventHub;
use observability::health::Health;
use observability::metrics::Metrics;
use orchestrator_admission::{Admission, AdmissionConfig, GossipKeyRotation};
use orchestrator_audit::AuditLog;
use orchestrator_core::{Deps, Orchestrator};
use orchestrator_rest::info::NodeInfo;
use orchestrator_rest::{self as rest, AppState, AuthGate};
use orchestrator_shared_types::PublicKey;
use orchestrator_trust::TrustService;
use state_store_interface::StateStore;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::config::DaemonConfig;
use super::open::{open_audit, open_store};
use super::scheduler::{open_scheduler, trust_source};
use crate::error::{Error, Result};

/// How often the control plane records a heartbeat observation of every node.
const OBSERVATION_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// What every kind of daemon shares, made before its role is known.
#[derive(Clone)]
pub(crate) struct Parts {
    pub(crate) key: SigningKey,
    pub(crate) gate: AuthGate,
    pub(crate) health: Arc<Health>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) events: EventHub,
}

/// Who this node is, for `GET /api/v1/info`, with the audience every signed
/// request to it must name (SPEC §11): the cluster id when the node is in a
/// cluster (as settled: created, joined or configured), else its own node id.
pub(crate) fn node_info(
    cluster_id: Option<String>,
    local: &orchestrator_shared_types::Node,
) -> NodeInfo {
    NodeInfo {
        audience: cluster_id.clone().unwrap_or_else(|| local.id.to_string()),
        cluster_id,
        node_id: local.id.to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// The credit ledger id of a node in no cluster: its own, from its key.
pub(crate) fn standalone_ledger_id(key: &SigningKey) -> String {
    format!("standalone-{}", hex::encode(key.verifying_key().to_bytes()))
}

/// The gate of the signed routes, for `audience`.
pub(crate) fn auth_gate(
    config: &DaemonConfig,
    key: &SigningKey,
    audience: &str,
    metrics: &Arc<Metrics>,
) -> AuthGate {
    let mut auth = config.auth.clone();
    if let Some(trusted) = auth.trusted_keys.as_mut() {
        // `orchestrator_daemon join-token` signs with the node key.
        trusted.insert(PublicKey(key.verifying_key().to_bytes()));
    }
    AuthGate::new(auth, Arc::from(audience)).counting(Arc::clone(metrics))
}

/// What a control plane has that a standalone node has not.
#[derive(Default)]
pub(crate) struct ControlCluster {
    /// The cluster id (as settled: created, joined or configured).
    pub(crate) cluster_id: Option<String>,
    /// Admission, on a control plane that created its cluster.
    pub(crate) admission: Option<AdmissionConfig>,
    /// The gossip key rotation after a removal (sealed gossip only).
    pub(crate) rotation: Option<Arc<dyn GossipKeyRotation>>,
    /// The store, when already open (a leader's fenced etcd store); else
    /// the one the configuration names is opened.
    pub(crate) store: Option<Arc<dyn StateStore>>,
    /// The audit log, when already open; else the data directory's.
    pub(crate) audit: Option<Arc<AuditLog>>,
    /// The credit ledger's authority when it is not the node key (control
    /// planes that lead in turn share the cluster's).
    pub(crate) ledger_key: Option<SigningKey>,
}

/// Starts the orchestrator of a standalone node or a control plane over
/// `runtime` and `cluster`; its router (REST API with the audit log, plus
/// `extra`).
pub(crate) async fn start_control(
    config: &DaemonConfig,
    parts: Parts,
    runtime: Arc<dyn ContainerRuntime>,
    cluster: Arc<dyn ClusterManager>,
    (extra, cc): (Router, ControlCluster),
    cancel: &CancellationToken,
) -> Result<(Arc<Orchestrator>, Router)> {
    let store = match cc.store {
        Some(store) => store,
        None => open_store(config)?,
    };
    let audit = match cc.audit {
        Some(audit) => audit,
        None => open_audit(config)?,
    };
    // One ledger per cluster (a standalone node's is its own).
    let ledger_id = cc
        .cluster_id
        .clone()
        .unwrap_or_else(|| standalone_ledger_id(&parts.key));
    let admission = cc.admission.map(|ac| {
        let a = Admission::new(
            Arc::clone(&store),
            parts.key.clone(),
            Arc::clone(&cluster),
            ac,
        );
        Arc::new(match cc.rotation {
            Some(r) => a.with_rotation(r),
            None => a,
        })
    });
    let mut trust = TrustService::new(Arc::clone(&store), parts.key.clone(), ledger_id)
        .with_pledges(config.pledges)
        .with_probes(Arc::clone(&runtime), config.probes.clone());
    if let Some(key) = cc.ledger_key {
        trust = trust.with_ledger_key(key);
    }
    let trust = Arc::new(trust);
    let deps = Deps {
        store: Arc::clone(&store),
        runtime,
        cluster: Arc::clone(&cluster),
        scheduler: open_scheduler(config, trust_source(config, &trust)),
        metrics: parts.metrics,
        events: parts.events,
    };
    let orch =
        Arc::new(Orchestrator::start(config.reconciler.clone(), deps, cancel.child_token()).await?);
    let replayed = trust.load().await.map_err(Error::Trust)?;
    info!(entries = replayed, "reputation evidence replayed");
    tokio::spawn(Arc::clone(&trust).run(
        cluster,
        store,
        orch.subscribe(),
        OBSERVATION_PERIOD,
        cancel.child_token(),
    ));
    let mut state = AppState::with_gate(Arc::clone(&orch), parts.gate, parts.health)
        .with_audit(audit)
        .with_mcp(cancel.child_token())
        .with_trust(trust);
    if let Some(admission) = admission {
        admission.start().await.map_err(Error::Admission)?;
        tokio::spawn(Arc::clone(&admission).run(cancel.child_token()));
        state = state.with_admission(admission);
    }
    let failed = state.agents.recover().await.map_err(Error::Agents)?;
    if failed > 0 {
        tracing::warn!(
            failed,
            "approved calls were interrupted by the last stop; marked failed, not run again"
        );
    }
    Ok((orch, rest::router(state).merge(extra)))
}
