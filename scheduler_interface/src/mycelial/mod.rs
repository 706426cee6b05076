//! `MycelialScheduler`: the simple scheduler's filters plus the workload
//! owner's trust rules, then weighted sampling by `C² × fit` with a seeded
//! generator among a bounded sample of the nodes that pass them (MYCELIAL.md
//! §3 "Rules", SPEC §7 and §17).
//!
//! Per `schedule` call, for a workload with trust rules `spec.trust` owned by
//! `owner`:
//!
//! 1. **Hard filters, on a walk** (`walk`, `candidates`). Like the simple
//!    scheduler (and kube-scheduler's `percentageOfNodesToScore`), a call
//!    does not look at every node: it walks round the node list from a
//!    rotating offset (so successive calls begin at different nodes; it
//!    starts at the seed and moves past the nodes each call examined) and
//!    stops once it found [`MycelialSchedulerConfig::sample_size`] candidates
//!    — nodes that pass every hard filter — or examined every node. It walks
//!    in steps of consecutive nodes, sized from the share of candidates so
//!    far. On each node of a step, first the filters that hold for every
//!    instance of the call: readiness, cordon, taints, node selector and
//!    affinity — the simple scheduler's. Then the [`TrustSource`] is asked
//!    for the standings as `owner` sees them of the nodes that passed, and
//!    only of those and the few between them: `standings` takes a slice, so
//!    it is asked once per run of such nodes lying close together in the
//!    list — usually once per step — and the trust rules run
//!    ([`mycelial::rules::check`]) on those nodes. Each node excluded by a rule is counted under the first
//!    rule it breaks. Last, when a node another operator runs passes, the
//!    source is asked once per call for the owner's pledge headroom
//!    ([`TrustSource::pledge_headroom`]; the daemon's answers from the credit
//!    ledger when instances are priced, `None` — unlimited — otherwise); if
//!    it is priced, each such node whose pledge for an instance
//!    ([`TrustSource::pledge_cost`]) exceeds the headroom is excluded (`credit`).
//!    The sample is taken *after* these filters, so a workload whose rules
//!    leave only a few nodes of thousands still finds them: the walk goes on
//!    until it has them, round the whole list if need be.
//! 2. **Per instance** (`room`): on each candidate of the sample, the pledges
//!    of the call so far, then `max_per_node` and resource fit against the
//!    reservations. When fewer than `sample_size` candidates have room for
//!    one more instance (instances of the call filled them), the walk goes on
//!    first until that many do again, or every node was examined. The
//!    headroom is a running budget for the call: each instance placed on a
//!    node of another operator spends its pledge, and from then on the nodes
//!    of other operators whose pledge exceeds what is left are excluded
//!    (`credit`) for the rest of the call; the owner's operator's nodes cost
//!    nothing. Then a draw among the candidates that have room, with
//!    probability proportional to `C² × fit` ([`mycelial::sample::weight`]),
//!    where `C` is the node's composite reputation and `fit` (0–1) the share
//!    of its allocatable left free after placing the instance (mean of cpu
//!    and memory), divided by `1 + n` for `n` untolerated `PreferNoSchedule`
//!    taints.
//!    - **Exploration** (cold start): for a workload without rules, with
//!      probability [`MycelialSchedulerConfig::exploration`] the node is drawn
//!      uniformly among the candidates that have room instead, so nodes
//!      without evidence (`C = 0`) still get work and can earn a reputation.
//!    - When every candidate that has room weighs 0 (a fresh cluster with no
//!      evidence; or only trusted operators' new nodes pass), the draw is
//!      uniform among them: a node that passes every rule is never refused.
//!
//! **Sampling.** So the draw follows `C² × fit` within the sample, not over
//! the whole cluster: a better node is preferred to the others of its
//! sample, and as the offset rotates every node is in some call's sample.
//! Every node that passes is weighed only when the cluster has no more than
//! `sample_size` of them (or `sample_size` is `usize::MAX`). A call costs
//! about `sample_size / (share of nodes that pass)` node checks plus one pass
//! over the sample's weights per instance, not the cluster size. Hard filters
//! are never sampled away: a node is drawn only after it passed all of them,
//! and an instance is refused only after the walk examined every node.
//!
//! **Reasons.** When no node is left — which the walk knows only after it
//! examined every node, so every node is counted — the `NoPlacement` reason
//! names the trust rules with [`mycelial::rules::reason`] (`no node satisfies
//! the owner's trust rules: 3 nodes excluded by trust.min_reputation (needs ≥
//! 0.99)`), nodes priced out by the running budget counted under `credit`
//! with those excluded before the call's first instance, preceded by the
//! simple scheduler's `0/N nodes fit: …` when other filters excluded nodes too.
//!
//! **Binding and determinism.** One `Mutex` over the ledger and the seeded
//! generator is held for the placement part of a call (which never awaits),
//! so concurrent calls never over-commit a node; the walk's first sample is
//! found before it is taken, and the walk goes on under it only when the
//! call's instances fill that sample. Two schedulers with the same seed given
//! the same calls, nodes and standings, one call at a time, decide the same.
//! An instance being placed anew first gives up what it held, for all
//! instances of a call before the first is placed.

