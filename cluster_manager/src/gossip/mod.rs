//! [`ChitchatClusterManager`]: membership by gossip over UDP (chitchat 0.13),
//! with signed node records and phi-accrual failure detection.
//!
//! - `config`: [`GossipConfig`] and its translation into chitchat's settings.
//! - `record`: the one signed key every node publishes, encoded and verified.
//! - `membership`: the membership state, the choice of one record per node
//!   among its generations, the cordon overlay and the diff into events.
//! - `task`: the background task that follows chitchat and publishes events.
//! - `probe`: a TCP probe that must confirm a death before a node is `Down`.
//! - `transport`: chitchat's UDP transport counting bytes, [`GossipStats`] and
//!   [`DropReason`].
//! - `keyring`: the gossip [`Keyring`] (rotating keys) and the sealed packet format.
//! - `sealed`: the transport that seals every packet when a keyring is configured.
//!
//! Every node gossips one chitchat key whose value is its [`Node`] record,
//! signed with its node key. Records that do not verify are ignored (and
//! counted); a record claiming an operator without a valid operator proof is
//! kept with the node's own key as its operator (and a warning). A node the failure detector declares dead is probed over TCP at
//! its API address (`probe`): refused confirms the death at once, two
//! unanswered probes confirm it, an answer keeps it alive. A confirmed dead
//! node is listed `Down` until chitchat forgets it after
//! [`GossipConfig::dead_node_grace`]; then `NodeRemoved` is emitted. Events are broadcast while the membership lock is
//! held, so a subscriber that subscribes and then lists misses nothing.
//!
//! Some choices worth knowing:
//! - Of the generations of one node, the live one with the highest generation
//!   is believed; if none is live, the highest, shown `Down`.
//! - A chitchat id keeps its last record that verified: a later value that
//!   does not verify (chitchat itself authenticates nothing, so without a
//!   keyring anyone who reaches the port can inject one; with one, any key
//!   holder still can) is rejected and changes nothing.
//! - With a [`Keyring`] in the config, packets that do not open are dropped
//!   before chitchat sees them: a node without the key is never admitted.
//! - A node that was never seen alive is hidden for a short join grace (at
//!   least 1 s, 10 gossip rounds): chitchat calls a node dead until it has two
//!   heartbeats, and a joining node must not flash `Down`. After the grace a
//!   node known only dead (say, learnt from peers after a restart) is listed
//!   `Down`.

mod config;
pub mod keyring;
mod membership;
mod probe;
mod record;
mod sealed;
mod task;
mod transport;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chitchat::{spawn_chitchat, Chitchat, ChitchatHandle, ChitchatId};
use cluster_manager_interface::{
    ClusterError, ClusterEvent, ClusterManager, Gossiped, Peer, Result, MAX_GOSSIP_VALUE,
};
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::{Node, NodeId, NodeStatus};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use config::{GossipConfig, DEFAULT_CLUSTER_ID};
pub use keyring::{GossipKey, KeyId, Keyring, KeyringChange, KeyringError};
pub use transport::{DropReason, DroppedPackets, GossipStats};

use membership::State;
use record::{RecordBody, RECORD_KEY};
use transport::{Counters, CountingTransport};

/// Capacity of the event broadcast; a subscriber further behind than this lags.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// What the manager and its membership task share.
struct Shared {
    state: Mutex<State>,
    events: broadcast::Sender<ClusterEvent>,
    counters: Arc<Counters>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change of the state is made by methods that cannot panic
        // half-way, so a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends an event; call with the state lock held so events keep the
    /// order of the changes.
    fn publish(&self, event: ClusterEvent) {
        // An error only means nobody subscribes right now, which is fine.
        if self.events.send(event).is_err() {
            tracing::trace!("no cluster event subscribers");
        }
    }
}

