//! `SimpleScheduler`: Filter → Score → Bind over a bounded sample of nodes.
//!
//! - `filter`: readiness, cordon, taints, node selector and affinity,
//!   `max_per_node`, resource fit; each exclusion is counted for the reason.
//! - `score`: least- or most-allocated, a workload spread term, a penalty
//!   for untolerated `PreferNoSchedule` taints.
//! - `ledger`: the reservations every bound instance holds.
//!
//! **Sampling.** Like kube-scheduler's `percentageOfNodesToScore`, an instance
//! does not look at every node: the walk starts at a rotating offset (so
//! successive instances and calls begin at different nodes), goes round the
//! node list, and stops once [`SimpleSchedulerConfig::sample_size`] feasible
//! nodes are found (or every node was checked); the best-scored of those wins,
//! the first found on a tie. The offset then moves past the nodes examined.
//! Cost per instance is therefore about `sample_size / feasible share` node
//! checks, not the cluster size. Only when nothing fits is every node checked,
//! which gives the `NoPlacement` reason a count for every node.
//!
//! **Binding.** One `Mutex` over the ledger is held for a whole `schedule`
//! call (which never awaits), so two concurrent calls cannot both take the last
//! room on a node.

pub(crate) mod filter;
pub(crate) mod ledger;
pub(crate) mod score;

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use orchestrator_shared_types::{InstanceId, Node, NodeId, Resources};
use tracing::{debug, instrument};

use crate::{Placement, Result, ScheduleDecision, ScheduleRequest, Scheduler, SchedulerError};
use filter::{Exclusions, Filter};
use ledger::{IdHasher, IdMap, Ledger};
use score::Scorer;

/// Feasible nodes to find before scoring, by default.
pub const DEFAULT_SAMPLE_SIZE: usize = 64;

/// Score points an untolerated `PreferNoSchedule` taint costs a node (the
/// resource and spread terms each range over 0–100).
pub const PREFER_NO_SCHEDULE_PENALTY: f64 = 100.0;

/// How free resources turn into a score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScoringStrategy {
    /// Least-allocated: prefer the node with the largest free fraction after
    /// placing the instance, spreading load over the cluster.
    #[default]
    Spread,
    /// Most-allocated: prefer the fullest node that still fits, keeping other
    /// nodes empty (for scale-down or big instances later).
    BinPack,
}

impl ScoringStrategy {
    /// Weight of the workload spread term when the configuration gives none:
    /// 1 for `Spread` (replicas go to distinct nodes), 0 for `BinPack` (which
    /// packs replicas together, as a most-allocated strategy should).
    pub fn default_spread_weight(self) -> f64 {
        match self {
            ScoringStrategy::Spread => 1.0,
            ScoringStrategy::BinPack => 0.0,
        }
    }
}

/// Configuration of a [`SimpleScheduler`].
#[derive(Clone, Debug, PartialEq)]
pub struct SimpleSchedulerConfig {
    /// Spread (least-allocated, the default) or bin-pack (most-allocated).
    pub strategy: ScoringStrategy,
    /// How many *feasible* nodes to find before scoring, per instance (the
    /// counterpart of kube-scheduler's `percentageOfNodesToScore`). Larger
    /// samples find slightly better nodes and cost proportionally more; 64 by
    /// default; `usize::MAX` scores every node (exhaustive); 0 counts as 1.
    pub sample_size: usize,
    /// Where the rotating start offset begins; `None` picks a random one. With
    /// a seed, the same calls on the same nodes give the same decisions.
    pub seed: Option<u64>,
    /// Weight of the term that prefers nodes holding fewer instances of the
    /// same workload (0–100 points, times this); `None` takes
    /// [`ScoringStrategy::default_spread_weight`].
    pub spread_weight: Option<f64>,
}

impl Default for SimpleSchedulerConfig {
    fn default() -> Self {
        Self {
            strategy: ScoringStrategy::Spread,
            sample_size: DEFAULT_SAMPLE_SIZE,
            seed: None,
            spread_weight: None,
        }
    }
}

impl SimpleSchedulerConfig {
    /// The default configuration with a fixed seed, for reproducible tests.
    pub fn for_test() -> Self {
        Self {
            seed: Some(0),
            ..Self::default()
        }
    }

    /// The default configuration with `strategy`.
    pub fn with_strategy(strategy: ScoringStrategy) -> Self {
        Self {
            strategy,
            ..Self::default()
        }
    }
}

/// The simple scheduler: Filter → Score → Bind with a bounded sample of nodes
/// and an in-memory ledger of reservations (see the module docs).
#[derive(Debug)]
pub struct SimpleScheduler {
    scorer: Scorer,
    sample_size: usize,
    /// Where the next walk starts, modulo the number of nodes.
    next_start: AtomicU64,
    ledger: Mutex<Ledger>,
}

impl SimpleScheduler {
    /// A scheduler with `config` and nothing reserved.
    pub fn new(config: SimpleSchedulerConfig) -> Self {
        let start = config.seed.unwrap_or_else(rand::random);
        Self {
            scorer: Scorer {
                strategy: config.strategy,
                spread_weight: config
                    .spread_weight
                    .unwrap_or_else(|| config.strategy.default_spread_weight()),
            },
            sample_size: config.sample_size.max(1),
            next_start: AtomicU64::new(start),
            ledger: Mutex::new(Ledger::default()),
        }
    }