mod candidates;
mod room;
mod walk;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ::mycelial::TrustSource;
use async_trait::async_trait;
use orchestrator_shared_types::{InstanceId, Node, NodeId, Resources};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tracing::{debug, instrument};

use crate::simple::filter::Filter;
use crate::simple::ledger::{IdMap, Ledger};
use crate::simple::{check_distinct_instances, lock};
use crate::{Placement, Result, ScheduleDecision, ScheduleRequest, Scheduler};
use room::{Ctx, Room};
use walk::{Scope, Walk};

/// Share of the instances of workloads without trust rules placed uniformly
/// among the nodes that pass, by default (MYCELIAL.md §3: 5 % exploration).
pub const DEFAULT_EXPLORATION: f64 = 0.05;

/// Nodes that pass every hard filter to draw among, by default (see
/// [`MycelialSchedulerConfig::sample_size`]).
pub const DEFAULT_SAMPLE_SIZE: usize = 64;

/// Configuration of a [`MycelialScheduler`].
#[derive(Clone, Debug, PartialEq)]
pub struct MycelialSchedulerConfig {
    /// Seeds the generator that draws nodes: with the same seed, calls, nodes
    /// and standings, two schedulers decide the same.
    pub seed: u64,
    /// Probability (0–1) that an instance of a workload without trust rules
    /// goes to a node drawn uniformly among those that pass rather than by
    /// weight (cold start). Values outside 0–1 are clamped; NaN counts as 0.
    pub exploration: f64,
    /// How many nodes that pass every hard filter (the filters, the trust
    /// rules, credit) and have room for the instance each draw is made
    /// among, at least (the counterpart of the simple scheduler's
    /// [`SimpleSchedulerConfig::sample_size`](crate::SimpleSchedulerConfig::sample_size)):
    /// the walk stops once it found that many, or examined every node. Larger
    /// samples follow `C² × fit` over more of the cluster and cost
    /// proportionally more; [`DEFAULT_SAMPLE_SIZE`] by default; `usize::MAX`
    /// weighs every node that passes (exhaustive); 0 counts as 1.
    pub sample_size: usize,
}

impl MycelialSchedulerConfig {
    /// The default exploration with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            exploration: DEFAULT_EXPLORATION,
            sample_size: DEFAULT_SAMPLE_SIZE,
        }
    }

    /// The default exploration with seed 0, for reproducible tests.
    pub fn for_test() -> Self {
        Self::with_seed(0)
    }
}

/// The reservations and the generator, under one lock.
struct State {
    ledger: Ledger,
    rng: StdRng,
}

/// The mycelial scheduler: filters, trust rules, then a seeded draw weighted
/// by `C² × fit` (see the module docs).
pub struct MycelialScheduler {
    exploration: f64,
    sample_size: usize,
    /// Where the next call's walk starts, modulo the number of nodes.
    next_start: AtomicU64,
    trust: Arc<dyn TrustSource>,
    state: Mutex<State>,
}

impl fmt::Debug for MycelialScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MycelialScheduler")
            .field("exploration", &self.exploration)
            .field("sample_size", &self.sample_size)
            .finish_non_exhaustive()
    }
}

impl MycelialScheduler {
    /// A scheduler with `config`, reading standings from `trust`, with
    /// nothing reserved.
    pub fn new(config: MycelialSchedulerConfig, trust: Arc<dyn TrustSource>) -> Self {
        let exploration = if config.exploration.is_nan() {
            0.0
        } else {
            config.exploration.clamp(0.0, 1.0)
        };
        Self {
            exploration,
            sample_size: config.sample_size.max(1),
            // Like the generator, from the seed: the same seed walks the same.
            next_start: AtomicU64::new(config.seed),
            trust,
            state: Mutex::new(State {
                ledger: Ledger::default(),
                rng: StdRng::seed_from_u64(config.seed),
            }),
        }
    }