/// A [`ClusterManager`] whose membership is gossiped with chitchat over UDP.
///
/// After [`shutdown`](Self::shutdown) (or if the gossip server dies), changes
/// (`initialize`, `set_unschedulable`, `update_local`) fail with
/// [`ClusterError::ShutDown`], while reads (`local_node`, `get_node`,
/// `list_nodes`, `peers`) keep answering with the membership as last seen.
/// Dropping the manager stops gossip too, without waiting.
pub struct ChitchatClusterManager {
    config: GossipConfig,
    key: SigningKey,
    local_id: NodeId,
    chitchat_id: ChitchatId,
    shared: Arc<Shared>,
    chitchat: Arc<tokio::sync::Mutex<Chitchat>>,
    handle: Mutex<Option<ChitchatHandle>>,
    /// Orders publications of the local record: held from the change of the
    /// state until the record is in chitchat.
    publishing: tokio::sync::Mutex<()>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl std::fmt::Debug for ChitchatClusterManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChitchatClusterManager")
            .field("local_id", &self.local_id)
            .field("chitchat_id", &self.chitchat_id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ChitchatClusterManager {
    /// Validates `config`, binds the UDP socket and starts gossiping `local`,
    /// signed with `key`. `local.id` must be the key's public key. The local
    /// record is published `Ready` whatever its status says; use
    /// [`update_local`](Self::update_local) to publish another status.
    ///
    /// Fails with [`ClusterError::InvalidConfig`], [`ClusterError::KeyMismatch`],
    /// [`ClusterError::Bind`] or [`ClusterError::RecordEncoding`].
    pub async fn start(config: GossipConfig, key: SigningKey, mut local: Node) -> Result<Self> {
        config.validate().map_err(ClusterError::InvalidConfig)?;
        let key_id = NodeId(key.verifying_key().to_bytes());
        if local.id != key_id {
            return Err(ClusterError::KeyMismatch {
                node_id: local.id,
                key_id,
            });
        }
        local.transition(NodeStatus::Ready)?;
        let chitchat_id =
            ChitchatId::new(key_id.to_string(), config.generation, config.advertise_addr);
        let state = State::new(local, config.advertise_addr, config.generation);
        let value = encode_local(
            &key,
            &config,
            &chitchat_id,
            state.local(),
            state.local_seq(),
        )?;

        let counters = Arc::new(Counters::default());
        counters
            .live_nodes
            .store(1, std::sync::atomic::Ordering::Relaxed);
        let transport: Box<dyn chitchat::transport::Transport> = match &config.keyring {
            Some(keyring) => Box::new(sealed::SealedTransport {
                keyring: Arc::clone(keyring),
                cluster_id: config.cluster_id.clone(),
                counters: Arc::clone(&counters),
            }),
            None => Box::new(CountingTransport {
                counters: Arc::clone(&counters),
            }),
        };
        let handle = spawn_chitchat(
            config.chitchat_config(chitchat_id.clone()),
            vec![(RECORD_KEY.to_owned(), value)],
            transport.as_ref(),
        )
        .await
        .map_err(|e| ClusterError::Bind {
            addr: config.listen_addr,
            reason: format!("{e:#}"),
        })?;
        let chitchat = handle.chitchat();
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            events,
            counters,
        });

        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let membership = task::MembershipTask::new(
            Arc::clone(&chitchat),
            Arc::clone(&shared),
            &config,
            chitchat_id.clone(),
            key_id,
        );
        tasks.spawn(membership.run(cancel.clone(), handle.termination_watcher()));
        tasks.close();
        info!(node = %key_id.short(), generation = config.generation,
            listen = %config.listen_addr, advertise = %config.advertise_addr,
            seeds = ?config.seeds, sealed = config.keyring.is_some(),
            "gossip membership started");
        Ok(Self {
            config,
            key,
            local_id: key_id,
            chitchat_id,
            shared,
            chitchat,
            handle: Mutex::new(Some(handle)),
            publishing: tokio::sync::Mutex::new(()),
            cancel,
            tasks,
        })
    }

    /// Publishes a new version of the local record (status, labels,
    /// resources...); emits `NodeUpdated` locally if it changed. A cordon set
    /// through [`ClusterManager::set_unschedulable`] stays applied over
    /// `node.unschedulable`.
    ///
    /// Fails with [`ClusterError::KeyMismatch`] if `node` is another node, or
    /// [`ClusterError::ShutDown`].
    pub async fn update_local(&self, node: Node) -> Result<()> {
        if node.id != self.local_id {
            return Err(ClusterError::KeyMismatch {
                node_id: node.id,
                key_id: self.local_id,
            });
        }
        self.change_local(Some(node), None).await.map(|_| ())
    }

