//! `MycelialScheduler` draws among a bounded sample of the nodes that pass
//! its hard filters: rules or filters that leave a few nodes of thousands
//! still find them (the sample is taken after the filters, not before), the
//! trust source is asked about the sample's nodes rather than the cluster's,
//! within a sample better nodes are drawn more, instances that fill the
//! sample make the walk go on, and the same seed samples the same.

mod mycelial_common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mycelial::{NodeStanding, TrustSource};
use mycelial_common::{big_nodes, small, with_rules};
use orchestrator_shared_types::{Node, NodeId, PublicKey, TrustRules, WorkloadDefinition};
use scheduler_interface::testsuite::{assigned, ready_node, request, schedule_ok, workload};
use scheduler_interface::{
    MycelialScheduler, MycelialSchedulerConfig, ScheduleDecision, ScheduleRequest, Scheduler,
};

/// Standings per node (unknown for the others); counts the nodes it is
/// asked about.
#[derive(Default)]
struct Standings {
    by_node: HashMap<NodeId, NodeStanding>,
    asked: AtomicUsize,
}

impl Standings {
    /// Every node at `composite` with 2 attestations.
    fn all(nodes: &[Node], composite: f64) -> Self {
        let mut st = Self::default();
        for n in nodes {
            st.set(n, composite);
        }
        st
    }

    fn set(&mut self, node: &Node, composite: f64) {
        self.by_node.insert(
            node.id,
            NodeStanding {
                composite,
                qualifying_attestations: 2,
            },
        );
    }

    /// Nodes asked about since the last call of this.
    fn take_asked(&self) -> usize {
        self.asked.swap(0, Ordering::Relaxed)
    }
}

