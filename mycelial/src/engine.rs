//! [`Reputation`]: the evidence log plus what is computed from it, as the
//! scheduler ([`TrustSource`]), the API (`/nodes/{id}/reputation`,
//! [`Components`]) and the dashboard ([`NetworkHealth`]) ask for it.
//!
//! Everything is computed locally from the log at a time the caller passes in
//! (or sets with [`Reputation::set_now`] for [`TrustSource::standings`]), and
//! cached until the log grows or the time changes: node components once per
//! node, the attestation graph once, and each user's trust vector once per
//! (user, sorted seeds) — so a scheduler asking for every workload of one
//! user computes the user's trust once.

pub use orchestrator_shared_types::health::{network_health, NetworkHealth, BOOTSTRAP_DAYS};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use orchestrator_shared_types::{Node, NodeId, PublicKey};
use serde::{Deserialize, Serialize};

use crate::evidence::{Entry, EvidenceLog, Rejected};
use crate::reputation::NodeComponents;
use crate::trust::{qualifying_attesters, TrustGraph, TrustVector};
use crate::{NodeStanding, TrustSource};

/// Per-user trust vectors kept at most (the cache is emptied beyond).
const MAX_CACHED_USERS: usize = 1024;

/// A node's reputation as one user sees it (`/nodes/{id}/reputation`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Components {
    /// U, 0–1.
    pub uptime: f64,
    /// R, 0–1.
    pub reliability: f64,
    /// H, 0–1.
    pub honesty: f64,
    /// A, 0–1.
    pub age: f64,
    /// T̂ of the node's operator for this user, 0–1.
    pub attestation_trust: f64,
    /// `C = U·R·H·(0.65 + 0.35·max(A, T̂))`, 0–1.
    pub composite: f64,
    /// The active days A comes from.
    pub active_days: u32,
    /// Qualifying attestations of the node's operator, for this user.
    pub qualifying_attestations: u32,
}

/// What is cached for one user: trust, and qualifying attestations per
/// operator (filled as asked).
#[derive(Debug)]
struct UserTrust {
    vector: Arc<TrustVector>,
    qualifying: HashMap<PublicKey, u32>,
}

/// Everything computed from one (log length, now).
#[derive(Debug, Default)]
struct Cache {
    key: Option<(usize, DateTime<Utc>)>,
    nodes: HashMap<NodeId, NodeComponents>,
    graph: Option<Arc<TrustGraph>>,
    users: HashMap<(PublicKey, Vec<PublicKey>), UserTrust>,
}

impl Cache {
    /// Empties the cache unless it was computed for `key`.
    fn at(&mut self, key: (usize, DateTime<Utc>)) -> &mut Self {
        if self.key != Some(key) {
            *self = Self {
                key: Some(key),
                ..Self::default()
            };
        }
        self
    }

    fn node(&mut self, log: &EvidenceLog, node: &NodeId, now: DateTime<Utc>) -> NodeComponents {
        node_components(&mut self.nodes, log, node, now)
    }

    fn graph(&mut self, log: &EvidenceLog, now: DateTime<Utc>) -> Arc<TrustGraph> {
        if let Some(g) = &self.graph {
            return Arc::clone(g);
        }
        let graph = Arc::new(TrustGraph::from_log(log, now, |op| {
            mean_reliability(&mut self.nodes, log, op, now)
        }));
        self.graph = Some(Arc::clone(&graph));
        graph
    }

    fn user(
        &mut self,
        log: &EvidenceLog,
        user: &PublicKey,
        trusted: &[PublicKey],
        now: DateTime<Utc>,
    ) -> &mut UserTrust {
        let mut seeds = trusted.to_vec();
        seeds.sort_unstable();
        seeds.dedup();
        let key = (*user, seeds);
        let graph = self.graph(log, now);
        if self.users.len() >= MAX_CACHED_USERS && !self.users.contains_key(&key) {
            self.users.clear();
        }
        self.users
            .entry(key)
            .or_insert_with_key(|(user, seeds)| UserTrust {
                vector: Arc::new(graph.personalised(user, seeds)),
                qualifying: HashMap::new(),
            })
    }
}