    /// Pins more control-plane keys, beside those of the configuration:
    /// from the next gossip round, member lists they sign are followed and
    /// they are control planes of this node. Keys are only ever added; the
    /// caller vouches for them (control planes on etcd read them there).
    /// Does nothing on a node that pins no key (no admission gate).
    pub fn pin_control_planes(&self, keys: &[NodeId]) {
        if self.config.control_planes.is_empty() {
            return;
        }
        let mut state = self.shared.lock();
        for k in keys {
            if !state.pinned_since.contains(k) {
                state.pinned_since.push(*k);
            }
        }
    }

    /// The counters of the gossip (bytes, messages, rejected records, nodes).
    pub fn stats(&self) -> GossipStats {
        self.shared.counters.snapshot()
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &GossipConfig {
        &self.config
    }

    /// Stops the membership task and gossip, and waits for both; the UDP port
    /// is free when it returns. Idempotent. Peers see this node `Down` after
    /// failure detection; see the type's doc for what calls answer after it.
    pub async fn shutdown(&self) {
        self.shared.lock().shut_down = true;
        self.cancel.cancel();
        self.tasks.wait().await;
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if let Err(error) = handle.shutdown().await {
                warn!(node = %self.local_id.short(), error = format!("{error:#}"),
                    "gossip server had stopped with an error");
            }
            info!(node = %self.local_id.short(), "gossip membership stopped");
        }
    }

    /// Changes the local record and/or its cordon flag, publishing the result
    /// to chitchat (and the event locally) if the record changed.
    async fn change_local(&self, node: Option<Node>, cordon: Option<bool>) -> Result<Node> {
        let _order = self.publishing.lock().await;
        let (record, value) = {
            let mut state = self.shared.lock();
            if state.shut_down {
                return Err(ClusterError::ShutDown);
            }
            let node = node.unwrap_or_else(|| state.local_raw().clone());
            let record = state.local_with(&node, cordon);
            if record == state.local() {
                state.set_local(node, cordon);
                return Ok(record);
            }
            let value = encode_local(
                &self.key,
                &self.config,
                &self.chitchat_id,
                record.clone(),
                state.local_seq() + 1,
            )?;
            if let Some(event) = state.set_local(node, cordon) {
                self.shared.publish(event);
            }
            (record, value)
        };
        self.chitchat
            .lock()
            .await
            .self_node_state()
            .set(RECORD_KEY, value);
        Ok(record)
    }

    fn ensure_running(&self) -> Result<()> {
        if self.shared.lock().shut_down {
            Err(ClusterError::ShutDown)
        } else {
            Ok(())
        }
    }
}

/// Encodes and signs the local record `node` with sequence number `seq`.
fn encode_local(
    key: &SigningKey,
    config: &GossipConfig,
    chitchat_id: &ChitchatId,
    node: Node,
    seq: u64,
) -> Result<String> {
    let body = RecordBody {
        node,
        generation: config.generation,
        seq,
    };
    record::encode(key, &config.cluster_id, chitchat_id, &body)
        .map_err(|e| ClusterError::RecordEncoding(e.to_string()))
}

impl Drop for ChitchatClusterManager {
    fn drop(&mut self) {
        // The membership task stops; dropping the chitchat handle closes its
        // command channel, which stops the gossip server.
        self.cancel.cancel();
    }
}

#[async_trait]
impl ClusterManager for ChitchatClusterManager {
    /// Gossip runs from [`ChitchatClusterManager::start`]: this only checks
    /// that it still does. Idempotent.
    async fn initialize(&self) -> Result<()> {
        self.ensure_running()
    }

    async fn local_node(&self) -> Result<Node> {
        Ok(self.shared.lock().local())
    }

    async fn get_node(&self, id: &NodeId) -> Result<Option<Node>> {
        Ok(self.shared.lock().get(id))
    }

