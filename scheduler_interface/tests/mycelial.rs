//! How `MycelialScheduler` chooses: trust rules as hard filters, draws
//! weighted by `C²`, exploration and the cold start, reasons, determinism.

mod mycelial_common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mycelial::{NodeStanding, TrustSource};
use mycelial_common::{big_nodes, small, with_rules};
use orchestrator_shared_types::{
    Node, NodeId, NodeStatus, PublicKey, Resources, TrustRules, WorkloadDefinition,
};
use scheduler_interface::testsuite::{
    assigned, node, ready_node, request, schedule_ok, workload, MIB,
};
use scheduler_interface::{
    MycelialScheduler, MycelialSchedulerConfig, ScheduleDecision, Scheduler,
};

/// Standings per node (unknown for the others); counts its calls.
#[derive(Default)]
struct Standings {
    by_node: HashMap<NodeId, NodeStanding>,
    calls: AtomicUsize,
}

impl Standings {
    fn set(&mut self, node: &Node, composite: f64, attestations: u32) {
        self.by_node.insert(
            node.id,
            NodeStanding {
                composite,
                qualifying_attestations: attestations,
            },
        );
    }
}

impl TrustSource for Standings {
    fn standings(&self, _: &PublicKey, _: &[PublicKey], nodes: &[Node]) -> Vec<NodeStanding> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        nodes
            .iter()
            .map(|n| {
                self.by_node
                    .get(&n.id)
                    .copied()
                    .unwrap_or(NodeStanding::UNKNOWN)
            })
            .collect()
    }
}

fn scheduler(standings: Standings) -> (MycelialScheduler, Arc<Standings>) {
    let s = Arc::new(standings);
    let sched = MycelialScheduler::new(MycelialSchedulerConfig::for_test(), Arc::clone(&s) as _);
    (sched, s)
}

/// Places `n` instances one call at a time, releasing each after, and counts
/// where they went.
async fn placements(
    s: &MycelialScheduler,
    w: &Arc<WorkloadDefinition>,
    nodes: &[Node],
    n: usize,
) -> HashMap<NodeId, usize> {
    let mut per_node = HashMap::new();
    for _ in 0..n {
        let req = request(w, 1);
        let d = schedule_ok(s, &req, nodes, "placement").await;
        match assigned(&d[0]) {
            Some(id) => *per_node.entry(id).or_insert(0) += 1,
            None => panic!("a node passes every rule, yet: {d:?}"),
        }
        s.release(req.instances[0]);
    }
    per_node
}

#[tokio::test]
async fn a_denied_operator_never_gets_a_placement() {
    let nodes = big_nodes(4);
    let mut st = Standings::default();
    // The denied operator's node has the best reputation of all.
    st.set(&nodes[0], 1.0, 5);
    for n in &nodes[1..] {
        st.set(n, 0.5, 1);
    }
    let (s, _) = scheduler(st);
    let w = with_rules(
        "careful",
        TrustRules {
            denied_operators: vec![nodes[0].operator],
            ..TrustRules::default()
        },
    );
    // 1,000 placements, 10 per call, kept (the nodes have room for all).
    let mut placed = 0;
    for _ in 0..100 {
        let d = schedule_ok(&s, &request(&w, 10), &nodes, "denied").await;
        for d in &d {
            let id = assigned(d).unwrap_or_else(|| panic!("three nodes are allowed: {d:?}"));
            assert_ne!(id, nodes[0].id, "placed on a denied operator's node");
            placed += 1;
        }
    }
    assert_eq!(placed, 1000);
    assert_eq!(s.reserved(&nodes[0].id), Resources::ZERO);
}

#[tokio::test]
async fn min_reputation_above_every_node_names_the_rule() {
    let nodes = big_nodes(3);
    let mut st = Standings::default();
    for n in &nodes {
        st.set(n, 0.95, 3);
    }
    let (s, _) = scheduler(st);
    let w = with_rules(
        "picky",
        TrustRules {
            min_reputation: 0.99,
            ..TrustRules::default()
        },
    );
    let d = schedule_ok(&s, &request(&w, 2), &nodes, "min reputation").await;
    for d in &d {
        assert_eq!(
            d,
            &ScheduleDecision::NoPlacement(
                "no node satisfies the owner's trust rules: \
                 3 nodes excluded by trust.min_reputation (needs ≥ 0.99)"
                    .into()
            )
        );
    }
    // With a node excluded by a filter too, both are named.
    let mut more = nodes.clone();
    more.push(node(NodeStatus::NotReady, Resources::new(1000, 1 << 30)));
    let d = schedule_ok(&s, &request(&w, 1), &more, "and not ready").await;
    let ScheduleDecision::NoPlacement(reason) = &d[0] else {
        panic!("no node passes: {d:?}")
    };
    assert_eq!(
        reason,
        "0/4 nodes fit: 1 not ready; no node satisfies the owner's trust rules: \
         3 nodes excluded by trust.min_reputation (needs ≥ 0.99)"
    );
}

