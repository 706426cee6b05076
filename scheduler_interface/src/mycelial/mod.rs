//! `MycelialScheduler`: the simple scheduler's filters plus the workload
//! owner's trust rules, then weighted sampling by `C² × fit` with a seeded
//! generator (MYCELIAL.md §3 "Rules", SPEC §7 and §17).
//!
//! Per `schedule` call, for a workload with trust rules `spec.trust` owned by
//! `owner`:
//!
//! 1. **Filters** that hold for every instance of the call (`candidates`):
//!    readiness, cordon, taints, node selector and affinity — the simple
//!    scheduler's. The [`TrustSource`] is asked once for the standings of the
//!    call's nodes as `owner` sees them (for all of them: `standings` takes a
//!    slice of nodes, and copying out those that passed costs more than it
//!    saves), then the trust rules run ([`mycelial::rules::check`]) on the
//!    nodes that passed. Each node excluded by a rule is counted under the
//!    first rule it breaks. Last, when a node another operator runs passes,
//!    the source is asked once for the owner's pledge headroom
//!    ([`TrustSource::pledge_headroom`]; the daemon's answers from the credit
//!    ledger when instances are priced, `None` — unlimited — otherwise); if
//!    it is priced, each such node whose pledge for an instance
//!    ([`TrustSource::pledge_cost`]) exceeds the headroom is excluded (`credit`).
//! 2. **Per instance** (`room`): the pledges of the call so far, then
//!    `max_per_node` and resource fit against the reservations. The headroom
//!    is a running budget for the call: each instance placed on a node of
//!    another operator spends its pledge, and from then on the nodes of other
//!    operators whose pledge exceeds what is left are excluded (`credit`) for
//!    the rest of the call; the owner's operator's nodes cost nothing. Then
//!    a draw among the nodes that pass, with probability proportional to
//!    `C² × fit` ([`mycelial::sample::weight`]), where `C` is the node's
//!    composite reputation and `fit` (0–1) the share of its allocatable left
//!    free after placing the instance (mean of cpu and memory), divided by
//!    `1 + n` for `n` untolerated `PreferNoSchedule` taints.
//!    - **Exploration** (cold start): for a workload without rules, with
//!      probability [`MycelialSchedulerConfig::exploration`] the node is drawn
//!      uniformly among those that pass instead, so nodes without evidence
//!      (`C = 0`) still get work and can earn a reputation.
//!    - When every node that passes weighs 0 (a fresh cluster with no
//!      evidence; or only trusted operators' new nodes pass), the draw is
//!      uniform among them: a node that passes every rule is never refused.
//!
//! Every node that passes the filters is weighed — no bounded sample as in
//! the simple scheduler — so the draw follows `C² × fit` exactly; a call costs
//! one pass over the nodes plus one pass over the weights per instance.
//!
//! **Reasons.** When no node is left, the `NoPlacement` reason names the trust
//! rules with [`mycelial::rules::reason`] (`no node satisfies the owner's
//! trust rules: 3 nodes excluded by trust.min_reputation (needs ≥ 0.99)`),
//! nodes priced out by the running budget counted under `credit` with those
//! excluded before the call's first instance, preceded by the simple
//! scheduler's `0/N nodes fit: …` when other filters excluded nodes too.
//!
//! **Binding and determinism.** One `Mutex` over the ledger and the seeded
//! generator is held for the placement part of a call (which never awaits), so
//! concurrent calls never over-commit a node, and two schedulers with the same
//! seed given the same calls, nodes and standings decide the same. An instance
//! being placed anew first gives up what it held, for all instances of a call
//! before the first is placed.

mod candidates;
mod room;

use std::fmt;
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
use candidates::Candidates;
use room::{Ctx, Room};

/// Share of the instances of workloads without trust rules placed uniformly
/// among the nodes that pass, by default (MYCELIAL.md §3: 5 % exploration).
pub const DEFAULT_EXPLORATION: f64 = 0.05;

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
}

impl MycelialSchedulerConfig {
    /// The default exploration with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            exploration: DEFAULT_EXPLORATION,
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
    trust: Arc<dyn TrustSource>,
    state: Mutex<State>,
}

impl fmt::Debug for MycelialScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MycelialScheduler")
            .field("exploration", &self.exploration)
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
            trust,
            state: Mutex::new(State {
                ledger: Ledger::default(),
                rng: StdRng::seed_from_u64(config.seed),
            }),
        }
    }

    /// The whole pipeline, synchronously; the reservations are locked only
    /// once the standings are known.
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
        let candidates = Candidates::gather(
            nodes,
            &filter,
            rules,
            &workload.owner,
            workload.spec.instance_request().cpu_millis,
            &*self.trust,
        );
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
        let mut room = Room::new(
            &candidates.eligible,
            &Ctx {
                nodes,
                filter: &filter,
                request,
                ledger,
                counts: &counts,
            },
            candidates.headroom,
        );
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
            match room.draw(rng, explore) {
                Some(k) => {
                    let node = nodes[candidates.eligible[k].node].id;
                    ledger.bind(instance, node, request, &host_ports);
                    *counts.entry(node).or_insert(0) += 1;
                    let ctx = Ctx {
                        nodes,
                        filter: &filter,
                        request,
                        ledger,
                        counts: &counts,
                    };
                    room.placed(k, &candidates.eligible, &ctx);
                    decisions.push(ScheduleDecision::AssignNode(node));
                }
                None => {
                    let filtered = room.exclusions(candidates.filtered);
                    let reason =
                        candidates.reason(rules, &filtered, room.priced_out(), nodes.len());
                    debug!(%instance, %reason, "no node fits");
                    decisions.push(ScheduleDecision::NoPlacement(reason.clone()));
                    no_room = Some(reason);
                }
            }
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