    /// The local node first, then every other member, `Down` ones included.
    async fn list_nodes(&self) -> Result<Vec<Node>> {
        Ok(self.shared.lock().list())
    }

    /// The cordon is kept by this manager and applied over every record it
    /// answers with; for the local node it is also published. Emits
    /// `NodeUpdated` only if the flag changes.
    async fn set_unschedulable(&self, id: &NodeId, unschedulable: bool) -> Result<Node> {
        if *id == self.local_id {
            return self.change_local(None, Some(unschedulable)).await;
        }
        let mut state = self.shared.lock();
        if state.shut_down {
            return Err(ClusterError::ShutDown);
        }
        let (node, event) = state
            .cordon_member(id, unschedulable)
            .ok_or(ClusterError::UnknownNode(*id))?;
        if let Some(event) = event {
            self.shared.publish(event);
        }
        Ok(node)
    }

    fn subscribe_to_events(&self) -> broadcast::Receiver<ClusterEvent> {
        self.shared.events.subscribe()
    }

    /// The pinned keys (the configuration's) and the control planes on the
    /// member list they signed.
    fn member_list(&self) -> Option<orchestrator_shared_types::admission::MemberList> {
        self.shared.lock().member_list.clone()
    }

    fn pinned_control_planes(&self) -> Vec<NodeId> {
        let listed = self.shared.lock().control_planes.clone();
        if listed.is_empty() {
            self.config.control_planes.clone()
        } else {
            listed
        }
    }

    /// Every member with its gossip address, generation and liveness.
    async fn peers(&self) -> Result<Vec<Peer>> {
        Ok(self.shared.lock().peers())
    }

    /// Sets `key` in this node's chitchat state with a time to live: it is
    /// visible to every member until chitchat's deletion grace (an hour)
    /// passes, then garbage-collected everywhere.
    async fn publish(&self, key: &str, value: &str) -> Result<bool> {
        self.ensure_running()?;
        check_published(key, value).map_err(|reason| ClusterError::Publish {
            key: key.chars().take(64).collect(),
            reason,
        })?;
        self.chitchat
            .lock()
            .await
            .self_node_state()
            .set_with_ttl(key, value);
        Ok(true)
    }

    /// Every other node's live keys under `prefix`; node states whose
    /// chitchat id is not a node id are skipped.
    async fn gossiped(&self, prefix: &str) -> Result<Vec<Gossiped>> {
        let admitted = self.shared.lock().admitted.clone();
        let chitchat = self.chitchat.lock().await;
        let mut out = Vec::new();
        for (id, state) in chitchat.node_states() {
            if *id == self.chitchat_id {
                continue;
            }
            let Ok(node) = id.node_id.parse::<NodeId>() else {
                continue;
            };
            if admitted.as_ref().is_some_and(|set| !set.contains(&node)) {
                // Not a member: what it publishes is nobody's business.
                continue;
            }
            out.extend(state.iter_prefix(prefix).map(|(key, v)| Gossiped {
                node,
                key: key.to_owned(),
                value: v.value.clone(),
            }));
        }
        Ok(out)
    }
}

/// Whether `key` and `value` may be published: `"<prefix>:<name>"` of at most
/// 256 printable ASCII characters (never the record's key), and a value of at
/// most [`MAX_GOSSIP_VALUE`] bytes.
fn check_published(key: &str, value: &str) -> std::result::Result<(), String> {
    let Some((prefix, name)) = key.split_once(':') else {
        return Err("a key is \"<prefix>:<name>\"".into());
    };
    if prefix.is_empty() || name.is_empty() {
        return Err("a key is \"<prefix>:<name>\", both non-empty".into());
    }
    if key.len() > 256 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a key is at most 256 printable ASCII characters".into());
    }
    if key == RECORD_KEY {
        return Err("that key holds the node record".into());
    }
    if value.len() > MAX_GOSSIP_VALUE {
        return Err(format!(
            "the value has {} bytes, more than {MAX_GOSSIP_VALUE}",
            value.len()
        ));
    }
    Ok(())
}