#[tokio::test]
async fn required_attestations_and_full_nodes_are_both_counted() {
    let mut nodes = big_nodes(3);
    nodes[2].resources_allocatable = Resources::new(50, 1 << 30);
    let mut st = Standings::default();
    st.set(&nodes[0], 0.9, 0);
    st.set(&nodes[1], 0.9, 0);
    st.set(&nodes[2], 0.9, 2);
    let (s, _) = scheduler(st);
    let w = with_rules(
        "vouched",
        TrustRules {
            required_attestations: 1,
            ..TrustRules::default()
        },
    );
    let d = schedule_ok(&s, &request(&w, 1), &nodes, "attestations").await;
    assert_eq!(
        d[0],
        ScheduleDecision::NoPlacement(
            "0/3 nodes fit: 1 insufficient cpu; no node satisfies the owner's trust rules: \
             2 nodes excluded by trust.required_attestations (needs 1)"
                .into()
        )
    );
}

#[tokio::test]
async fn a_required_label_is_respected() {
    let mut nodes = big_nodes(6);
    for (i, n) in nodes.iter_mut().enumerate() {
        let j = if i % 3 == 0 { "eu" } else { "us" };
        n.labels.insert("jurisdiction".into(), j.into());
    }
    let mut st = Standings::default();
    for n in &nodes {
        // The nodes outside the EU have the better reputation.
        let eu = n.labels.get("jurisdiction").is_some_and(|j| j == "eu");
        st.set(n, if eu { 0.5 } else { 1.0 }, 2);
    }
    let (s, st) = scheduler(st);
    let mut rules = TrustRules::default();
    rules
        .required_labels
        .insert("jurisdiction".into(), "eu".into());
    let w = with_rules("resident", rules);
    for _ in 0..20 {
        let d = schedule_ok(&s, &request(&w, 10), &nodes, "residency").await;
        for d in &d {
            let id = assigned(d).unwrap_or_else(|| panic!("two EU nodes have room: {d:?}"));
            let n = nodes.iter().find(|n| n.id == id);
            assert_eq!(
                n.and_then(|n| n.labels.get("jurisdiction"))
                    .map(String::as_str),
                Some("eu"),
                "placed outside the required jurisdiction"
            );
        }
    }
    // Standings are asked once per call, not per instance.
    assert_eq!(st.calls.load(Ordering::Relaxed), 20);
    // Without such a node: the rule is named.
    let d = schedule_ok(&s, &request(&w, 1), &nodes[1..3], "no EU node").await;
    assert_eq!(
        d[0],
        ScheduleDecision::NoPlacement(
            "no node satisfies the owner's trust rules: \
             2 nodes excluded by trust.required_labels.jurisdiction"
                .into()
        )
    );
}

#[tokio::test]
async fn placements_follow_the_square_of_the_reputation() {
    let nodes = big_nodes(2);
    let mut st = Standings::default();
    st.set(&nodes[0], 0.9, 3);
    st.set(&nodes[1], 0.45, 3);
    let (s, _) = scheduler(st);
    // A rule (met by both) turns exploration off: the draw is C² × fit alone.
    let w = with_rules(
        "weighted",
        TrustRules {
            min_reputation: 0.1,
            ..TrustRules::default()
        },
    );
    let per_node = placements(&s, &w, &nodes, 10_000).await;
    let (hi, lo) = (per_node[&nodes[0].id], per_node[&nodes[1].id]);
    let ratio = hi as f64 / lo as f64;
    // 0.9² / 0.45² = 4: expected 8,000 against 2,000 (σ ≈ 40 each).
    assert!((3.6..4.4).contains(&ratio), "{hi} vs {lo}: ratio {ratio}");
}

#[tokio::test]
async fn fit_prefers_the_emptier_node() {
    let nodes = vec![ready_node(4000, 4096), ready_node(4000, 4096)];
    let mut st = Standings::default();
    st.set(&nodes[0], 1.0, 0);
    st.set(&nodes[1], 1.0, 0);
    let (s, _) = scheduler(st);
    let held = scheduler_interface::Placement {
        instance: orchestrator_shared_types::InstanceId::new(),
        node: nodes[0].id,
        resources: Resources::new(2900, 2900 * MIB),
        host_ports: Vec::new(),
    };
    s.record_placements(&[held]);
    let w = with_rules(
        "fit",
        TrustRules {
            min_reputation: 0.5,
            ..TrustRules::default()
        },
    );
    let per_node = placements(&s, &w, &nodes, 4000).await;
    // Free share after placing: ≈ 0.26 against ≈ 0.98.
    let (full, empty) = (per_node[&nodes[0].id], per_node[&nodes[1].id]);
    let ratio = empty as f64 / full as f64;
    assert!(
        (3.4..4.5).contains(&ratio),
        "{empty} vs {full}: ratio {ratio}"
    );
}