impl UserTrust {
    fn qualifying(&mut self, log: &EvidenceLog, operator: &PublicKey, now: DateTime<Utc>) -> u32 {
        let vector = &self.vector;
        *self.qualifying.entry(*operator).or_insert_with(|| {
            let n = qualifying_attesters(log, vector, operator, now).len();
            u32::try_from(n).unwrap_or(u32::MAX)
        })
    }
}

/// A node's components, computed once per cache key.
fn node_components(
    nodes: &mut HashMap<NodeId, NodeComponents>,
    log: &EvidenceLog,
    node: &NodeId,
    now: DateTime<Utc>,
) -> NodeComponents {
    *nodes.entry(*node).or_insert_with(|| {
        log.history(node)
            .map_or(NodeComponents::PRIOR, |h| h.components(now))
    })
}

/// `R̄` of an operator: the mean reliability of its registered nodes (0.5,
/// the prior, when it has none).
fn mean_reliability(
    nodes: &mut HashMap<NodeId, NodeComponents>,
    log: &EvidenceLog,
    operator: &PublicKey,
    now: DateTime<Utc>,
) -> f64 {
    let Some(record) = log.operator(operator).filter(|r| !r.nodes.is_empty()) else {
        return NodeComponents::PRIOR.reliability;
    };
    let sum: f64 = record
        .nodes
        .iter()
        .map(|n| node_components(nodes, log, n, now).reliability)
        .sum();
    sum / record.nodes.len() as f64
}

/// Reputation from the evidence log (see the module doc).
#[derive(Debug)]
pub struct Reputation {
    log: RwLock<EvidenceLog>,
    now: RwLock<DateTime<Utc>>,
    cache: Mutex<Cache>,
}

