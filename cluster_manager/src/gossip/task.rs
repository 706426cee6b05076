//! The membership task: follows chitchat's cluster state, verifies the
//! records it carries (each version once, operator claims included), and
//! turns changes into events.
//!
//! It wakes on every change of chitchat's live-nodes watch and on a tick of
//! the gossip interval (a node can turn dead without a watch notification),
//! takes a snapshot of the node states under chitchat's lock, verifies new
//! record versions outside it, and applies the result under the membership
//! lock. A node chitchat calls dead stays alive until a probe confirms it
//! ([`super::probe`]); probe results wake the task too.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chitchat::{Chitchat, ChitchatId, Version};
use orchestrator_shared_types::admission::{JoinRole, MemberList, MEMBER_LIST_KEY};
use orchestrator_shared_types::NodeId;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use super::membership::{select, Candidate};
use super::probe::{self, Outcome, Suspicion};
use super::record::{self, RecordBody, RECORD_KEY};
use super::{GossipConfig, Shared};

/// Least time a chitchat id that was never seen alive stays hidden: a node
/// that just joined is known before the failure detector has the two
/// heartbeats it needs to call it alive, and must not show `Down` meanwhile.
const MIN_JOIN_GRACE: Duration = Duration::from_secs(1);
/// The join grace in gossip rounds, when that is longer.
const JOIN_GRACE_ROUNDS: u32 = 10;

/// What the task remembers of one chitchat id.
struct Seen {
    /// Version of the record key last looked at, if there was one.
    version: Option<Version>,
    /// The last record that verified; a record that does not verify leaves it.
    record: Option<Arc<RecordBody>>,
    /// When the id was first seen in the cluster state.
    first_seen: Instant,
    /// Whether the failure detector ever called it alive.
    seen_live: bool,
    /// Set while chitchat calls it dead and this node checks for itself.
    suspicion: Option<Suspicion>,
}

/// One chitchat id as read under chitchat's lock.
struct Snapshot {
    id: ChitchatId,
    live: bool,
    version: Option<Version>,
    /// The record value, only if its version was not looked at yet.
    value: Option<String>,
}

/// The state of the membership task.
pub(super) struct MembershipTask {
    chitchat: Arc<tokio::sync::Mutex<Chitchat>>,
    shared: Arc<Shared>,
    cluster_id: String,
    self_id: ChitchatId,
    local_id: NodeId,
    interval: Duration,
    join_grace: Duration,
    seen: HashMap<ChitchatId, Seen>,
    probe_tx: mpsc::UnboundedSender<(ChitchatId, Outcome)>,
    probe_rx: mpsc::UnboundedReceiver<(ChitchatId, Outcome)>,
    /// Pinned control-plane keys; empty: no admission gate.
    pinned: Vec<NodeId>,
    /// The newest member list that verified under a pinned key.
    list: Option<MemberList>,
    /// Version of the member-list key last looked at, per chitchat id.
    lists_seen: HashMap<ChitchatId, Version>,
}

/// A member list as read under chitchat's lock, not yet verified.
struct ListSnapshot {
    id: ChitchatId,
    version: Version,
    value: String,
}

impl MembershipTask {
    pub(super) fn new(
        chitchat: Arc<tokio::sync::Mutex<Chitchat>>,
        shared: Arc<Shared>,
        config: &GossipConfig,
        self_id: ChitchatId,
        local_id: NodeId,
    ) -> Self {
        let (probe_tx, probe_rx) = mpsc::unbounded_channel();
        Self {
            probe_tx,
            probe_rx,
            chitchat,
            shared,
            cluster_id: config.cluster_id.clone(),
            self_id,
            local_id,
            interval: config.gossip_interval,
            join_grace: MIN_JOIN_GRACE.max(config.gossip_interval * JOIN_GRACE_ROUNDS),
            seen: HashMap::new(),
            pinned: config.control_planes.clone(),
            list: None,
            lists_seen: HashMap::new(),
        }
    }