#[tokio::test]
async fn without_evidence_rule_less_workloads_still_schedule_uniformly() {
    let nodes = big_nodes(4);
    // Every node unknown: composite 0, no attestations.
    let (s, _) = scheduler(Standings::default());
    let w = Arc::new(workload("newcomer", small()));
    let per_node = placements(&s, &w, &nodes, 4000).await;
    for n in &nodes {
        let c = per_node.get(&n.id).copied().unwrap_or(0);
        assert!((850..1150).contains(&c), "uniform: {per_node:?}");
    }
    // A rule that needs reputation excludes every unknown node.
    let picky = with_rules(
        "picky",
        TrustRules {
            min_reputation: 0.5,
            ..TrustRules::default()
        },
    );
    let d = schedule_ok(&s, &request(&picky, 1), &nodes, "picky").await;
    assert_eq!(
        d[0],
        ScheduleDecision::NoPlacement(
            "no node satisfies the owner's trust rules: \
             4 nodes excluded by trust.min_reputation (needs ≥ 0.5)"
                .into()
        )
    );
}

#[tokio::test]
async fn a_trusted_operator_without_reputation_is_used() {
    let nodes = big_nodes(3);
    let mut st = Standings::default();
    st.set(&nodes[1], 0.9, 0);
    st.set(&nodes[2], 0.9, 0);
    let (s, _) = scheduler(st);
    // Only the trusted operator's new node (C = 0) passes: it must get the work.
    let w = with_rules(
        "mine",
        TrustRules {
            trusted_operators: vec![nodes[0].operator],
            min_reputation: 0.95,
            ..TrustRules::default()
        },
    );
    let d = schedule_ok(&s, &request(&w, 5), &nodes, "trusted").await;
    assert!(d.iter().all(|d| assigned(d) == Some(nodes[0].id)), "{d:?}");
}

#[tokio::test]
async fn exploration_gives_unknown_nodes_a_little_work() {
    let nodes = big_nodes(2);
    let mut st = Standings::default();
    st.set(&nodes[0], 1.0, 3);
    let (s, _) = scheduler(st);
    let w = Arc::new(workload("rule-less", small()));
    let per_node = placements(&s, &w, &nodes, 20_000).await;
    // Half of the 5 % explored placements go to the unknown node: 500 expected (σ ≈ 22).
    let unknown = per_node.get(&nodes[1].id).copied().unwrap_or(0);
    assert!((400..600).contains(&unknown), "{per_node:?}");
    // With rules, no exploration: the unknown node (C = 0) gets nothing.
    let ruled = with_rules(
        "ruled",
        TrustRules {
            required_attestations: 0,
            denied_operators: vec![PublicKey([99; 32])],
            ..TrustRules::default()
        },
    );
    let per_node = placements(&s, &ruled, &nodes, 2000).await;
    assert_eq!(per_node.get(&nodes[1].id), None, "{per_node:?}");
}

#[tokio::test]
async fn the_same_seed_decides_the_same() {
    let nodes = big_nodes(20);
    let make = |seed| {
        let mut st = Standings::default();
        for (i, n) in nodes.iter().enumerate() {
            st.set(n, (i as f64 + 1.0) / 20.0, 2);
        }
        MycelialScheduler::new(MycelialSchedulerConfig::with_seed(seed), Arc::new(st))
    };
    let workloads: Vec<_> = (0..10)
        .map(|i| {
            if i % 2 == 0 {
                Arc::new(workload(&format!("w{i}"), small()))
            } else {
                with_rules(
                    &format!("w{i}"),
                    TrustRules {
                        min_reputation: 0.3,
                        ..TrustRules::default()
                    },
                )
            }
        })
        .collect();
    let run = |s: MycelialScheduler| {
        let workloads = workloads.clone();
        let nodes = nodes.clone();
        async move {
            let mut out = Vec::new();
            for w in &workloads {
                out.extend(schedule_ok(&s, &request(w, 5), &nodes, "seeded").await);
            }
            out
        }
    };
    let a = run(make(7)).await;
    assert_eq!(a, run(make(7)).await, "same seed, different decisions");
    assert_ne!(a, run(make(8)).await, "the seed should matter");
}
