//! The cluster's directory of instance names and owners on every node (SPEC
//! §9): the control plane's table of names (kept from its store by
//! `orchestrator_dns::follow_store`) goes to every other node over the node
//! agent (`PUT /agent/v1/directory`, mutual TLS, signed by the control
//! plane), where it feeds the node's DNS server — so that a name resolves to
//! the owner's Ready instances on every node — and the overlay's owner
//! isolation — so that an instance accepts connections from another node's
//! instances of its own owner only.
//!
//! Each node gets the part it needs: the names and addresses of the owners
//! with an instance on it, so that a stranger's node learns nothing of
//! other tenants' workloads.
//!
//! The control plane sends a directory to each node whenever its table
//! changes, and again to a node that has not confirmed the newest within a
//! second (a node that just joined, or was unreachable). Each run of a
//! control plane numbers its directories from a random epoch, so a node
//! takes the first directory of a restarted control plane even though its
//! version starts again from one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_manager_interface::ClusterManager;
use container_runtime::youki::cni::overlay::Overlay;
use node_agent::client::AgentClient;
use node_agent::directory::DirectorySink;
use orchestrator_dns::{NameTable, Names};
use orchestrator_shared_types::net::Directory;
use orchestrator_shared_types::{NodeId, NodeStatus};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How often nodes that have not confirmed the newest directory are tried
/// again.
const RETRY: Duration = Duration::from_secs(1);

/// A node that has not taken the newest directory this long is warned of,
/// and again every [`UNDELIVERED_REPEAT`] while it lasts.
const UNDELIVERED_WARNING: Duration = Duration::from_secs(10);
const UNDELIVERED_REPEAT: Duration = Duration::from_secs(60);

/// Epochs are kept below this, so that `epoch + version` never overflows.
const EPOCH_SPAN: u64 = 1 << 48;

/// A node's end: takes directories into its DNS table (a worker's; the
/// control plane's table is the source) and its overlay's owner isolation.
pub struct DirectoryReceiver {
    names: Option<Arc<NameTable>>,
    overlay: Option<Arc<Overlay>>,
    /// The `version` of the directory in use (epoch included), 0 for none.
    held: AtomicU64,
    lock: tokio::sync::Mutex<()>,
}

impl DirectoryReceiver {
    /// A receiver that fills `names` (if given) and `overlay`'s isolation
    /// (if given).
    pub fn new(names: Option<Arc<NameTable>>, overlay: Option<Arc<Overlay>>) -> Self {
        Self {
            names,
            overlay,
            held: AtomicU64::new(0),
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

impl DirectoryReceiver {
    /// The version of the directory in use (0: none yet).
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }
}

#[async_trait::async_trait]
impl DirectorySink for DirectoryReceiver {
    async fn receive(&self, directory: Directory) -> Result<u64, String> {
        let _one_at_a_time = self.lock.lock().await;
        let held = self.held.load(Ordering::Acquire);
        // Same epoch (the upper bits) and not newer: nothing to do.
        if held / EPOCH_SPAN == directory.version / EPOCH_SPAN && directory.version <= held {
            return Ok(held);
        }
        let version = directory.version;
        let owners = self.overlay.as_ref().map(|_| directory.owners.clone());
        if let Some(names) = &self.names {
            names.replace(Names::from_directory(directory));
        }
        // The names are in use even if the rules fail: the version is not
        // recorded then, so the control plane sends it again.
        if let (Some(overlay), Some(owners)) = (&self.overlay, owners) {
            overlay
                .allow_owners(&owners)
                .await
                .map_err(|e| format!("keeping owners apart across nodes: {e}"))?;
        }
        self.held.store(version, Ordering::Release);
        debug!(version, "directory of names and owners taken into use");
        Ok(version)
    }
}

/// The control plane's side: sends its table of `names` to every other live
/// member (and to `local`, this node's own receiver) until `cancel`.
pub async fn push(
    names: Arc<NameTable>,
    (cluster, client, me): (Arc<dyn ClusterManager>, AgentClient, NodeId),
    local: Arc<DirectoryReceiver>,
    cancel: CancellationToken,
) {
    let epoch = {
        use rand::Rng as _;
        rand::thread_rng().gen_range(1..(u64::MAX / EPOCH_SPAN)) * EPOCH_SPAN
    };
    let mut changes = names.subscribe();
    let mut delivered: HashMap<NodeId, u64> = HashMap::new();
    // Since when each node has refused or missed the newest directory, and
    // when that was last said.
    let mut failing: HashMap<NodeId, (Instant, Option<Instant>)> = HashMap::new();
    let mut tick = tokio::time::interval(RETRY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
            changed = changes.changed() => if changed.is_err() { return },
        }
        // Nothing is built when this node and every other one hold the
        // newest already (the retry tick, most of the time).
        let version = names.version() + epoch;
        if local.held() != version {
            let mut directory = names.directory();
            directory.version = version;
            if let Err(e) = local.receive(directory).await {
                warn!(error = %e, "taking the directory into use on this node");
            }
        }
        let Ok(nodes) = cluster.list_nodes().await else {
            continue;
        };
        let behind: Vec<_> = nodes
            .into_iter()
            .filter(|n| n.id != me && n.status != NodeStatus::Down)
            .filter(|n| delivered.get(&n.id) != Some(&version))
            .collect();
        // Each node gets only the owners it runs something for.
        let sends = behind.iter().map(|node| {
            let mut cut = names.directory_for(&node.id);
            cut.version = version;
            let client = &client;
            async move { (node.id, client.put_directory(node, &cut).await) }
        });
        for (node, result) in futures::future::join_all(sends).await {
            match result {
                Ok(version) => {
                    delivered.insert(node, version);
                    failing.remove(&node);
                }
                Err(e) => {
                    let now = Instant::now();
                    let (since, said) = failing.entry(node).or_insert((now, None));
                    // Its instances resolve stale names and its owners'
                    // rules lag: worth an operator's eye once it lasts.
                    if now - *since >= UNDELIVERED_WARNING
                        && said.is_none_or(|t| now - t >= UNDELIVERED_REPEAT)
                    {
                        *said = Some(now);
                        warn!(node = %node.short(), error = %e, for_s = (now - *since).as_secs(),
                            "a node has not taken the newest directory of names and owners");
                    } else {
                        debug!(node = %node.short(), error = %e, "directory not delivered yet");
                    }
                }
            }
        }
    }
}
