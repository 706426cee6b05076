//! Properties of the reconciler over random clusters and workloads: no node is
//! ever given more than its allocatable resources, and a second pass with
//! nothing changed does nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cluster_manager::mock::{test_node, MockClusterManager};
use container_runtime::mock::MockRuntime;
use container_runtime_interface::ContainerRuntime;
use orchestrator_core::nodes::NodeView;
use orchestrator_core::reconciler::{reconcile, Ctx};
use orchestrator_core::{Deps, ReconcilerConfig};
use orchestrator_shared_types::{
    CpuQuantity, InstanceStatus, MemoryQuantity, Node, NodeId, NodeStatus, Resources, Taint,
    TaintEffect, Toleration, TolerationOperator, WorkloadDefinition,
};
use proptest::prelude::*;
use scheduler_interface::simple::{SimpleScheduler, SimpleSchedulerConfig};
use state_store_interface::memory::InMemoryStore;
use state_store_interface::StateStore;

#[derive(Clone, Debug)]
struct NodeCase {
    cpu: u64,
    mem_mi: u64,
    status: NodeStatus,
    cordoned: bool,
    zone: u8,
    tainted: bool,
}

#[derive(Clone, Debug)]
struct WorkloadCase {
    replicas: u32,
    cpu: u64,
    mem_mi: u64,
    zone: Option<u8>,
    tolerates: bool,
}

fn node_case() -> impl Strategy<Value = NodeCase> {
    (
        500u64..8000,
        256u64..8192,
        prop_oneof![6 => Just(NodeStatus::Ready), 1 => Just(NodeStatus::NotReady), 1 => Just(NodeStatus::Down)],
        prop::bool::weighted(0.15),
        0u8..3,
        prop::bool::weighted(0.2),
    )
        .prop_map(|(cpu, mem_mi, status, cordoned, zone, tainted)| NodeCase { cpu, mem_mi, status, cordoned, zone, tainted })
}

fn workload_case() -> impl Strategy<Value = WorkloadCase> {
    (
        0u32..7,
        50u64..3000,
        16u64..2048,
        prop::option::weighted(0.3, 0u8..3),
        prop::bool::ANY,
    )
        .prop_map(|(replicas, cpu, mem_mi, zone, tolerates)| WorkloadCase {
            replicas,
            cpu,
            mem_mi,
            zone,
            tolerates,
        })
}

fn build_node(i: usize, c: &NodeCase) -> Node {
    let mut n = test_node(i as u64 + 1, c.cpu, c.mem_mi << 20);
    n.transition(c.status)
        .expect("a test node is Ready, and Ready may move anywhere");
    n.unschedulable = c.cordoned;
    n.labels.insert("zone".into(), format!("z{}", c.zone));
    if c.tainted {
        n.taints.push(Taint {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: TaintEffect::NoSchedule,
        });
    }
    n
}

fn build_workload(i: usize, c: &WorkloadCase) -> WorkloadDefinition {
    let mut s = common::spec(&format!("w{i}"), c.replicas);
    s.containers[0].resources.requests.cpu = Some(CpuQuantity(c.cpu));
    s.containers[0].resources.requests.memory = Some(MemoryQuantity(c.mem_mi << 20));
    if let Some(z) = c.zone {
        s.placement.node_selector = BTreeMap::from([("zone".into(), format!("z{z}"))]);
    }
    if c.tolerates {
        s.placement.tolerations.push(Toleration {
            key: "dedicated".into(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: None,
        });
    }
    WorkloadDefinition::new(common::OWNER, s)
}

async fn check_allocations(
    store: &dyn StateStore,
    nodes: &[Node],
    workloads: &[WorkloadDefinition],
) {
    let requests: HashMap<_, _> = workloads
        .iter()
        .map(|w| (w.id, w.spec.instance_request()))
        .collect();
    let mut used: HashMap<NodeId, Resources> = HashMap::new();
    for i in store.list_instances().await.unwrap() {
        if matches!(i.status, InstanceStatus::Pending | InstanceStatus::Running) {
            let u = used.entry(i.node_id).or_default();
            *u = u.saturating_add(requests[&i.workload_id]);
        }
    }
    for n in nodes {
        let u = used.get(&n.id).copied().unwrap_or_default();
        assert!(
            n.resources_allocatable.fits(u),
            "node {} over-committed: {u:?} > {:?}",
            n.id.short(),
            n.resources_allocatable
        );
        if u != Resources::ZERO {
            assert!(
                n.is_schedulable(),
                "instances were placed on unschedulable node {n:?}"
            );
        }
    }
}

async fn run_case(nodes: Vec<Node>, workloads: Vec<WorkloadDefinition>, order: Vec<usize>) {
    let store: Arc<dyn StateStore> = Arc::new(InMemoryStore::new());
    store.initialize().await.unwrap();
    let runtime = Arc::new(MockRuntime::new());
    for n in &nodes {
        runtime.init_node(n.id).await.unwrap();
    }
    let cluster = Arc::new(MockClusterManager::new(nodes[0].clone()));
    let deps = Deps {
        store: Arc::clone(&store),
        runtime,
        cluster,
        scheduler: Arc::new(SimpleScheduler::new(SimpleSchedulerConfig {
            seed: Some(7),
            ..Default::default()
        })),
        metrics: Arc::new(observability::metrics::Metrics::new().unwrap()),
        events: observability::events::EventHub::new(1024),
    };
    let ctx = Ctx::new(
        deps,
        ReconcilerConfig::for_test(),
        NodeView::new(nodes.clone()),
    );
    store.put_workloads_batch(&workloads).await.unwrap();
    // Passes in random order until one full round changes nothing.
    let mut rounds = 0;
    loop {
        let mut actions = 0;
        for &k in &order {
            actions += reconcile(&ctx, workloads[k % workloads.len()].id)
                .await
                .unwrap()
                .actions;
            check_allocations(&*store, &nodes, &workloads).await;
        }
        rounds += 1;
        if actions == 0 {
            break;
        }
        assert!(rounds < 5, "no fixed point after {rounds} rounds");
    }
    // And once converged, every workload's next pass does nothing.
    for w in &workloads {
        assert_eq!(
            reconcile(&ctx, w.id).await.unwrap().actions,
            0,
            "second pass acted on {}",
            w.name()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn placements_never_overcommit_and_a_second_pass_is_a_no_op(
        node_cases in prop::collection::vec(node_case(), 1..8),
        workload_cases in prop::collection::vec(workload_case(), 1..8),
        order in prop::collection::vec(0usize..64, 1..24),
    ) {
        let nodes: Vec<Node> = node_cases.iter().enumerate().map(|(i, c)| build_node(i, c)).collect();
        let workloads: Vec<WorkloadDefinition> = workload_cases.iter().enumerate().map(|(i, c)| build_workload(i, c)).collect();
        // Every workload appears in the order at least once.
        let mut order = order;
        order.extend(0..workloads.len());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_case(nodes, workloads, order));
    }
}
