//! Opening the daemon's parts from its configuration: the node's key and
//! record, the state store, the container runtime, the audit log and the
//! metrics registry (used by [`super::run`]).

use std::sync::Arc;

use chrono::Utc;
use cluster_manager::mock::MockClusterManager;
use container_runtime::mock::MockRuntime;
use container_runtime::youki::YoukiRuntime;
use container_runtime_interface::ContainerRuntime;
use ed25519_dalek::SigningKey;
use observability::events::EventHub;
use observability::metrics::Metrics;
use orchestrator_shared_types::ports::NODE_NETWORKS_LABEL;
use orchestrator_shared_types::{NetworkMode, Node, NodeStatus, PublicKey};
use state_store_interface::memory::InMemoryStore;
use state_store_interface::sqlite::SqliteStore;
use state_store_interface::StateStore;
use tracing::{info, warn};

use super::config::{DaemonConfig, RuntimeKind, StoreKind};
use super::node_key;
use super::operator;
use super::run::DATABASE_FILE;
use super::run::EVENT_HUB_CAPACITY;
use super::scheduler::{open_scheduler, NoEvidence};
use crate::error::{Error, Result};
use orchestrator_audit::AuditLog;
use orchestrator_core::Deps;

/// This node's key and its record, as a standalone node, with its operator
/// checked.
pub(super) fn open_node(config: &DaemonConfig) -> Result<(SigningKey, Node)> {
    let key = node_key::open(&config.data_dir)?;
    let id = node_key::node_id(&key);
    info!(node = %id, data_dir = %config.data_dir.display(), "node identity loaded");
    let mut local = Node {
        id,
        address: "127.0.0.1".into(),
        status: NodeStatus::Ready,
        unschedulable: false,
        labels: config.labels.clone(),
        taints: Vec::new(),
        resources_capacity: config.node_capacity,
        resources_allocatable: config.node_allocatable,
        operator: PublicKey(id.0),
        joined_at: Utc::now(),
    };
    local
        .labels
        .insert(NODE_NETWORKS_LABEL.to_owned(), offered_networks(config));
    // Refuses an operator other than the node's own key without its proof.
    operator::claim(config, &mut local)?;
    Ok((key, local))
}

/// The networks this node offers its instances, for the schedulers
/// ([`NODE_NETWORKS_LABEL`]): the bridge when its plugins are there (the
/// mock runtime simulates it), the host's only when the operator allows it,
/// and `none` always.
fn offered_networks(config: &DaemonConfig) -> String {
    let bridge = match config.runtime {
        RuntimeKind::Mock => true,
        RuntimeKind::Youki => config.youki.cni.is_some(),
    };
    let offered = [
        (bridge, NetworkMode::Bridge),
        (config.youki.allow_host_network, NetworkMode::Host),
        (true, NetworkMode::None),
    ];
    let words: Vec<&str> = offered
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, m)| m.as_str())
        .collect();
    words.join(",")
}

pub(super) fn open_store(config: &DaemonConfig) -> Result<Arc<dyn StateStore>> {
    Ok(match config.store {
        StoreKind::Sqlite => Arc::new(SqliteStore::open(config.data_dir.join(DATABASE_FILE))?),
        StoreKind::Memory => {
            warn!("state store: memory — everything is lost when the daemon stops");
            Arc::new(InMemoryStore::new())
        }
        // Opened by the control planes' election (`ha`), fenced by it.
        StoreKind::Etcd => {
            return Err(Error::Config(
                "the etcd store is opened by a control plane's election (Daemon::start), not \
                 here"
                    .into(),
            ))
        }
    })
}

pub(super) async fn open_runtime(config: &DaemonConfig) -> Result<Arc<dyn ContainerRuntime>> {
    Ok(open_runtime_for(config).await?.0)
}

/// [`open_runtime`], and the youki runtime itself when it is the one, for
/// what only it does ([`release_on_stop`]).
pub(super) async fn open_runtime_for(
    config: &DaemonConfig,
) -> Result<(Arc<dyn ContainerRuntime>, Option<YoukiRuntime>)> {
    Ok(match config.runtime {
        RuntimeKind::Mock => {
            warn!("container runtime: mock — containers are simulated, nothing runs");
            (Arc::new(MockRuntime::new()), None)
        }
        RuntimeKind::Youki => {
            let youki = youki_runtime(config).await?;
            (Arc::new(youki.clone()), Some(youki))
        }
    })
}

/// When the daemon stops (`cancel`), the youki runtime detaches its warm
/// bridge attachments (`--warm-networks`): a daemon stopped for good, or
/// whose data directory goes with it, leaves no namespace, veth or address
/// lease of them behind. (Its containers keep running; a daemon killed
/// leaves the attachments to the next one on the same data directory.)
pub(super) fn release_on_stop(
    tasks: &tokio_util::task::TaskTracker,
    cancel: &tokio_util::sync::CancellationToken,
    youki: Option<YoukiRuntime>,
) {
    if let Some(rt) = youki {
        let cancel = cancel.clone();
        tasks.spawn(async move {
            cancel.cancelled().await;
            rt.drain_warm().await;
        });
    }
}

/// Opens the audit log in the data directory; a log whose chain does not
/// verify is refused (it is evidence: move it aside to start a new one).
pub(super) fn open_audit(config: &DaemonConfig) -> Result<Arc<AuditLog>> {
    AuditLog::open(&config.data_dir)
        .map(Arc::new)
        .map_err(|source| Error::Audit {
            dir: config.data_dir.clone(),
            source,
        })
}

pub(super) fn open_metrics() -> Result<Arc<Metrics>> {
    Ok(Arc::new(Metrics::new().map_err(Error::Metrics)?))
}

/// Opens the data directory and builds every component `config` names, for
/// a standalone node.
pub async fn build_deps(config: &DaemonConfig) -> Result<Deps> {
    let (_key, local) = open_node(config)?;
    Ok(Deps {
        store: open_store(config)?,
        runtime: open_runtime(config).await?,
        cluster: Arc::new(MockClusterManager::new(local)),
        scheduler: open_scheduler(config, Arc::new(NoEvidence)),
        metrics: open_metrics()?,
        events: EventHub::new(EVENT_HUB_CAPACITY),
    })
}

/// Opens the youki runtime, or says what the host lacks. Never falls back.
async fn youki_runtime(config: &DaemonConfig) -> Result<YoukiRuntime> {
    let mut cfg = config.youki.clone();
    // The node opens the secrets sealed to its key, and only those.
    let key = node_key::open(&config.data_dir)?;
    cfg.secret_key = Some(
        container_runtime::youki::SecretKey::new(&key)
            .map_err(|e| Error::Config(format!("the node's key cannot open secrets: {e}")))?,
    );
    let runtime = YoukiRuntime::new(cfg).await.map_err(Error::Youki)?;
    info!(
        writable_layers = %runtime.layer_mode(),
        cgroups = ?runtime.cgroup_layout(),
        "container runtime: youki"
    );
    match (&config.youki.cni, &config.bridge_off) {
        (Some(cni), _) => info!(subnet = %cni.subnet, plugins = %cni.bin_dir.display(),
            "bridge networking (network: bridge, the default) is on"),
        (None, why) => tracing::warn!(
            error = why.as_deref().unwrap_or("not configured"),
            "bridge networking (network: bridge, the default) is OFF: this node offers only \
             `none`{} and such workloads go to other nodes; install the CNI plugins \
             (Debian: containernetworking-plugins) or point --cni-bin-dir at them",
            if config.youki.allow_host_network {
                " and `host`"
            } else {
                ""
            }
        ),
    }
    Ok(runtime)
}
