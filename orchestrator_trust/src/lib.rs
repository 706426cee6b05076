//! Reputation in the daemon (issue 7, MYCELIAL.md): the control plane keeps
//! the evidence log — node registrations (first seen by the control plane),
//! observations it signs with its node key (heartbeats answered or missed,
//! instances that reached or missed their desired state), and attestations
//! operators sign — in the StateStore, replays it at start into the
//! [`Reputation`] engine, and hands that engine to the scheduler as its
//! [`mycelial::TrustSource`]. Scores are computed here, never received.
//!
//! - [`TrustService`]: the log, its persistence, and the observation loop.
//! - [`credits`]: the mutual-credit ledger, persisted the same way.
//! - [`gossip`]: evidence published to and received from the other members.
//! - [`pledge`]: holds on the owner's credit while instances run, settled
//!   for what ran.
//! - [`probe`]: honesty probes, benchmark containers measured against what
//!   nodes promise.
//!
//! May depend on the core (its events), the interface crates and `mycelial`
//! (the pure reputation and ledger logic); it reads and writes through
//! `Arc<dyn StateStore>` and never names a backend or speaks HTTP.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cluster_manager_interface::ClusterManager;
use ed25519_dalek::SigningKey;
use mycelial::engine::Reputation;
use mycelial::evidence::{sign_observation, Entry, NodeRegistration, Observation, ObservationKind};
use orchestrator_shared_types::{InstanceStatus, NodeId, NodeStatus};
use state_store_interface::{StateStore, StoreError};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use orchestrator_core::events::ReconcileEvent;

pub mod credits;
pub mod gossip;
pub mod pledge;
pub mod probe;

/// One heartbeat observation per node per this long: U counts answered
/// against missed observations, so sampling once a minute gives the same U
/// as every 5 s for a twelfth of the log (about 1,440 entries per node a
/// day).
const HEARTBEAT_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// How often evidence is gossiped out and read in.
const GOSSIP_PERIOD: Duration = Duration::from_secs(15);

/// How often credit limits are recomputed from the evidence.
const LIMITS_PERIOD: Duration = Duration::from_secs(60);

/// Record kind of an evidence entry (key: 20-digit sequence number).
const EVIDENCE: &str = "evidence";

