//! Property: whatever the nodes, standings, trust rules, order and releases,
//! `MycelialScheduler` never over-commits a node, assigns only nodes that pass
//! every filter and every trust rule, and refuses an instance only when no
//! node passes them all.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use mycelial::{NodeStanding, TrustSource};
use orchestrator_shared_types::{
    InstanceId, Node, NodeId, NodeStatus, PublicKey, Resources, Taint, TaintEffect, Toleration,
    TolerationOperator, WorkloadDefinition,
};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use scheduler_interface::testsuite::{node, workload, MIB};
use scheduler_interface::{
    MycelialScheduler, MycelialSchedulerConfig, ScheduleDecision, ScheduleRequest, Scheduler,
};

const ZONES: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
struct NodeGen {
    cpu: u64,
    mem_mib: u64,
    ready: bool,
    zone: usize,
    taint: bool,
    operator: u8,
    composite: f64,
    attestations: u32,
}

#[derive(Clone, Debug)]
struct WorkloadGen {
    cpu: u64,
    mem_mib: u64,
    zone: Option<usize>,
    tolerates: bool,
    max_per_node: Option<u32>,
    replicas: usize,
    denied: Option<u8>,
    min_reputation: f64,
    attestations: u32,
    jurisdiction: Option<usize>,
}

#[derive(Clone, Debug)]
enum Op {
    Schedule(usize),
    Release(usize),
}

fn node_gen() -> impl Strategy<Value = NodeGen> {
    (
        (0u64..4000, 0u64..4096, prop::bool::weighted(0.8)),
        (0usize..3, prop::bool::weighted(0.2), 0u8..4),
        (prop_oneof![Just(0.0), 0.0f64..1.0, Just(1.0)], 0u32..3),
    )
        .prop_map(
            |((cpu, mem_mib, ready), (zone, taint, operator), (composite, attestations))| NodeGen {
                cpu,
                mem_mib,
                ready,
                zone,
                taint,
                operator,
                composite,
                attestations,
            },
        )
}

