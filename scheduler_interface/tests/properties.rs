//! Property: whatever the nodes, workloads, order and releases, `SimpleScheduler`
//! never over-commits a node and only assigns nodes that pass every filter.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use orchestrator_shared_types::{
    InstanceId, Node, NodeId, NodeStatus, Resources, Taint, TaintEffect, Toleration,
    TolerationOperator, WorkloadDefinition,
};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use scheduler_interface::testsuite::{node, workload, MIB};
use scheduler_interface::{
    ScheduleDecision, ScheduleRequest, Scheduler, ScoringStrategy, SimpleScheduler,
    SimpleSchedulerConfig,
};

const ZONES: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
struct NodeGen {
    cpu: u64,
    mem_mib: u64,
    status: usize,
    cordoned: bool,
    zone: usize,
    taint: Option<bool>, // Some(true): NoSchedule, Some(false): PreferNoSchedule
}

#[derive(Clone, Debug)]
struct WorkloadGen {
    cpu: u64,
    mem_mib: u64,
    zone: Option<usize>,
    tolerates: bool,
    max_per_node: Option<u32>,
    replicas: usize,
}

#[derive(Clone, Debug)]
enum Op {
    Schedule(usize),
    Release(usize),
}

fn node_gen() -> impl Strategy<Value = NodeGen> {
    (
        0u64..4000,
        0u64..4096,
        0usize..6,
        prop::bool::weighted(0.1),
        0usize..3,
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(cpu, mem_mib, status, cordoned, zone, taint)| NodeGen {
            cpu,
            mem_mib,
            status,
            cordoned,
            zone,
            taint,
        })
}

fn workload_gen() -> impl Strategy<Value = WorkloadGen> {
    (
        0u64..1500,
        0u64..1024,
        prop::option::of(0usize..3),
        any::<bool>(),
        prop::option::of(1u32..3),
        1usize..6,
    )
        .prop_map(
            |(cpu, mem_mib, zone, tolerates, max_per_node, replicas)| WorkloadGen {
                cpu,
                mem_mib,
                zone,
                tolerates,
                max_per_node,
                replicas,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![3 => (0usize..64).prop_map(Op::Schedule), 1 => (0usize..1024).prop_map(Op::Release)]
}

fn build_node(g: &NodeGen) -> Node {
    // Statuses 3..6 are Ready, so about half the nodes are usable.
    let status = [NodeStatus::NotReady, NodeStatus::Unknown, NodeStatus::Down][..]
        .get(g.status)
        .copied()
        .unwrap_or(NodeStatus::Ready);
    let mut n = node(status, Resources::new(g.cpu, g.mem_mib * MIB));
    n.unschedulable = g.cordoned;
    n.labels.insert("zone".into(), ZONES[g.zone].into());
    if let Some(hard) = g.taint {
        let effect = if hard {
            TaintEffect::NoSchedule
        } else {
            TaintEffect::PreferNoSchedule
        };
        n.taints.push(Taint {
            key: "dedicated".into(),
            value: "x".into(),
            effect,
        });
    }
    n
}

fn build_workload(i: usize, g: &WorkloadGen) -> WorkloadDefinition {
    let mut w = workload(&format!("w{i}"), Resources::new(g.cpu, g.mem_mib * MIB));
    if let Some(z) = g.zone {
        w.spec
            .placement
            .node_selector
            .insert("zone".into(), ZONES[z].into());
    }
    if g.tolerates {
        w.spec.placement.tolerations.push(Toleration {
            key: "dedicated".into(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: None,
        });
    }
    w.spec.placement.max_per_node = g.max_per_node;
    w
}

fn run(
    strategy: ScoringStrategy,
    sample_size: usize,
    nodes: &[Node],
    workloads: &[Arc<WorkloadDefinition>],
    replicas: &[usize],
    ops: &[Op],
) -> Result<(usize, usize), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let s = SimpleScheduler::new(SimpleSchedulerConfig {
        strategy,
        sample_size,
        seed: Some(1),
        spread_weight: None,
    });
    // The model: live instances per workload, and what each reserves.
    let mut live: Vec<Vec<(InstanceId, NodeId)>> = vec![Vec::new(); workloads.len()];
    let mut all: Vec<(usize, InstanceId)> = Vec::new();
    let (mut placed, mut released) = (0, 0);
    let by_id: HashMap<NodeId, &Node> = nodes.iter().map(|n| (n.id, n)).collect();
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
                    match d {
                        ScheduleDecision::AssignNode(id) => {
                            let n = by_id
                                .get(id)
                                .ok_or_else(|| TestCaseError::fail("unknown node"))?;
                            let p = &wl.spec.placement;
                            prop_assert!(
                                n.is_schedulable(),
                                "assigned to unschedulable {:?}",
                                n.status
                            );
                            prop_assert!(p.tolerates_all(&n.taints), "assigned despite a taint");
                            prop_assert!(
                                p.matches_labels(&n.labels),
                                "assigned despite the selector"
                            );
                            let on_node = live[w].iter().filter(|(_, x)| x == id).count() as u32;
                            prop_assert!(
                                p.max_per_node.is_none_or(|m| on_node < m),
                                "max_per_node broken"
                            );
                            live[w].push((*inst, *id));
                            all.push((w, *inst));
                            placed += 1;
                        }
                        ScheduleDecision::NoPlacement(reason) => prop_assert!(!reason.is_empty()),
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
                live[w].retain(|(i, _)| *i != inst);
                s.release(inst);
                released += 1;
            }
        }
        // After every step: the ledger equals the model, within allocatable.
        let mut model: HashMap<NodeId, Resources> = HashMap::new();
        for (w, insts) in live.iter().enumerate() {
            for (_, n) in insts {
                let r = model.entry(*n).or_default();
                *r = r.saturating_add(workloads[w].spec.instance_request());
            }
        }
        for n in nodes {
            let reserved = s.reserved(&n.id);
            prop_assert!(
                n.resources_allocatable.fits(reserved),
                "over-committed: {:?} > {:?}",
                reserved,
                n.resources_allocatable
            );
            prop_assert_eq!(reserved, model.get(&n.id).copied().unwrap_or_default());
        }
    }
    Ok((placed, released))
}

#[test]
fn never_overcommits_and_only_assigns_feasible_nodes() {
    let cases = (
        prop::collection::vec(node_gen(), 1..24),
        prop::collection::vec(workload_gen(), 1..10),
        prop::collection::vec(op(), 1..60),
        any::<bool>(),
        prop_oneof![Just(1usize), Just(3), Just(64), Just(usize::MAX)],
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    });
    let totals = Cell::new((0usize, 0usize));
    let result = runner.run(
        &cases,
        |(node_gens, workload_gens, ops, binpack, sample_size)| {
            let nodes: Vec<Node> = node_gens.iter().map(build_node).collect();
            let workloads: Vec<_> = workload_gens
                .iter()
                .enumerate()
                .map(|(i, g)| Arc::new(build_workload(i, g)))
                .collect();
            let replicas: Vec<usize> = workload_gens.iter().map(|g| g.replicas).collect();
            let strategy = if binpack {
                ScoringStrategy::BinPack
            } else {
                ScoringStrategy::Spread
            };
            let (placed, released) =
                run(strategy, sample_size, &nodes, &workloads, &replicas, &ops)?;
            let (p, r) = totals.get();
            totals.set((p + placed, r + released));
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // The property is not vacuous: the generated cases place and release a lot.
    let (placed, released) = totals.get();
    assert!(
        placed > 1000 && released > 100,
        "placed {placed}, released {released}"
    );
}