/// Why the trust service failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record could not be read.
    #[error("stored {kind} record {key} is unreadable: {why}")]
    Corrupt {
        /// Record kind.
        kind: &'static str,
        /// Its key.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// An entry was refused.
    #[error(transparent)]
    Rejected(#[from] mycelial::evidence::Rejected),
}

/// The evidence log of this control plane.
pub struct TrustService {
    engine: Arc<Reputation>,
    store: Arc<dyn StateStore>,
    key: SigningKey,
    me: NodeId,
    next: tokio::sync::Mutex<u64>,
    registered: std::sync::Mutex<HashSet<NodeId>>,
    last_heartbeat: std::sync::Mutex<std::collections::HashMap<NodeId, chrono::DateTime<Utc>>>,
    ledger_id: String,
    /// The credit ledger's authority, when it is not this node's key (the
    /// cluster's, shared by control planes that lead in turn).
    ledger_key: Option<SigningKey>,
    credits: tokio::sync::OnceCell<credits::Credits>,
    outbox: gossip::Outbox,
    inbox: gossip::Inbox,
    pledges: pledge::PledgeConfig,
    probes: Option<(
        Arc<dyn container_runtime_interface::ContainerRuntime>,
        probe::ProbeConfig,
    )>,
    probing: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for TrustService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustService")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl TrustService {
    /// An empty service over `store` (call [`TrustService::load`] once the
    /// store is initialised); `key` signs this node's observations.
    pub fn new(store: Arc<dyn StateStore>, key: SigningKey, ledger_id: impl Into<String>) -> Self {
        let me = NodeId(key.verifying_key().to_bytes());
        Self {
            engine: Arc::new(Reputation::new(Utc::now())),
            store,
            key,
            me,
            next: tokio::sync::Mutex::new(0),
            registered: std::sync::Mutex::new(HashSet::new()),
            last_heartbeat: std::sync::Mutex::new(std::collections::HashMap::new()),
            ledger_id: ledger_id.into(),
            ledger_key: None,
            credits: tokio::sync::OnceCell::new(),
            outbox: gossip::Outbox::default(),
            inbox: gossip::Inbox::default(),
            pledges: pledge::PledgeConfig::default(),
            probes: None,
            probing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Signs the credit ledger's control entries (limits, holds) with
    /// `key` instead of this node's: the authority of a ledger that several
    /// control planes keep in turn must be the same for all of them, or the
    /// next leader could not replay what the last one signed.
    pub fn with_ledger_key(mut self, key: SigningKey) -> Self {
        self.ledger_key = Some(key);
        self
    }

    /// The credit ledger (once [`TrustService::load`] ran).
    pub fn credits(&self) -> Option<&credits::Credits> {
        self.credits.get()
    }

    /// Replays the evidence stored in the store; how many entries.
    pub async fn load(&self) -> Result<usize, TrustError> {
        let records = self.store.list_records(EVIDENCE).await?;
        let mut next = self.next.lock().await;
        for (k, text) in &records {
            let entry: Entry = serde_json::from_str(text).map_err(|e| TrustError::Corrupt {
                kind: EVIDENCE,
                key: k.clone(),
                why: e.to_string(),
            })?;
            if let Entry::Node(reg) = &entry {
                self.registered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(reg.node);
            }
            if let Err(e) = self.engine.append(entry) {
                warn!(record = %k, error = %e, "a stored evidence entry is refused on replay; skipped");
            }
            *next = (*next).max(k.parse::<u64>().unwrap_or(0) + 1);
        }
        self.engine.set_now(Utc::now());
        let authority = self.ledger_key.clone().unwrap_or_else(|| self.key.clone());
        let ledger = credits::Credits::open(Arc::clone(&self.store), authority, &self.ledger_id)
            .await
            .map_err(|e| TrustError::Corrupt {
                kind: mycelial::ledger::RECORD_KIND,
                key: self.ledger_id.clone(),
                why: e.to_string(),
            })?;
        if self.credits.set(ledger).is_err() {
            warn!("the credit ledger was loaded twice; kept the first");
        }
        Ok(records.len())
    }

    /// The reputation engine (the scheduler's trust source).
    pub fn engine(&self) -> &Arc<Reputation> {
        &self.engine
    }

    /// Appends `entry` — made or handed in here — if it verifies and is new,
    /// then stores it and queues it for gossip; whether it was new. An entry
    /// is acknowledged only once stored. This control plane's own heartbeat
    /// observations (one per node a minute) stay in its store: gossiped they
    /// would be a stream no member needs; workers gossip theirs, sampled.
    pub async fn append(&self, entry: Entry) -> Result<bool, TrustError> {
        let heartbeat = matches!(
            &entry,
            Entry::Observation(o) if matches!(o.body.kind, ObservationKind::Heartbeat { .. })
        );
        let gossiped = (!heartbeat).then(|| entry.clone());
        let new = self.add(entry, false).await?;
        if let Some(e) = gossiped.filter(|_| new) {
            self.outbox.push(e);
        }
        Ok(new)
    }

    /// Adds `entry` received by gossip (registrations refused), stored like
    /// [`Self::append`] but not gossiped again: its author publishes it.
    pub async fn receive(&self, entry: Entry) -> Result<bool, TrustError> {
        self.add(entry, true).await
    }

    async fn add(&self, entry: Entry, received: bool) -> Result<bool, TrustError> {
        let mut next = self.next.lock().await;
        let text = serde_json::to_string(&entry).map_err(|e| TrustError::Corrupt {
            kind: EVIDENCE,
            key: "new".into(),
            why: e.to_string(),
        })?;
        let new = if received {
            self.engine.receive(entry)?
        } else {
            self.engine.append(entry)?
        };
        if !new {
            return Ok(false);
        }
        self.store
            .put_record(EVIDENCE, &format!("{:020}", *next), &text)
            .await?;
        *next += 1;
        Ok(true)
    }

    /// Whether `node` is due a heartbeat observation at `now` (one per
    /// [`HEARTBEAT_EVERY`]); if so, counts it as made.
    fn heartbeat_due(&self, node: NodeId, now: chrono::DateTime<Utc>) -> bool {
        let mut last = self
            .last_heartbeat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.get(&node) {
            Some(at) if now - *at < HEARTBEAT_EVERY => false,
            _ => {
                last.insert(node, now);
                true
            }
        }
    }

    fn is_registered(&self, node: &NodeId) -> bool {
        self.registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(node)
    }

    /// One round of observation: registers nodes seen for the first time
    /// (joined = now, as this control plane saw them) and records a heartbeat,
    /// answered or missed, for every other node.
    pub async fn observe(&self, cluster: &dyn ClusterManager) {
        let now = Utc::now();
        self.engine.set_now(now);
        let nodes = match cluster.list_nodes().await {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "listing nodes for reputation");
                return;
            }
        };
        for node in &nodes {
            if !self.is_registered(&node.id) {
                let asn = node.labels.get(mycelial::evidence::ASN_LABEL).cloned();
                let reg = Entry::Node(NodeRegistration {
                    node: node.id,
                    operator: node.operator,
                    joined_at: now,
                    asn,
                });
                match self.append(reg).await {
                    Ok(_) => {
                        self.registered
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(node.id);
                    }
                    Err(e) => {
                        warn!(node = %node.id, error = %e, "registering a node for reputation")
                    }
                }
            }
            if node.id == self.me || !self.heartbeat_due(node.id, now) {
                continue;
            }
            let answered = node.status == NodeStatus::Ready;
            self.observe_node(node.id, ObservationKind::Heartbeat { answered })
                .await;
        }
    }

    async fn observe_node(&self, subject: NodeId, kind: ObservationKind) {
        if subject == self.me {
            return;
        }
        let obs = Observation {
            observer: self.me,
            subject,
            at: Utc::now(),
            kind,
        };
        match sign_observation(&self.key, obs) {
            Ok(signed) => {
                if let Err(e) = self.append(Entry::Observation(signed)).await {
                    debug!(node = %subject, error = %e, "observation not recorded");
                }
            }
            Err(e) => warn!(error = %e, "signing an observation"),
        }
    }

    /// Records what instances did: started (success) or failed (a failure,
    /// charged when the workload runs fine on another node).
    async fn outcome(&self, store: &dyn StateStore, event: &ReconcileEvent) {
        match event {
            ReconcileEvent::InstanceStarted { node, .. } => {
                self.observe_node(
                    *node,
                    ObservationKind::Outcome {
                        success: true,
                        ran_elsewhere: false,
                    },
                )
                .await;
            }
            ReconcileEvent::InstanceStatusChanged {
                workload,
                instance,
                status: InstanceStatus::Failed,
                ..
            } => {
                let Ok(Some(inst)) = store.get_instance(instance).await else {
                    return;
                };
                let others = store
                    .list_instances_by_workload(workload)
                    .await
                    .unwrap_or_default();
                let ran_elsewhere = others
                    .iter()
                    .any(|o| o.node_id != inst.node_id && o.status == InstanceStatus::Running);
                self.observe_node(
                    inst.node_id,
                    ObservationKind::Outcome {
                        success: false,
                        ran_elsewhere,
                    },
                )
                .await;
            }
            _ => {}
        }
    }

    /// Starts a round of honesty probes in the background, unless one runs.
    async fn spawn_probe_round(
        self: &Arc<Self>,
        cluster: &dyn ClusterManager,
        store: &Arc<dyn StateStore>,
    ) {
        use std::sync::atomic::Ordering;
        let nodes = match cluster.list_nodes().await {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "listing nodes to probe");
                return;
            }
        };
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (me, store) = (Arc::clone(self), Arc::clone(store));
        tokio::spawn(async move {
            me.probe_round(store.as_ref(), &nodes).await;
            me.probing.store(false, Ordering::Release);
        });
    }

    /// Observes every `period` and records instance outcomes from `events`
    /// until `cancel` fires.
    pub async fn run(
        self: Arc<Self>,
        cluster: Arc<dyn ClusterManager>,
        store: Arc<dyn StateStore>,
        mut events: broadcast::Receiver<ReconcileEvent>,
        period: Duration,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(period);
        let mut limits = tokio::time::interval(LIMITS_PERIOD);
        let mut gossip = tokio::time::interval(GOSSIP_PERIOD);
        let mut probes = tokio::time::interval(self.probe_period().unwrap_or(Duration::MAX / 4));
        probes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pledges = tokio::time::interval(
            (self.pledges.period / 4).clamp(Duration::from_millis(100), LIMITS_PERIOD),
        );
        let mut lagged: HashSet<()> = HashSet::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => self.observe(cluster.as_ref()).await,
                _ = gossip.tick() => {
                    self.publish_evidence(cluster.as_ref()).await;
                    let got = self.receive_gossip(cluster.as_ref()).await;
                    if got != gossip::Received::default() {
                        debug!(?got, "gossiped evidence read");
                    }
                }
                _ = limits.tick() => {
                    if let Some(c) = self.credits() {
                        c.refresh_limits(&self.engine).await;
                    }
                }
                _ = probes.tick(), if self.probe_period().is_some() => {
                    self.spawn_probe_round(cluster.as_ref(), &store).await;
                }
                _ = pledges.tick() => self.renew_pledges(store.as_ref(), cluster.as_ref()).await,
                event = events.recv() => match event {
                    Ok(e) => {
                        // A node that joined since the last tick: register it
                        // first, or its first outcome would be refused.
                        if let ReconcileEvent::InstanceStarted { node, .. } = &e {
                            if !self.is_registered(node) {
                                self.observe(cluster.as_ref()).await;
                            }
                        }
                        self.outcome(store.as_ref(), &e).await;
                        self.on_pledge_event(store.as_ref(), cluster.as_ref(), &e).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        if lagged.insert(()) {
                            warn!(missed = n, "reputation missed instance events");
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }
}