fn workload_gen() -> impl Strategy<Value = WorkloadGen> {
    (
        (0u64..1500, 0u64..1024, prop::option::of(0usize..3)),
        (any::<bool>(), prop::option::of(1u32..3), 1usize..6),
        (
            prop::option::weighted(0.3, 0u8..4),
            prop_oneof![2 => Just(0.0), 1 => 0.0f64..1.0],
            prop_oneof![3 => Just(0u32), 1 => 1u32..3],
            prop::option::weighted(0.3, 0usize..3),
        ),
    )
        .prop_map(
            |(
                (cpu, mem_mib, zone),
                (tolerates, max_per_node, replicas),
                (denied, min_reputation, attestations, jurisdiction),
            )| WorkloadGen {
                cpu,
                mem_mib,
                zone,
                tolerates,
                max_per_node,
                replicas,
                denied,
                min_reputation,
                attestations,
                jurisdiction,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![3 => (0usize..64).prop_map(Op::Schedule), 1 => (0usize..1024).prop_map(Op::Release)]
}

fn build_node(g: &NodeGen) -> Node {
    let status = if g.ready {
        NodeStatus::Ready
    } else {
        NodeStatus::NotReady
    };
    let mut n = node(status, Resources::new(g.cpu, g.mem_mib * MIB));
    n.operator = PublicKey([g.operator; 32]);
    n.labels.insert("zone".into(), ZONES[g.zone].into());
    n.labels
        .insert("jurisdiction".into(), ZONES[(g.zone + 1) % 3].into());
    if g.taint {
        n.taints.push(Taint {
            key: "dedicated".into(),
            value: "x".into(),
            effect: TaintEffect::NoSchedule,
        });
    }
    n
}

fn build_workload(i: usize, g: &WorkloadGen) -> WorkloadDefinition {
    let mut w = workload(&format!("w{i}"), Resources::new(g.cpu, g.mem_mib * MIB));
    let p = &mut w.spec.placement;
    if let Some(z) = g.zone {
        p.node_selector.insert("zone".into(), ZONES[z].into());
    }
    if g.tolerates {
        p.tolerations.push(Toleration {
            key: "dedicated".into(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: None,
        });
    }
    p.max_per_node = g.max_per_node;
    let t = &mut w.spec.trust;
    t.denied_operators = g.denied.map(|o| PublicKey([o; 32])).into_iter().collect();
    t.min_reputation = g.min_reputation;
    t.required_attestations = g.attestations;
    if let Some(j) = g.jurisdiction {
        t.required_labels
            .insert("jurisdiction".into(), ZONES[j].into());
    }
    w
}

struct Fixed(HashMap<NodeId, NodeStanding>);

impl TrustSource for Fixed {
    fn standings(&self, _: &PublicKey, _: &[PublicKey], nodes: &[Node]) -> Vec<NodeStanding> {
        nodes
            .iter()
            .map(|n| self.0.get(&n.id).copied().unwrap_or(NodeStanding::UNKNOWN))
            .collect()
    }
}

/// Whether one more instance of `w` may go on `n`, given the model.
fn passes(
    n: &Node,
    w: &WorkloadDefinition,
    standing: &NodeStanding,
    on_node: u32,
    reserved: Resources,
) -> bool {
    let p = &w.spec.placement;
    n.is_schedulable()
        && p.tolerates_all(&n.taints)
        && p.matches_labels(&n.labels)
        && p.max_per_node.is_none_or(|m| on_node < m)
        && n.resources_allocatable
            .fits(reserved.saturating_add(w.spec.instance_request()))
        && mycelial::rules::check(&w.spec.trust, n, standing).is_ok()
}

fn run(
    nodes: &[Node],
    standings: &HashMap<NodeId, NodeStanding>,
    workloads: &[Arc<WorkloadDefinition>],
    replicas: &[usize],
    ops: &[Op],
    exploration: f64,
    sample_size: usize,
) -> Result<(usize, usize), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let s = MycelialScheduler::new(
        MycelialSchedulerConfig {
            seed: 1,
            exploration,
            sample_size,
        },
        Arc::new(Fixed(standings.clone())),
    );
    let mut live: Vec<Vec<(InstanceId, NodeId)>> = vec![Vec::new(); workloads.len()];
    let mut all: Vec<(usize, InstanceId)> = Vec::new();
    let mut reserved: HashMap<NodeId, Resources> = HashMap::new();
    let (mut placed, mut released) = (0, 0);
    for op in ops {
        match *op {
            Op::Schedule(w) => {
                let w = w % workloads.len();
                let wl = &workloads[w];
                let req = ScheduleRequest {
                    workload: Arc::clone(wl),
                    instances: (0..replicas[w]).map(|_| InstanceId::new()).collect(),
                    existing: live[w].clone(),
                };
                let decisions = rt.block_on(s.schedule(&req, nodes))?;
                prop_assert_eq!(decisions.len(), req.instances.len());
                for (inst, d) in req.instances.iter().zip(&decisions) {
                    let ok = |n: &Node| {
                        let on_node = live[w].iter().filter(|(_, x)| *x == n.id).count() as u32;
                        let standing = standings
                            .get(&n.id)
                            .copied()
                            .unwrap_or(NodeStanding::UNKNOWN);
                        let r = reserved.get(&n.id).copied().unwrap_or_default();
                        passes(n, wl, &standing, on_node, r)
                    };
                    match d {
                        ScheduleDecision::AssignNode(id) => {
                            let n = nodes
                                .iter()
                                .find(|n| n.id == *id)
                                .ok_or_else(|| TestCaseError::fail("unknown node"))?;
                            prop_assert!(ok(n), "assigned a node that fails a filter or rule");
                            live[w].push((*inst, *id));
                            all.push((w, *inst));
                            let r = reserved.entry(*id).or_default();
                            *r = r.saturating_add(wl.spec.instance_request());
                            placed += 1;
                        }
                        ScheduleDecision::NoPlacement(reason) => {
                            prop_assert!(!reason.is_empty());
                            prop_assert!(
                                !nodes.iter().any(ok),
                                "refused although a node passes: {}",
                                reason
                            );
                        }
                        ScheduleDecision::Error(e) => {
                            return Err(TestCaseError::fail(format!("error: {e}")))
                        }
                    }
                }
            }
            Op::Release(k) => {
                if all.is_empty() {
                    continue;
                }
                let (w, inst) = all.swap_remove(k % all.len());
                let Some(pos) = live[w].iter().position(|(i, _)| *i == inst) else {
                    continue;
                };
                let (_, n) = live[w].swap_remove(pos);
                if let Some(r) = reserved.get_mut(&n) {
                    *r = r.saturating_sub(workloads[w].spec.instance_request());
                }
                s.release(inst);
                released += 1;
            }
        }
        for n in nodes {
            let r = s.reserved(&n.id);
            prop_assert!(n.resources_allocatable.fits(r), "over-committed");
            prop_assert_eq!(r, reserved.get(&n.id).copied().unwrap_or_default());
        }
    }
    Ok((placed, released))
}

#[test]
fn respects_filters_and_rules_and_refuses_only_when_nothing_passes() {
    let cases = (
        prop::collection::vec(node_gen(), 1..24),
        prop::collection::vec(workload_gen(), 1..10),
        prop::collection::vec(op(), 1..60),
        prop_oneof![Just(0.0), Just(0.05), Just(1.0)],
        // Samples smaller than the cluster, so the walk stops early, wraps
        // and goes on when instances fill what it found; and exhaustive.
        prop_oneof![Just(1usize), Just(3), Just(usize::MAX)],
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    });
    let totals = Cell::new((0usize, 0usize));
    let result = runner.run(
        &cases,
        |(node_gens, workload_gens, ops, exploration, sample_size)| {
            let nodes: Vec<Node> = node_gens.iter().map(build_node).collect();
            let standings = nodes
                .iter()
                .zip(&node_gens)
                .map(|(n, g)| {
                    let s = NodeStanding {
                        composite: g.composite,
                        qualifying_attestations: g.attestations,
                    };
                    (n.id, s)
                })
                .collect();
            let workloads: Vec<_> = workload_gens
                .iter()
                .enumerate()
                .map(|(i, g)| Arc::new(build_workload(i, g)))
                .collect();
            let replicas: Vec<usize> = workload_gens.iter().map(|g| g.replicas).collect();
            let (placed, released) = run(
                &nodes,
                &standings,
                &workloads,
                &replicas,
                &ops,
                exploration,
                sample_size,
            )?;
            let (p, r) = totals.get();
            totals.set((p + placed, r + released));
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let (placed, released) = totals.get();
    assert!(
        placed > 1000 && released > 100,
        "placed {placed}, released {released}"
    );
}
