//! How `SimpleScheduler` chooses among feasible nodes: spread, bin-pack,
//! soft taints, sampling, and the reasons it gives.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use orchestrator_shared_types::{NodeStatus, Resources, Taint, TaintEffect};
use scheduler_interface::testsuite::{
    assigned, node, ready_node, request, schedule_ok, workload, MIB,
};
use scheduler_interface::{
    ScheduleDecision, Scheduler, ScoringStrategy, SimpleScheduler, SimpleSchedulerConfig,
};

fn scheduler(strategy: ScoringStrategy) -> SimpleScheduler {
    SimpleScheduler::new(SimpleSchedulerConfig {
        strategy,
        ..SimpleSchedulerConfig::for_test()
    })
}

#[tokio::test]
async fn spread_puts_three_replicas_on_three_distinct_nodes() {
    for seed in 0..10 {
        let s = SimpleScheduler::new(SimpleSchedulerConfig {
            seed: Some(seed),
            ..SimpleSchedulerConfig::default()
        });
        let nodes: Vec<_> = (0..3).map(|_| ready_node(4000, 8192)).collect();
        let w = Arc::new(workload("web", Resources::new(100, 128 * MIB)));
        let d = schedule_ok(&s, &request(&w, 3), &nodes, "spread").await;
        let distinct: HashSet<_> = d.iter().filter_map(assigned).collect();
        assert_eq!(distinct.len(), 3, "seed {seed}: {d:?}");
    }
}

#[tokio::test]
async fn spread_across_calls_balances_load() {
    let s = scheduler(ScoringStrategy::Spread);
    let nodes: Vec<_> = (0..10).map(|_| ready_node(16_000, 65_536)).collect();
    for i in 0..50 {
        let w = Arc::new(workload(&format!("w{i}"), Resources::new(100, 128 * MIB)));
        schedule_ok(&s, &request(&w, 2), &nodes, "spread").await;
    }
    // 100 instances on 10 nodes: each holds exactly 10.
    for n in &nodes {
        assert_eq!(s.reserved(&n.id).cpu_millis, 1000, "uneven spread");
    }
}

#[tokio::test]
async fn binpack_packs_replicas_onto_one_node() {
    let s = scheduler(ScoringStrategy::BinPack);
    let nodes: Vec<_> = (0..3).map(|_| ready_node(4000, 8192)).collect();
    let w = Arc::new(workload("batch", Resources::new(1000, 1024 * MIB)));
    let d = schedule_ok(&s, &request(&w, 3), &nodes, "binpack").await;
    let distinct: HashSet<_> = d.iter().filter_map(assigned).collect();
    assert_eq!(distinct.len(), 1, "bin-pack packs: {d:?}");
    // The 5th and later overflow to a second node once the first is full.
    let d = schedule_ok(&s, &request(&w, 2), &nodes, "overflow").await;
    let mut per: HashMap<_, u32> = HashMap::new();
    for id in d.iter().filter_map(assigned) {
        *per.entry(id).or_default() += 1;
    }
    assert_eq!(
        per.len(),
        2,
        "one more fits on the packed node, the next goes elsewhere: {d:?}"
    );
}

#[tokio::test]
async fn binpack_prefers_the_fuller_node() {
    let s = scheduler(ScoringStrategy::BinPack);
    let nodes: Vec<_> = (0..4).map(|_| ready_node(4000, 8192)).collect();
    let filler = Arc::new(workload("filler", Resources::new(2000, 2048 * MIB)));
    let d = schedule_ok(&s, &request(&filler, 1), &nodes, "filler").await;
    let full = assigned(&d[0]);
    let w = Arc::new(workload("small", Resources::new(100, 64 * MIB)));
    let d = schedule_ok(&s, &request(&w, 1), &nodes, "small").await;
    assert_eq!(assigned(&d[0]), full, "most-allocated wins");
}