    /// The ledger (see [`lock`] on poisoning).
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    /// The whole pipeline, synchronously, under the ledger lock.
    fn schedule_locked(
        &self,
        req: &ScheduleRequest,
        nodes: &[Node],
    ) -> Result<Vec<ScheduleDecision>> {
        check_distinct_instances(req)?;
        let spec = &req.workload.spec;
        let request = spec.instance_request();
        let host_ports = spec.host_ports();
        // The owner's trust rules are hard filters here too: this scheduler
        // does not weigh reputation, so a rule that needs it is refused
        // rather than ignored.
        let filter = Filter::new(&spec.placement, request, &host_ports, spec.network_mode())
            .with_trust(&spec.trust);
        // Instances of this workload per node: existing, then placed here.
        let mut counts: IdMap<NodeId, u32> = IdMap::default();
        for (_, node) in &req.existing {
            *counts.entry(*node).or_insert(0) += 1;
        }

        let mut ledger = self.ledger();
        let mut decisions = Vec::with_capacity(req.instances.len());
        let mut no_room: Option<String> = None;
        for &instance in &req.instances {
            // Placing an instance anew replaces whatever it held.
            if ledger.contains(&instance) {
                ledger.release(instance);
            }
            // Within a call reservations only grow, so once nothing fits,
            // nothing fits for the remaining instances either.
            if let Some(reason) = &no_room {
                decisions.push(ScheduleDecision::NoPlacement(reason.clone()));
                continue;
            }
            match self.pick(nodes, &filter, request, &ledger, &counts) {
                Ok(i) => {
                    let node = nodes[i].id;
                    ledger.bind(instance, node, request, &host_ports);
                    *counts.entry(node).or_insert(0) += 1;
                    decisions.push(ScheduleDecision::AssignNode(node));
                }
                Err(exclusions) => {
                    let reason = exclusions.reason(nodes.len());
                    debug!(%instance, %reason, "no node fits");
                    decisions.push(ScheduleDecision::NoPlacement(reason.clone()));
                    no_room = Some(reason);
                }
            }
        }
        Ok(decisions)
    }

    /// Filters and scores nodes from the rotating offset until `sample_size`
    /// feasible ones were seen; the index of the best, or why none fits.
    #[inline]
    fn pick(
        &self,
        nodes: &[Node],
        filter: &Filter<'_>,
        request: Resources,
        ledger: &Ledger,
        counts: &IdMap<NodeId, u32>,
    ) -> std::result::Result<usize, Exclusions> {
        let mut exclusions = Exclusions::default();
        if nodes.is_empty() {
            return Err(exclusions);
        }
        let n = nodes.len();
        let start = (self.next_start.load(Ordering::Relaxed) % n as u64) as usize;
        let mut best: Option<(usize, f64)> = None;
        let mut feasible = 0usize;
        let mut examined = 0usize;
        for i in (start..n).chain(0..start) {
            let node = &nodes[i];
            examined += 1;
            let count = || {
                if counts.is_empty() {
                    0
                } else {
                    counts.get(&node.id).copied().unwrap_or(0)
                }
            };
            let in_use = |ports: &[_]| ledger.ports_in_use(&node.id, ports);
            match filter.check(node, || ledger.reserved(&node.id), count, in_use) {
                Ok(f) => {
                    let s = self.scorer.score(node.resources_allocatable, request, &f);
                    if best.is_none_or(|(_, b)| s > b) {
                        best = Some((i, s));
                    }
                    feasible += 1;
                    if feasible >= self.sample_size {
                        break;
                    }
                }
                Err(e) => exclusions.add(e),
            }
        }
        self.next_start
            .fetch_add(examined as u64, Ordering::Relaxed);
        best.map(|(i, _)| i).ok_or(exclusions)
    }
}

/// Takes `m`. What the schedulers lock (a ledger, a generator) is never left
/// half-updated by a panic (ledger updates are map inserts and removes of
/// `Copy` values), so a lock poisoned by a panic elsewhere in a holder still
/// guards consistent state and is taken over.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fails when an instance appears twice in `req` (each must get one decision
/// and one reservation).
pub(crate) fn check_distinct_instances(req: &ScheduleRequest) -> Result<()> {
    if req.instances.len() > 1 {
        let mut seen = HashSet::with_capacity_and_hasher(
            req.instances.len(),
            BuildHasherDefault::<IdHasher>::default(),
        );
        if let Some(dup) = req.instances.iter().find(|i| !seen.insert(**i)) {
            return Err(SchedulerError::InvalidRequest {
                workload: req.workload.name().to_owned(),
                reason: format!("instance {dup} appears twice"),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl Scheduler for SimpleScheduler {
    #[instrument(
        level = "debug",
        skip_all,
        fields(workload = %req.workload.id, instances = req.instances.len(), nodes = nodes.len())
    )]
    async fn schedule(
        &self,
        req: &ScheduleRequest,
        nodes: &[Node],
    ) -> Result<Vec<ScheduleDecision>> {
        self.schedule_locked(req, nodes)
    }

    fn release(&self, instance: InstanceId) {
        self.ledger().release(instance);
    }

    fn record_placements(&self, placements: &[Placement]) {
        let mut ledger = self.ledger();
        for p in placements {
            ledger.bind(p.instance, p.node, p.resources, &p.host_ports);
        }
    }

    fn reserved(&self, node: &NodeId) -> Resources {
        self.ledger().reserved(node)
    }
}