    /// Runs until `cancel` or until the gossip server (`server_done`) stops.
    pub(super) async fn run(
        mut self,
        cancel: CancellationToken,
        server_done: impl Future<Output = anyhow::Result<()>>,
    ) {
        let mut live_nodes = self.chitchat.lock().await.live_nodes_watcher();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(server_done);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                done = &mut server_done => {
                    match done {
                        Ok(()) => debug!(node = %self.local_id.short(), "gossip server stopped"),
                        Err(e) => error!(node = %self.local_id.short(), error = format!("{e:#}"),
                            "gossip server died; membership frozen"),
                    }
                    self.shared.lock().shut_down = true;
                    break;
                }
                Some((id, outcome)) = self.probe_rx.recv() => {
                    if let Some(s) = self.seen.get_mut(&id).and_then(|s| s.suspicion.as_mut()) {
                        s.record(outcome, Instant::now());
                        if s.confirmed {
                            warn!(node = %id.node_id, generation = id.generation_id,
                                "peer declared dead by gossip and confirmed by a probe");
                        }
                    }
                }
                changed = live_nodes.changed() => {
                    if changed.is_err() {
                        // chitchat is gone (we hold it, so this cannot happen).
                        break;
                    }
                }
                _ = tick.tick() => {}
            }
            self.refresh().await;
        }
    }

    /// Reads chitchat, verifies new records and publishes the difference.
    async fn refresh(&mut self) {
        let now = Instant::now();
        self.take_new_pins();
        let (snapshot, lists) = self.snapshot().await;
        self.follow_lists(lists);
        let present: BTreeSet<ChitchatId> = snapshot.iter().map(|s| s.id.clone()).collect();
        let mut looked = Vec::with_capacity(snapshot.len());
        for snap in snapshot {
            let seen = self.seen.entry(snap.id.clone()).or_insert(Seen {
                version: None,
                record: None,
                first_seen: now,
                seen_live: false,
                suspicion: None,
            });
            seen.version = snap.version;
            seen.seen_live |= snap.live;
            if let (Some(value), Some(version)) = (snap.value, snap.version) {
                match record::verify(&self.cluster_id, &snap.id, &value) {
                    Ok(mut body) => {
                        // Checked once per record version, like the signature.
                        if let Some(claimed) = record::drop_unproven_operator(&mut body.node) {
                            warn!(node = %body.node.id, claimed_operator = %claimed, version,
                                "peer claims an operator without a valid operator proof; \
                                 listed as run by its own key");
                        }
                        seen.record = Some(Arc::new(body));
                    }
                    Err(reason) => {
                        self.shared
                            .counters
                            .rejected_records
                            .fetch_add(1, Ordering::Relaxed);
                        warn!(chitchat_node_id = %snap.id.node_id, generation = snap.id.generation_id,
                            gossip_addr = %snap.id.gossip_advertise_addr, version,
                            value_len = value.len(), reason = %reason,
                            "rejected gossiped node record");
                    }
                }
            }
            looked.push((snap.id, snap.live));
        }
        // Nodes with a generation chitchat calls alive: their dead generations
        // are history, not suspects.
        let live_nodes: HashSet<NodeId> = looked
            .iter()
            .filter(|(_, live)| *live)
            .filter_map(|(id, _)| self.seen.get(id)?.record.as_ref().map(|r| r.node.id))
            .collect();
        let mut candidates = Vec::new();
        for (id, live) in looked {
            let Some(seen) = self.seen.get_mut(&id) else {
                continue;
            };
            let live = if live {
                seen.suspicion = None;
                true
            } else {
                suspect(seen, &id, &live_nodes, &self.probe_tx, now)
            };
            let joined = seen.seen_live || now.duration_since(seen.first_seen) >= self.join_grace;
            if let (Some(body), true) = (&seen.record, joined) {
                candidates.push(Candidate {
                    chitchat_id: id,
                    live,
                    body: Arc::clone(body),
                });
            }
        }
        // Ids chitchat forgot (dead for the grace period) are forgotten here too.
        self.seen.retain(|id, _| present.contains(id));
        self.lists_seen.retain(|id, _| present.contains(id));

        let admitted = self.admitted();
        if let Some(set) = &admitted {
            candidates.retain(|c| set.contains(&c.body.node.id));
        }
        let members = select(candidates, &self.local_id);
        let mut state = self.shared.lock();
        if state.shut_down {
            return;
        }
        state.admitted = admitted;
        state.control_planes = self.control_planes();
        state.member_list.clone_from(&self.list);
        let events = state.replace_members(members);
        // Counted before the events go out, so that whoever sees an event
        // sees the counts that go with it.
        let (live, dead) = state.live_and_dead();
        self.shared
            .counters
            .live_nodes
            .store(live, Ordering::Relaxed);
        self.shared
            .counters
            .dead_nodes
            .store(dead, Ordering::Relaxed);
        for event in events {
            debug!(node = %event.node_id().short(), event = ?event, "membership change");
            self.shared.publish(event);
        }
    }
}

/// Whether a chitchat id the failure detector calls dead still counts as
/// alive, starting a probe when one is due.
fn suspect(
    seen: &mut Seen,
    id: &ChitchatId,
    live_nodes: &HashSet<NodeId>,
    probes: &mpsc::UnboundedSender<(ChitchatId, Outcome)>,
    now: Instant,
) -> bool {
    let Some(record) = seen.record.as_ref() else {
        return false;
    };
    if !seen.seen_live || live_nodes.contains(&record.node.id) || record.node.address.is_empty() {
        seen.suspicion = None;
        return false;
    }
    let s = seen.suspicion.get_or_insert_with(Suspicion::default);
    if s.due(now) {
        s.probing = true;
        s.next_probe = None;
        let (tx, id, address) = (probes.clone(), id.clone(), record.node.address.clone());
        tokio::spawn(async move {
            let outcome = probe::probe(&address).await;
            // The task may have stopped meanwhile: then nobody needs to know.
            let _unheard = tx.send((id, outcome));
        });
    }
    !s.confirmed
}