impl Reputation {
    /// An engine with an empty log, at time `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self::with_log(EvidenceLog::new(), now)
    }

    /// An engine over an existing log (e.g. replayed from storage).
    pub fn with_log(log: EvidenceLog, now: DateTime<Utc>) -> Self {
        Self {
            log: RwLock::new(log),
            now: RwLock::new(now),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Sets the time [`TrustSource::standings`] computes at (one scheduler
    /// epoch).
    pub fn set_now(&self, now: DateTime<Utc>) {
        *self.now.write().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// The time set with [`Self::set_now`].
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Verifies and appends an entry received by gossip (observations and
    /// attestations; registrations are refused): see [`EvidenceLog::receive`].
    pub fn receive(&self, entry: Entry) -> Result<bool, Rejected> {
        self.log_mut().receive(entry)
    }

    /// Verifies and appends a local entry (or one replayed from storage):
    /// see [`EvidenceLog::append`].
    pub fn append(&self, entry: Entry) -> Result<bool, Rejected> {
        self.log_mut().append(entry)
    }

    /// Records a node of the cluster (from membership): see
    /// [`EvidenceLog::register_node`].
    pub fn register_node(
        &self,
        node: NodeId,
        operator: PublicKey,
        joined_at: DateTime<Utc>,
    ) -> Result<bool, Rejected> {
        self.log_mut().register_node(node, operator, joined_at)
    }

    /// Records a cluster node with its ASN label: see [`EvidenceLog::register`].
    pub fn register(&self, node: &Node) -> Result<bool, Rejected> {
        self.log_mut().register(node)
    }

    /// How many entries the log holds.
    pub fn len(&self) -> usize {
        self.log().len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.log().is_empty()
    }

    /// The log's state hash: see [`EvidenceLog::state_hash`].
    pub fn state_hash(&self) -> [u8; 32] {
        self.log().state_hash()
    }

    /// Entries accepted from position `from` on, to gossip to peers.
    pub fn entries_since(&self, from: usize) -> Vec<Entry> {
        self.log().entries_since(from).to_vec()
    }

    /// A copy of the whole log (to persist it, or to seed another replica).
    pub fn snapshot(&self) -> EvidenceLog {
        self.log().clone()
    }

    /// Runs `f` over the log under its read lock, without copying it (keep
    /// `f` short: appends wait meanwhile).
    pub fn read<R>(&self, f: impl FnOnce(&EvidenceLog) -> R) -> R {
        f(&self.log())
    }

    /// `node`'s components as `user` (seeded with its `trusted` operators)
    /// sees them at `now`. A node with no evidence has the priors; one not
    /// registered has no operator, so no attestation trust.
    pub fn components(
        &self,
        user: &PublicKey,
        trusted: &[PublicKey],
        node: &NodeId,
        now: DateTime<Utc>,
    ) -> Components {
        let log = self.log();
        let mut cache = self.cache();
        let cache = cache.at((log.len(), now));
        let c = cache.node(&log, node, now);
        let operator = log.registration(node).map(|r| r.operator);
        let (t_hat, qualifying) = match operator {
            Some(op) => {
                let u = cache.user(&log, user, trusted, now);
                (u.vector.normalised(&op), u.qualifying(&log, &op, now))
            }
            None => (0.0, 0),
        };
        Components {
            uptime: c.uptime,
            reliability: c.reliability,
            honesty: c.honesty,
            age: c.age,
            attestation_trust: t_hat,
            composite: c.composite(t_hat),
            active_days: c.active_days,
            qualifying_attestations: qualifying,
        }
    }

    /// The standing of each of `nodes` (same order) for `user` at `now`; the
    /// operator is the one the [`Node`] names, as the trust rules use it.
    pub fn standings_at(
        &self,
        user: &PublicKey,
        trusted: &[PublicKey],
        nodes: &[Node],
        now: DateTime<Utc>,
    ) -> Vec<NodeStanding> {
        let log = self.log();
        let mut cache = self.cache();
        let cache = cache.at((log.len(), now));
        let components: Vec<NodeComponents> =
            nodes.iter().map(|n| cache.node(&log, &n.id, now)).collect();
        let u = cache.user(&log, user, trusted, now);
        nodes
            .iter()
            .zip(components)
            .map(|(n, c)| NodeStanding {
                composite: c.composite(u.vector.normalised(&n.operator)),
                qualifying_attestations: u.qualifying(&log, &n.operator, now),
            })
            .collect()
    }

    /// `user`'s personalised trust in operators at `now`.
    pub fn trust(
        &self,
        user: &PublicKey,
        trusted: &[PublicKey],
        now: DateTime<Utc>,
    ) -> Arc<TrustVector> {
        let log = self.log();
        let mut cache = self.cache();
        let cache = cache.at((log.len(), now));
        Arc::clone(&cache.user(&log, user, trusted, now).vector)
    }

    /// The attestation graph (normalised local trust) at `now`.
    pub fn graph(&self, now: DateTime<Utc>) -> Arc<TrustGraph> {
        let log = self.log();
        let mut cache = self.cache();
        cache.at((log.len(), now)).graph(&log, now)
    }

    /// The attesters of `operator` that qualify for `user` at `now`.
    pub fn qualifying_attesters(
        &self,
        user: &PublicKey,
        trusted: &[PublicKey],
        operator: &PublicKey,
        now: DateTime<Utc>,
    ) -> Vec<PublicKey> {
        let vector = self.trust(user, trusted, now);
        qualifying_attesters(&self.log(), &vector, operator, now)
    }

    /// Network health of `nodes` at `now`: see [`network_health`].
    pub fn network_health(&self, nodes: &[Node], now: DateTime<Utc>) -> NetworkHealth {
        network_health(nodes, now)
    }

    fn log(&self) -> std::sync::RwLockReadGuard<'_, EvidenceLog> {
        self.log.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn log_mut(&self) -> std::sync::RwLockWriteGuard<'_, EvidenceLog> {
        self.log.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TrustSource for Reputation {
    fn standings(
        &self,
        user: &PublicKey,
        trusted: &[PublicKey],
        nodes: &[Node],
    ) -> Vec<NodeStanding> {
        self.standings_at(user, trusted, nodes, self.now())
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
