//! The mycelial scheduler and credit: a node of another operator than the
//! owner's is eligible only while the owner can cover the pledge of an
//! instance there, and the replicas of one call share that headroom.

mod mycelial_common;

use std::sync::Arc;

use mycelial::{NodeStanding, TrustSource};
use mycelial_common::{big_nodes, with_rules};
use orchestrator_shared_types::{Node, PublicKey, TrustRules};
use scheduler_interface::testsuite::{assigned, ready_node, request, schedule_ok};
use scheduler_interface::{
    MycelialScheduler, MycelialSchedulerConfig, ScheduleDecision, Scheduler,
};

/// Every node known and good; the owner can pledge nothing.
struct Broke;

impl TrustSource for Broke {
    fn standings(&self, _: &PublicKey, _: &[PublicKey], nodes: &[Node]) -> Vec<NodeStanding> {
        vec![
            NodeStanding {
                composite: 1.0,
                qualifying_attestations: 3,
            };
            nodes.len()
        ]
    }

    fn pledge_headroom(&self, _: &PublicKey) -> Option<i64> {
        Some(0)
    }

    fn pledge_cost(&self, _: &Node, _: u64) -> i64 {
        1
    }
}

#[tokio::test]
async fn an_owner_who_cannot_pledge_runs_only_on_their_own_operators_nodes() {
    let mut nodes = big_nodes(3);
    let w = with_rules("thrifty", TrustRules::default());
    let sched = MycelialScheduler::new(MycelialSchedulerConfig::for_test(), Arc::new(Broke));
    let d = schedule_ok(&sched, &request(&w, 1), &nodes, "placement").await;
    match &d[0] {
        ScheduleDecision::NoPlacement(reason) => assert!(
            reason.contains("3 nodes excluded by credit"),
            "the reason names the credit rule: {reason}"
        ),
        other => panic!("placed although the owner cannot pledge: {other:?}"),
    }
    // The owner's own node needs no pledge.
    nodes[1].operator = w.owner;
    for _ in 0..20 {
        let req = request(&w, 1);
        let d = schedule_ok(&sched, &req, &nodes, "placement").await;
        assert_eq!(assigned(&d[0]), Some(nodes[1].id), "{d:?}");
        sched.release(req.instances[0]);
    }
}

/// Every node known and good; the owner can pledge `headroom`, and a pledge
/// costs 1 per 10 cores of the node's allocatable cpu.
struct Budget {
    headroom: i64,
}

impl Budget {
    fn cost(node: &Node) -> i64 {
        i64::try_from(node.resources_allocatable.cpu_millis / 10_000).unwrap_or(i64::MAX)
    }
}

impl TrustSource for Budget {
    fn standings(&self, u: &PublicKey, t: &[PublicKey], nodes: &[Node]) -> Vec<NodeStanding> {
        Broke.standings(u, t, nodes)
    }

    fn pledge_headroom(&self, _: &PublicKey) -> Option<i64> {
        Some(self.headroom)
    }

    fn pledge_cost(&self, node: &Node, _: u64) -> i64 {
        Self::cost(node)
    }
}

fn no_placements(d: &[ScheduleDecision]) -> Vec<&str> {
    d.iter()
        .filter_map(|d| match d {
            ScheduleDecision::NoPlacement(reason) => Some(reason.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn one_call_places_no_more_pledges_than_the_owner_can_cover() {
    let w = with_rules("frugal", TrustRules::default());
    // Other operators' nodes with room for everything, a pledge of 100 each;
    // the owner's own node, free, with room for two instances.
    let mut nodes = big_nodes(8);
    let mut own = ready_node(200, 1024);
    own.operator = w.owner;
    nodes.push(own);
    let own = nodes[8].id;
    assert_eq!(Budget::cost(&nodes[0]), 100);
    // Enough for two pledges, not three.
    let sched = MycelialScheduler::new(
        MycelialSchedulerConfig::for_test(),
        Arc::new(Budget { headroom: 250 }),
    );
    for round in 0..20 {
        let req = request(&w, 5);
        let d = schedule_ok(&sched, &req, &nodes, "placement").await;
        let on_own = d.iter().filter(|d| assigned(d) == Some(own)).count();
        let pledged = d
            .iter()
            .filter(|d| assigned(d).is_some_and(|n| n != own))
            .count();
        assert_eq!(
            (pledged, on_own),
            (2, 2),
            "round {round}: two pledges, then the owner's node until it is full: {d:?}"
        );
        let reasons = no_placements(&d);
        assert_eq!(reasons.len(), 1, "round {round}: {d:?}");
        assert_eq!(
            reasons[0],
            "0/9 nodes fit: 1 insufficient cpu; no node satisfies the owner's trust rules: \
             8 nodes excluded by credit (the owner's available credit does not cover the pledge)",
            "round {round}"
        );
        // The next call starts from the source's headroom again.
        for &i in &req.instances {
            sched.release(i);
        }
    }
}

#[tokio::test]
async fn dear_nodes_are_priced_out_before_cheap_ones() {
    // Pledges of 100 on four nodes, of 10 on four others; 130 to spend.
    let mut nodes = big_nodes(8);
    for n in &mut nodes[4..] {
        n.resources_allocatable.cpu_millis = 100_000;
        n.resources_capacity.cpu_millis = 100_000;
    }
    assert_eq!(
        (Budget::cost(&nodes[0]), Budget::cost(&nodes[7])),
        (100, 10)
    );
    let headroom = 130;
    let sched = MycelialScheduler::new(
        MycelialSchedulerConfig::for_test(),
        Arc::new(Budget { headroom }),
    );
    let w = with_rules("frugal", TrustRules::default());
    let mut dear_placed = false;
    for round in 0..50 {
        let req = request(&w, 14);
        let d = schedule_ok(&sched, &req, &nodes, "placement").await;
        let mut spent = 0;
        for id in d.iter().filter_map(assigned) {
            let node = nodes.iter().find(|n| n.id == id).unwrap();
            spent += Budget::cost(node);
            dear_placed |= Budget::cost(node) == 100;
        }
        assert!(spent <= headroom, "round {round}: {spent} spent: {d:?}");
        // Whatever was left bought no cheap pledge, and every refusal says why.
        let reasons = no_placements(&d);
        assert!(!reasons.is_empty(), "round {round}: 14 × 10 > 130");
        assert!(headroom - spent < 10, "round {round}: {spent} spent: {d:?}");
        for r in reasons {
            assert!(
                r.contains("8 nodes excluded by credit"),
                "round {round}: {r}"
            );
        }
        for &i in &req.instances {
            sched.release(i);
        }
    }
    assert!(
        dear_placed,
        "the dear nodes are drawn while the owner can pay"
    );
}