impl MembershipTask {
    /// Pins the keys pinned since the last round; the member lists seen so
    /// far are looked at again, since one a new key signed may have been
    /// refused before.
    fn take_new_pins(&mut self) {
        let since = self.shared.lock().pinned_since.clone();
        let mut added = false;
        for id in since {
            if !self.pinned.contains(&id) {
                self.pinned.push(id);
                added = true;
            }
        }
        if added {
            debug!(pinned = self.pinned.len(), "control-plane keys pinned");
            self.lists_seen.clear();
        }
    }

    /// With pinned control planes, the nodes that may be members: the
    /// pinned ones and those on the newest verified list.
    fn admitted(&self) -> Option<BTreeSet<NodeId>> {
        if self.pinned.is_empty() {
            return None;
        }
        let listed = self
            .list
            .iter()
            .flat_map(|l| l.members.iter().map(|m| m.node_id));
        Some(self.pinned.iter().copied().chain(listed).collect())
    }

    /// The pinned keys and the control planes a pinned key listed since.
    fn control_planes(&self) -> Vec<NodeId> {
        let mut out = self.pinned.clone();
        if out.is_empty() {
            return out;
        }
        let listed = self.list.iter().flat_map(|l| {
            l.members
                .iter()
                .filter(|m| m.role == JoinRole::ControlPlane)
                .map(|m| m.node_id)
        });
        for id in listed {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// Verifies the member lists not looked at yet and keeps the newest
    /// that a pinned key signed; a forged or older list changes nothing.
    fn follow_lists(&mut self, lists: Vec<ListSnapshot>) {
        for l in lists {
            self.lists_seen.insert(l.id.clone(), l.version);
            match MemberList::verify(&l.value, &self.cluster_id, &self.pinned) {
                Ok(list)
                    if self
                        .list
                        .as_ref()
                        .is_none_or(|cur| list.version > cur.version) =>
                {
                    debug!(
                        version = list.version,
                        members = list.members.len(),
                        "following a newer member list"
                    );
                    self.shared
                        .counters
                        .member_list_version
                        .store(list.version, Ordering::Relaxed);
                    self.list = Some(list);
                }
                Ok(list) => {
                    self.shared
                        .counters
                        .stale_member_lists
                        .fetch_add(1, Ordering::Relaxed);
                    debug!(version = list.version, "ignoring an older member list");
                }
                Err(reason) => {
                    self.shared
                        .counters
                        .rejected_records
                        .fetch_add(1, Ordering::Relaxed);
                    warn!(chitchat_node_id = %l.id.node_id, reason = %reason,
                        "rejected a gossiped member list");
                }
            }
        }
    }

    /// Every other chitchat id with its liveness and, if not looked at yet,
    /// its record, and the member lists not looked at yet (this node's own
    /// included), read under chitchat's lock (no verification there).
    async fn snapshot(&self) -> (Vec<Snapshot>, Vec<ListSnapshot>) {
        let chitchat = self.chitchat.lock().await;
        let lists = if self.pinned.is_empty() {
            Vec::new()
        } else {
            chitchat
                .node_states()
                .iter()
                .filter_map(|(id, state)| {
                    let value = state
                        .get_versioned(MEMBER_LIST_KEY)
                        .filter(|v| !v.is_deleted())?;
                    if self.lists_seen.get(id) == Some(&value.version) {
                        return None;
                    }
                    Some(ListSnapshot {
                        id: id.clone(),
                        version: value.version,
                        value: value.value.clone(),
                    })
                })
                .collect()
        };
        let live: BTreeSet<&ChitchatId> = chitchat.live_nodes().collect();
        let nodes = chitchat
            .node_states()
            .iter()
            .filter(|(id, _)| **id != self.self_id)
            .map(|(id, state)| {
                let record = state
                    .get_versioned(RECORD_KEY)
                    .filter(|value| !value.is_deleted());
                let version = record.map(|value| value.version);
                let known = version.is_some()
                    && self
                        .seen
                        .get(id)
                        .is_some_and(|seen| seen.version == version);
                Snapshot {
                    id: id.clone(),
                    live: live.contains(id),
                    version,
                    value: record.filter(|_| !known).map(|value| value.value.clone()),
                }
            })
            .collect();
        (nodes, lists)
    }
}