impl TrustSource for Standings {
    fn standings(&self, _: &PublicKey, _: &[PublicKey], nodes: &[Node]) -> Vec<NodeStanding> {
        self.asked.fetch_add(nodes.len(), Ordering::Relaxed);
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

/// `n` big nodes (nothing fills up unless a test says so), ten per operator.
fn many_nodes(n: usize) -> Vec<Node> {
    (0..n)
        .map(|i| {
            let mut node = ready_node(1_000_000, 1 << 24);
            let mut op = [0u8; 32];
            op[..8].copy_from_slice(&((i / 10) as u64 + 1).to_le_bytes());
            node.operator = PublicKey(op);
            node
        })
        .collect()
}

fn scheduler(st: &Arc<Standings>, sample_size: usize) -> MycelialScheduler {
    MycelialScheduler::new(
        MycelialSchedulerConfig {
            sample_size,
            ..MycelialSchedulerConfig::for_test()
        },
        Arc::clone(st) as Arc<dyn TrustSource>,
    )
}

/// `calls` calls of one instance each, kept; the nodes they went to.
async fn place_one_at_a_time(
    s: &MycelialScheduler,
    w: &Arc<WorkloadDefinition>,
    nodes: &[Node],
    calls: usize,
) -> Vec<NodeId> {
    let mut out = Vec::with_capacity(calls);
    for _ in 0..calls {
        let d = schedule_ok(s, &request(w, 1), nodes, "one instance").await;
        match assigned(&d[0]) {
            Some(id) => out.push(id),
            None => panic!("a node passes every rule, yet: {d:?}"),
        }
    }
    out
}

#[tokio::test]
async fn rules_that_leave_three_nodes_of_five_thousand_still_find_them() {
    let mut nodes = many_nodes(5_000);
    // Four nodes in Switzerland, one of them below the reputation asked for.
    for i in [17, 1_234, 2_500, 4_999] {
        nodes[i].labels.insert("jurisdiction".into(), "ch".into());
    }
    let mut st = Standings::all(&nodes, 0.95);
    st.set(&nodes[1_234], 0.5);
    let st = Arc::new(st);
    let s = scheduler(&st, 64);
    let mut rules = TrustRules {
        min_reputation: 0.9,
        ..TrustRules::default()
    };
    rules
        .required_labels
        .insert("jurisdiction".into(), "ch".into());
    let w = with_rules("swiss", rules.clone());
    let placed = place_one_at_a_time(&s, &w, &nodes, 30).await;
    let allowed: HashSet<NodeId> = [17, 2_500, 4_999].map(|i| nodes[i].id).into();
    assert!(
        placed.iter().all(|id| allowed.contains(id)),
        "placed outside the three nodes that pass"
    );
    let used: HashSet<NodeId> = placed.into_iter().collect();
    assert_eq!(used, allowed, "each of the three is weighed");

    // None passes: the walk went round every node, and the reason counts them all.
    rules
        .required_labels
        .insert("jurisdiction".into(), "li".into());
    let d = schedule_ok(
        &s,
        &request(&with_rules("liechtenstein", rules), 2),
        &nodes,
        "none",
    )
    .await;
    for d in &d {
        assert_eq!(
            d,
            &ScheduleDecision::NoPlacement(
                "no node satisfies the owner's trust rules: \
                 5000 nodes excluded by trust.required_labels.jurisdiction"
                    .into()
            )
        );
    }
}

#[tokio::test]
async fn a_node_selector_that_matches_two_of_five_thousand_still_finds_them() {
    let mut nodes = many_nodes(5_000);
    for i in [3, 3_003] {
        nodes[i].labels.insert("gpu".into(), "yes".into());
    }
    let st = Arc::new(Standings::all(&nodes, 0.9));
    let s = scheduler(&st, 64);
    let mut w = workload("gpu", small());
    w.spec
        .placement
        .node_selector
        .insert("gpu".into(), "yes".into());
    let w = Arc::new(w);
    st.take_asked();
    let placed = place_one_at_a_time(&s, &w, &nodes, 20).await;
    let allowed: HashSet<NodeId> = [3, 3_003].map(|i| nodes[i].id).into();
    assert!(placed.iter().all(|id| allowed.contains(id)), "{placed:?}");
    // Each call walked every node, yet asked the standings of the two that
    // passed the filters only, not of the 4,998 others.
    assert_eq!(st.take_asked(), 20 * 2);
}

#[tokio::test]
async fn the_trust_source_is_asked_about_the_sample_not_the_cluster() {
    let nodes = many_nodes(5_000);
    let mut st = Standings::all(&nodes, 0.95);
    // Half the nodes below the rules' minimum reputation.
    for n in nodes.iter().step_by(2) {
        st.set(n, 0.6);
    }
    let st = Arc::new(st);
    let s = scheduler(&st, 64);
    let rule_less = Arc::new(workload("rule-less", small()));
    let ruled = with_rules(
        "ruled",
        TrustRules {
            min_reputation: 0.8,
            ..TrustRules::default()
        },
    );
    for (w, most) in [(&rule_less, 2 * 64), (&ruled, 4 * 64)] {
        st.take_asked();
        place_one_at_a_time(&s, w, &nodes, 100).await;
        let per_call = st.take_asked() / 100;
        assert!(
            (64..=most).contains(&per_call),
            "{}: asked about {per_call} nodes per call",
            w.spec.name
        );
    }
    // Exhaustive: every node, every call.
    let every = scheduler(&st, usize::MAX);
    st.take_asked();
    place_one_at_a_time(&every, &ruled, &nodes, 3).await;
    assert_eq!(st.take_asked(), 3 * 5_000);
}

#[tokio::test]
async fn within_the_sample_better_nodes_are_drawn_more() {
    let nodes = many_nodes(1_000);
    let mut st = Standings::all(&nodes, 0.9);
    for n in nodes.iter().skip(1).step_by(2) {
        st.set(n, 0.45);
    }
    let st = Arc::new(st);
    let s = scheduler(&st, 64);
    // A rule (met by all) turns exploration off: the draw is C² × fit alone.
    let w = with_rules(
        "weighted",
        TrustRules {
            min_reputation: 0.1,
            ..TrustRules::default()
        },
    );
    let mut per_node: HashMap<NodeId, usize> = HashMap::new();
    for _ in 0..10_000 {
        let req = request(&w, 1);
        let d = schedule_ok(&s, &req, &nodes, "weighted").await;
        let id = assigned(&d[0]).unwrap_or_else(|| panic!("every node passes: {d:?}"));
        *per_node.entry(id).or_insert(0) += 1;
        s.release(req.instances[0]);
    }
    let high: usize = nodes
        .iter()
        .step_by(2)
        .filter_map(|n| per_node.get(&n.id))
        .sum();
    let low = 10_000 - high;
    // Each sample of 64 holds 32 of each: 0.9² / 0.45² = 4, so 8,000
    // against 2,000 expected (σ ≈ 40 each).
    let ratio = high as f64 / low as f64;
    assert!(
        (3.6..4.4).contains(&ratio),
        "{high} vs {low}: ratio {ratio}"
    );
    // The rotating offset puts every node in some sample.
    assert!(per_node.len() > 900, "only {} nodes used", per_node.len());
}

#[tokio::test]
async fn instances_that_fill_the_sample_make_the_walk_go_on() {
    let nodes = big_nodes(250);
    let st = Arc::new(Standings::all(&nodes, 0.9));
    let s = scheduler(&st, 8);
    let mut w = workload("one-per-node", small());
    w.spec.placement.max_per_node = Some(1);
    let w = Arc::new(w);
    let first = request(&w, 200);
    let d = schedule_ok(&s, &first, &nodes, "200 of 250").await;
    let ids: Vec<NodeId> = d.iter().filter_map(assigned).collect();
    assert_eq!(ids.len(), 200, "{d:?}");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        200,
        "one per node"
    );
    let req = ScheduleRequest {
        existing: first.instances.iter().copied().zip(ids).collect(),
        ..request(&w, 60)
    };
    let d = schedule_ok(&s, &req, &nodes, "60 more").await;
    assert_eq!(d.iter().filter_map(assigned).count(), 50);
    assert_eq!(
        d[59],
        ScheduleDecision::NoPlacement("0/250 nodes fit: 250 max per node reached".into())
    );
}

#[tokio::test]
async fn the_same_seed_samples_the_same() {
    let nodes = many_nodes(2_000);
    let mut st = Standings::default();
    for (i, n) in nodes.iter().enumerate() {
        st.set(n, 0.5 + (i % 50) as f64 / 100.0);
    }
    let st = Arc::new(st);
    let workloads: Vec<_> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                Arc::new(workload(&format!("w{i}"), small()))
            } else {
                with_rules(
                    &format!("w{i}"),
                    TrustRules {
                        min_reputation: 0.8,
                        ..TrustRules::default()
                    },
                )
            }
        })
        .collect();
    let run = |seed| {
        let s = MycelialScheduler::new(
            MycelialSchedulerConfig::with_seed(seed),
            Arc::clone(&st) as Arc<dyn TrustSource>,
        );
        let (workloads, nodes) = (workloads.clone(), nodes.clone());
        async move {
            let mut out = Vec::new();
            for (i, w) in workloads.iter().enumerate() {
                out.extend(schedule_ok(&s, &request(w, i % 5 + 1), &nodes, "seeded").await);
            }
            out
        }
    };
    let a = run(7).await;
    assert_eq!(a, run(7).await, "same seed, different decisions");
    assert_ne!(a, run(8).await, "the seed should matter");
}