    /// The whole pipeline, synchronously. The walk finds a first sample
    /// before the reservations are locked; it goes on under the lock only
    /// when instances of the call fill the sample.
    fn schedule_now(&self, req: &ScheduleRequest, nodes: &[Node]) -> Result<Vec<ScheduleDecision>> {
        check_distinct_instances(req)?;
        if req.instances.is_empty() {
            return Ok(Vec::new());
        }
        let workload = &req.workload;
        let spec = &workload.spec;
        let rules = &spec.trust;
        let request = spec.instance_request();
        let host_ports = spec.host_ports();
        let filter = Filter::new(&spec.placement, request, &host_ports, spec.network_mode());
        let scope = Scope {
            nodes,
            filter: &filter,
            rules,
            owner: &workload.owner,
            cpu_millis: request.cpu_millis,
            trust: &*self.trust,
        };
        let mut walk = Walk::new(scope, self.next_start.load(Ordering::Relaxed));
        walk.gather(self.sample_size);
        let first_sample = walk.examined();
        self.next_start
            .fetch_add(first_sample as u64, Ordering::Relaxed);
        let explore = if rules.is_empty() {
            self.exploration
        } else {
            0.0
        };
        let mut counts: IdMap<NodeId, u32> = IdMap::default();
        for (_, node) in &req.existing {
            *counts.entry(*node).or_insert(0) += 1;
        }

        let mut state = lock(&self.state);
        let State { ledger, rng } = &mut *state;
        for &instance in &req.instances {
            ledger.release(instance);
        }
        // What a placement changes (the reservations, the counts) is lent
        // anew to each look at the room.
        macro_rules! ctx {
            () => {
                &Ctx {
                    nodes,
                    filter: &filter,
                    request,
                    ledger,
                    counts: &counts,
                }
            };
        }
        let mut room = Room::new(&walk.found.eligible, ctx!(), walk.headroom());
        let mut decisions = Vec::with_capacity(req.instances.len());
        // Within a call reservations only grow and the pledge budget only
        // shrinks, so once nothing fits, nothing fits for the remaining
        // instances either.
        let mut no_room: Option<String> = None;
        for &instance in &req.instances {
            if let Some(reason) = &no_room {
                decisions.push(ScheduleDecision::NoPlacement(reason.clone()));
                continue;
            }
            // Instances placed fill the sample: walk on until it again holds
            // `sample_size` nodes one more instance fits, or every node was
            // examined (so a refusal counts every node in its reason).
            while room.feasible() < self.sample_size && !walk.done() {
                let from = walk.found.eligible.len();
                walk.gather(self.sample_size - room.feasible());
                room.extend(&walk.found.eligible[from..], ctx!(), walk.headroom());
            }
            match room.draw(rng, explore) {
                Some(k) => {
                    let node = nodes[walk.found.eligible[k].node].id;
                    ledger.bind(instance, node, request, &host_ports);
                    *counts.entry(node).or_insert(0) += 1;
                    room.placed(k, &walk.found.eligible, ctx!());
                    decisions.push(ScheduleDecision::AssignNode(node));
                }
                None => {
                    // Only a walk round every node finds no room at all.
                    debug_assert!(walk.done());
                    let found = &walk.found;
                    let filtered = room.exclusions(found.filtered);
                    let reason = found.reason(rules, &filtered, room.priced_out(), nodes.len());
                    debug!(%instance, %reason, "no node fits");
                    decisions.push(ScheduleDecision::NoPlacement(reason.clone()));
                    no_room = Some(reason);
                }
            }
        }
        drop(state);
        let more = walk.examined() - first_sample;
        if more > 0 {
            self.next_start.fetch_add(more as u64, Ordering::Relaxed);
        }
        Ok(decisions)
    }
}

#[async_trait]
impl Scheduler for MycelialScheduler {
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
        self.schedule_now(req, nodes)
    }

    fn release(&self, instance: InstanceId) {
        lock(&self.state).ledger.release(instance);
    }

    fn record_placements(&self, placements: &[Placement]) {
        let mut state = lock(&self.state);
        for p in placements {
            state
                .ledger
                .bind(p.instance, p.node, p.resources, &p.host_ports);
        }
    }

    fn reserved(&self, node: &NodeId) -> Resources {
        lock(&self.state).ledger.reserved(node)
    }
}