#[tokio::test]
async fn prefer_no_schedule_taints_are_avoided_but_not_forbidden() {
    let s = scheduler(ScoringStrategy::Spread);
    let mut soft = ready_node(4000, 8192);
    soft.taints.push(Taint {
        key: "old".into(),
        value: String::new(),
        effect: TaintEffect::PreferNoSchedule,
    });
    let nodes = vec![soft, ready_node(4000, 8192)];
    let w = Arc::new(workload("web", Resources::new(100, 64 * MIB)));
    let d = schedule_ok(&s, &request(&w, 3), &nodes, "soft").await;
    assert!(d.iter().all(|d| assigned(d) == Some(nodes[1].id)), "{d:?}");
    let d = schedule_ok(&s, &request(&w, 1), &nodes[..1], "only soft").await;
    assert_eq!(
        assigned(&d[0]),
        Some(nodes[0].id),
        "a soft taint does not exclude"
    );
}

#[tokio::test]
async fn no_placement_reason_counts_every_filter() {
    let s = scheduler(ScoringStrategy::Spread);
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(node(NodeStatus::NotReady, Resources::new(8000, 1 << 34)));
    }
    for _ in 0..3 {
        nodes.push(ready_node(50, 8192));
    }
    for _ in 0..3 {
        let mut n = ready_node(8000, 8192);
        n.labels.insert("zone".into(), "b".into());
        nodes.push(n);
    }
    let mut w = workload("web", Resources::new(100, 64 * MIB));
    w.spec
        .placement
        .node_selector
        .insert("zone".into(), "a".into());
    let d = schedule_ok(&s, &request(&Arc::new(w), 2), &nodes, "reason").await;
    // Every unlabelled node is a selector mismatch (checked before resources).
    match &d[0] {
        ScheduleDecision::NoPlacement(r) => {
            assert!(r.starts_with("0/10 nodes fit: 4 not ready, "), "{r}");
            assert!(r.contains("node selector mismatch"), "{r}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d[0], d[1], "the same reason for every unplaced instance");
    for n in &mut nodes[4..7] {
        n.labels.insert("zone".into(), "a".into());
    }
    let mut w = workload("web", Resources::new(100, 64 * MIB));
    w.spec
        .placement
        .node_selector
        .insert("zone".into(), "a".into());
    let d = schedule_ok(&s, &request(&Arc::new(w), 1), &nodes, "reason").await;
    let expected = "0/10 nodes fit: 4 not ready, 3 node selector mismatch, 3 insufficient cpu";
    assert_eq!(d[0], ScheduleDecision::NoPlacement(expected.to_owned()));
}

#[tokio::test]
async fn duplicate_instances_in_a_request_are_rejected() {
    let s = scheduler(ScoringStrategy::Spread);
    let nodes = vec![ready_node(1000, 1024)];
    let w = Arc::new(workload("web", Resources::new(100, MIB)));
    let mut req = request(&w, 2);
    req.instances[1] = req.instances[0];
    let err = s
        .schedule(&req, &nodes)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("appears twice"), "{err}");
    assert_eq!(s.reserved(&nodes[0].id), Resources::ZERO);
}

#[tokio::test]
async fn rescheduling_an_instance_moves_its_reservation() {
    let s = scheduler(ScoringStrategy::Spread);
    let nodes = vec![ready_node(1000, 1024)];
    let w = Arc::new(workload("web", Resources::new(600, MIB)));
    let req = request(&w, 1);
    schedule_ok(&s, &req, &nodes, "first").await;
    let d = schedule_ok(&s, &req, &nodes, "again").await;
    assert_eq!(
        assigned(&d[0]),
        Some(nodes[0].id),
        "its own old reservation does not block it"
    );
    assert_eq!(s.reserved(&nodes[0].id), Resources::new(600, MIB));
}

#[tokio::test]
async fn sampling_still_finds_the_rare_feasible_node() {
    let s = scheduler(ScoringStrategy::Spread);
    let mut nodes: Vec<_> = (0..1000).map(|_| ready_node(100, 1024)).collect();
    nodes[777] = ready_node(10_000, 1024);
    let w = Arc::new(workload("web", Resources::new(500, MIB)));
    let d = schedule_ok(&s, &request(&w, 3), &nodes, "rare").await;
    assert!(
        d.iter().all(|d| assigned(d) == Some(nodes[777].id)),
        "{d:?}"
    );
}
