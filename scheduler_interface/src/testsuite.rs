//! The contract every [`Scheduler`] must keep, as async test cases.
//!
//! Run them all with [`run_all`], giving a factory for a fresh scheduler (each
//! case gets its own), from a multi-threaded tokio test:
//!
//! ```text
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn contract() {
//!     scheduler_interface::testsuite::run_all(|| Arc::new(MyScheduler::new()) as Arc<dyn Scheduler>).await;
//! }
//! ```
//!
//! The builders ([`node`], [`workload`], [`request`]) are public so that other
//! crates' tests can make nodes and workloads the same way. Cases panic with a
//! message naming the broken rule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use orchestrator_shared_types::{
    ContainerConfig, CpuQuantity, InstanceId, MemoryQuantity, Node, NodeId, NodeStatus, PublicKey,
    ResourceList, ResourceRequirements, Resources, Taint, TaintEffect, Toleration,
    TolerationOperator, WorkloadDefinition, WorkloadSpec,
};

use crate::{Placement, ScheduleDecision, ScheduleRequest, Scheduler};

/// One MiB in bytes.
pub const MIB: u64 = 1 << 20;

/// A node id that no other call in this process returns.
pub fn node_id() -> NodeId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    // splitmix64 of a counter: distinct and well spread, like real keys.
    let mut x = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    NodeId(bytes)
}

/// A node with a fresh id, `status`, and `allocatable` (also its capacity);
/// not cordoned, no labels, no taints.
pub fn node(status: NodeStatus, allocatable: Resources) -> Node {
    Node {
        id: node_id(),
        address: "127.0.0.1:7000".to_owned(),
        status,
        unschedulable: false,
        labels: Default::default(),
        taints: Vec::new(),
        resources_capacity: allocatable,
        resources_allocatable: allocatable,
        operator: PublicKey([7; 32]),
        joined_at: Utc::now(),
    }
}

/// A Ready node with `cpu_millis` millicores and `memory_mib` MiB allocatable.
pub fn ready_node(cpu_millis: u64, memory_mib: u64) -> Node {
    node(
        NodeStatus::Ready,
        Resources::new(cpu_millis, memory_mib * MIB),
    )
}

/// A workload named `name` with one container requesting `request`.
pub fn workload(name: &str, request: Resources) -> WorkloadDefinition {
    let spec = WorkloadSpec {
        name: name.to_owned(),
        replicas: 1,
        containers: vec![ContainerConfig {
            name: "main".to_owned(),
            image: "registry.example/app:1".to_owned(),
            command: Vec::new(),
            args: Vec::new(),
            env: Default::default(),
            secret_env: Vec::new(),
            secret_files: Vec::new(),
            volumes: Vec::new(),
            ports: Vec::new(),
            resources: ResourceRequirements {
                requests: ResourceList {
                    cpu: Some(CpuQuantity(request.cpu_millis)),
                    memory: Some(MemoryQuantity(request.memory_bytes)),
                    pids: None,
                },
                limits: ResourceList::default(),
            },
            liveness_probe: None,
            readiness_probe: None,
        }],
        labels: Default::default(),
        placement: Default::default(),
        restart_policy: Default::default(),
        update_strategy: Default::default(),
        trust: Default::default(),
        network: None,
    };
    WorkloadDefinition::new(PublicKey([9; 32]), spec)
}

/// A request to place `n` new instances of `workload`, none existing yet.
pub fn request(workload: &Arc<WorkloadDefinition>, n: usize) -> ScheduleRequest {
    ScheduleRequest {
        workload: Arc::clone(workload),
        instances: (0..n).map(|_| InstanceId::new()).collect(),
        existing: Vec::new(),
    }
}

/// The node of an `AssignNode` decision.
pub fn assigned(d: &ScheduleDecision) -> Option<NodeId> {
    match d {
        ScheduleDecision::AssignNode(n) => Some(*n),
        _ => None,
    }
}

/// Schedules and panics (naming `what`) if the scheduler fails as a whole or
/// returns the wrong number of decisions.
pub async fn schedule_ok(
    s: &dyn Scheduler,
    req: &ScheduleRequest,
    nodes: &[Node],
    what: &str,
) -> Vec<ScheduleDecision> {
    match s.schedule(req, nodes).await {
        Ok(d) => {
            assert_eq!(
                d.len(),
                req.instances.len(),
                "{what}: one decision per instance"
            );
            d
        }
        Err(e) => panic!("{what}: schedule failed: {e}"),
    }
}

/// Panics unless no node has more reserved than it can allocate.
pub fn assert_not_overcommitted(s: &dyn Scheduler, nodes: &[Node], what: &str) {
    for n in nodes {
        let r = s.reserved(&n.id);
        assert!(
            n.resources_allocatable.fits(r),
            "{what}: node {} over-committed: reserved {r:?}, allocatable {:?}",
            n.id.short(),
            n.resources_allocatable
        );
    }
}

fn small() -> Resources {
    Resources::new(100, 128 * MIB)
}

/// Every case, each on a fresh scheduler from `make`.
pub async fn run_all<F: Fn() -> Arc<dyn Scheduler>>(make: F) {
    places_on_a_ready_node(make()).await;
    never_places_on_unready_or_cordoned_nodes(make()).await;
    respects_resource_fit_across_calls(make()).await;
    release_frees_capacity(make()).await;
    record_placements_counts(make()).await;
    respects_node_selector(make()).await;
    respects_taints_and_tolerations(make()).await;
    respects_max_per_node(make()).await;
    never_gives_a_host_port_twice_on_a_node(make()).await;
    places_only_where_the_network_is_offered(make()).await;
    one_decision_per_instance_in_order(make()).await;
    no_placement_says_why(make()).await;
    concurrent_schedules_never_overcommit(make()).await;
}

/// An instance lands on the only Ready node and reserves its request there.
pub async fn places_on_a_ready_node(s: Arc<dyn Scheduler>) {
    let nodes = vec![ready_node(1000, 1024)];
    let w = Arc::new(workload("web", small()));
    let d = schedule_ok(&*s, &request(&w, 1), &nodes, "ready node").await;
    assert_eq!(d, vec![ScheduleDecision::AssignNode(nodes[0].id)]);
    assert_eq!(s.reserved(&nodes[0].id), small(), "placement is bound");
}

/// NotReady, Unknown, Down and cordoned nodes receive nothing.
pub async fn never_places_on_unready_or_cordoned_nodes(s: Arc<dyn Scheduler>) {
    let big = Resources::new(64_000, 1 << 40);
    let mut cordoned = node(NodeStatus::Ready, big);
    cordoned.unschedulable = true;
    let mut nodes = vec![
        node(NodeStatus::NotReady, big),
        node(NodeStatus::Unknown, big),
        node(NodeStatus::Down, big),
        cordoned,
    ];
    let w = Arc::new(workload("web", small()));
    let d = schedule_ok(&*s, &request(&w, 3), &nodes, "no usable node").await;
    assert!(
        d.iter()
            .all(|d| matches!(d, ScheduleDecision::NoPlacement(_))),
        "nothing may be placed on unready or cordoned nodes: {d:?}"
    );
    nodes.push(ready_node(1000, 1024));
    let ready = nodes[4].id;
    let d = schedule_ok(&*s, &request(&w, 5), &nodes, "one ready node").await;
    assert!(
        d.iter().all(|d| assigned(d) == Some(ready)),
        "every instance goes to the one Ready node: {d:?}"
    );
    for n in &nodes[..4] {
        assert_eq!(
            s.reserved(&n.id),
            Resources::ZERO,
            "unusable node got a reservation"
        );
    }
}

/// Reservations from earlier calls count against a node's allocatable.
pub async fn respects_resource_fit_across_calls(s: Arc<dyn Scheduler>) {
    let nodes = vec![ready_node(1000, 1024)];
    let w = Arc::new(workload("big", Resources::new(400, 256 * MIB)));
    let d = schedule_ok(&*s, &request(&w, 2), &nodes, "first call").await;
    assert!(
        d.iter().all(|d| assigned(d).is_some()),
        "two of 400m fit in 1000m: {d:?}"
    );
    let d = schedule_ok(&*s, &request(&w, 1), &nodes, "second call").await;
    assert!(
        matches!(d[0], ScheduleDecision::NoPlacement(_)),
        "a third 400m does not fit beside two reserved earlier: {d:?}"
    );
    assert_eq!(s.reserved(&nodes[0].id), Resources::new(800, 512 * MIB));
    // Memory counts as well as cpu.
    let m = Arc::new(workload("mem", Resources::new(1, 600 * MIB)));
    let d = schedule_ok(&*s, &request(&m, 1), &nodes, "memory").await;
    assert!(
        matches!(d[0], ScheduleDecision::NoPlacement(_)),
        "600Mi does not fit in 512Mi: {d:?}"
    );
}

/// Releasing an instance frees its capacity; releasing twice or an unknown id is harmless.
pub async fn release_frees_capacity(s: Arc<dyn Scheduler>) {
    let nodes = vec![ready_node(1000, 1024)];
    let w = Arc::new(workload("big", Resources::new(600, 256 * MIB)));
    let first = request(&w, 1);
    let d = schedule_ok(&*s, &first, &nodes, "first").await;
    assert!(assigned(&d[0]).is_some(), "{d:?}");
    let d = schedule_ok(&*s, &request(&w, 1), &nodes, "full").await;
    assert!(matches!(d[0], ScheduleDecision::NoPlacement(_)), "{d:?}");
    s.release(first.instances[0]);
    s.release(first.instances[0]);
    s.release(InstanceId::new());
    assert_eq!(
        s.reserved(&nodes[0].id),
        Resources::ZERO,
        "release frees the reservation"
    );
    let d = schedule_ok(&*s, &request(&w, 1), &nodes, "after release").await;
    assert!(
        assigned(&d[0]).is_some(),
        "capacity is usable again after release: {d:?}"
    );
}

/// Placements recorded from elsewhere reserve capacity, once per instance.
pub async fn record_placements_counts(s: Arc<dyn Scheduler>) {
    let nodes = [ready_node(1000, 1024), ready_node(1000, 1024)];
    let held = Placement {
        instance: InstanceId::new(),
        node: nodes[0].id,
        resources: Resources::new(800, 100 * MIB),
        host_ports: Vec::new(),
    };
    s.record_placements(std::slice::from_ref(&held));
    s.record_placements(std::slice::from_ref(&held));
    assert_eq!(
        s.reserved(&nodes[0].id),
        held.resources,
        "recording twice counts once"
    );
    let w = Arc::new(workload("w", Resources::new(400, 10 * MIB)));
    let d = schedule_ok(&*s, &request(&w, 1), &nodes[..1], "recorded").await;
    assert!(
        matches!(d[0], ScheduleDecision::NoPlacement(_)),
        "recorded 800m leaves no room for 400m: {d:?}"
    );
    // Recording the same instance on another node moves it.
    s.record_placements(&[Placement {
        node: nodes[1].id,
        ..held.clone()
    }]);
    assert_eq!(s.reserved(&nodes[0].id), Resources::ZERO);
    assert_eq!(s.reserved(&nodes[1].id), held.resources);
    s.release(held.instance);
    assert_eq!(s.reserved(&nodes[1].id), Resources::ZERO);
}

/// Only nodes carrying the selected labels receive instances.
pub async fn respects_node_selector(s: Arc<dyn Scheduler>) {
    let mut nodes: Vec<Node> = (0..6).map(|_| ready_node(4000, 4096)).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.labels
            .insert("zone".into(), if i % 3 == 0 { "a" } else { "b" }.into());
    }
    let mut w = workload("zoned", small());
    w.spec
        .placement
        .node_selector
        .insert("zone".into(), "a".into());
    let w = Arc::new(w);
    let d = schedule_ok(&*s, &request(&w, 6), &nodes, "selector").await;
    for d in &d {
        let Some(id) = assigned(d) else {
            panic!("zone a has room: {d:?}")
        };
        let n = nodes.iter().find(|n| n.id == id);
        assert_eq!(
            n.and_then(|n| n.labels.get("zone")).map(String::as_str),
            Some("a"),
            "placed outside the selector"
        );
    }
    let mut none = workload("nowhere", small());
    none.spec
        .placement
        .node_selector
        .insert("zone".into(), "c".into());
    let d = schedule_ok(&*s, &request(&Arc::new(none), 1), &nodes, "no match").await;
    assert!(matches!(d[0], ScheduleDecision::NoPlacement(_)), "{d:?}");
}

/// A NoSchedule taint excludes a node unless the workload tolerates it.
pub async fn respects_taints_and_tolerations(s: Arc<dyn Scheduler>) {
    let mut tainted = ready_node(4000, 4096);
    tainted.taints.push(Taint {
        key: "gpu".into(),
        value: "true".into(),
        effect: TaintEffect::NoSchedule,
    });
    let mut evicting = ready_node(4000, 4096);
    evicting.taints.push(Taint {
        key: "gpu".into(),
        value: "true".into(),
        effect: TaintEffect::NoExecute,
    });
    let nodes = vec![tainted, evicting];
    let plain = Arc::new(workload("plain", small()));
    let d = schedule_ok(&*s, &request(&plain, 2), &nodes, "untolerated").await;
    assert!(
        d.iter()
            .all(|d| matches!(d, ScheduleDecision::NoPlacement(_))),
        "tainted nodes exclude non-tolerating instances: {d:?}"
    );
    let mut tolerant = workload("tolerant", small());
    tolerant.spec.placement.tolerations.push(Toleration {
        key: "gpu".into(),
        operator: TolerationOperator::Equal,
        value: "true".into(),
        effect: None,
    });
    let d = schedule_ok(&*s, &request(&Arc::new(tolerant), 4), &nodes, "tolerated").await;
    assert!(
        d.iter().all(|d| assigned(d).is_some()),
        "a toleration lets instances onto tainted nodes: {d:?}"
    );
}

/// A workload with `port` declared, on the host's network (so the port is
/// the node's).
pub fn publishing(name: &str, port: u32, protocol: &str) -> WorkloadDefinition {
    let mut w = workload(name, small());
    w.spec.network = Some(orchestrator_shared_types::NetworkMode::Host);
    w.spec.containers[0].ports = vec![orchestrator_shared_types::PortSpec {
        container_port: port,
        protocol: protocol.to_owned(),
        name: None,
        host_port: None,
    }];
    w
}

/// Two instances taking the same port never share a node, whichever
/// workloads they belong to and however they were placed (in one call, in
/// another, or recorded); the reason names the port; another protocol or a
/// workload off the host's network does not conflict; a release frees it.
pub async fn never_gives_a_host_port_twice_on_a_node(s: Arc<dyn Scheduler>) {
    let nodes: Vec<Node> = (0..2).map(|_| ready_node(8000, 8192)).collect();
    let web = Arc::new(publishing("web", 8088, "TCP"));
    let d = schedule_ok(&*s, &request(&web, 3), &nodes, "three on two nodes").await;
    let placed: Vec<NodeId> = d.iter().filter_map(assigned).collect();
    assert_eq!(placed.len(), 2, "one per node: {d:?}");
    assert_ne!(placed[0], placed[1], "not on the same node: {d:?}");
    let ScheduleDecision::NoPlacement(reason) = &d[2] else {
        panic!("a third instance has no node left: {d:?}")
    };
    assert!(reason.contains("host port in use"), "{reason}");
    // Another workload on the same port: no room either.
    let other = Arc::new(publishing("other", 8088, "TCP"));
    let d = schedule_ok(&*s, &request(&other, 1), &nodes, "taken by another").await;
    assert!(matches!(d[0], ScheduleDecision::NoPlacement(_)), "{d:?}");
    // The same number over UDP, and a workload with no network: placed.
    let udp = Arc::new(publishing("dns", 8088, "UDP"));
    let d = schedule_ok(&*s, &request(&udp, 2), &nodes, "udp").await;
    assert!(d.iter().all(|d| assigned(d).is_some()), "{d:?}");
    let mut isolated = publishing("isolated", 8088, "TCP");
    isolated.spec.network = Some(orchestrator_shared_types::NetworkMode::None);
    let d = schedule_ok(&*s, &request(&Arc::new(isolated), 1), &nodes, "none").await;
    assert!(assigned(&d[0]).is_some(), "{d:?}");
    // A recorded placement holds its port; releasing it frees the node.
    let third = ready_node(8000, 8192);
    let held = Placement {
        instance: InstanceId::new(),
        node: third.id,
        resources: small(),
        host_ports: web.spec.host_ports(),
    };
    s.record_placements(std::slice::from_ref(&held));
    let d = schedule_ok(
        &*s,
        &request(&other, 1),
        std::slice::from_ref(&third),
        "recorded",
    )
    .await;
    assert!(matches!(d[0], ScheduleDecision::NoPlacement(_)), "{d:?}");
    s.release(held.instance);
    let d = schedule_ok(&*s, &request(&other, 1), &[third], "released").await;
    assert!(assigned(&d[0]).is_some(), "the port is free again: {d:?}");
}

/// A node that says which networks it offers (`univrs.io/networks`) gets
/// only workloads on one of them: a host-network workload skips nodes whose
/// operator has not allowed it, and the reason says so; a node that says
/// nothing is not filtered.
pub async fn places_only_where_the_network_is_offered(s: Arc<dyn Scheduler>) {
    use orchestrator_shared_types::{ports::NODE_NETWORKS_LABEL, NetworkMode};
    let mut guarded = ready_node(8000, 8192);
    guarded
        .labels
        .insert(NODE_NETWORKS_LABEL.into(), "bridge,none".into());
    let mut host = workload("host", small());
    host.spec.network = Some(NetworkMode::Host);
    let host = Arc::new(host);
    let d = schedule_ok(
        &*s,
        &request(&host, 1),
        std::slice::from_ref(&guarded),
        "host refused",
    )
    .await;
    let ScheduleDecision::NoPlacement(reason) = &d[0] else {
        panic!("a host-network instance on a node that refuses it: {d:?}")
    };
    assert!(reason.contains("1 network mode not offered"), "{reason}");
    let bridged = Arc::new(workload("bridged", small()));
    let d = schedule_ok(
        &*s,
        &request(&bridged, 1),
        std::slice::from_ref(&guarded),
        "bridge offered",
    )
    .await;
    assert_eq!(assigned(&d[0]), Some(guarded.id), "{d:?}");
    let open = ready_node(8000, 8192);
    let nodes = [guarded.clone(), open.clone()];
    let d = schedule_ok(&*s, &request(&host, 1), &nodes, "unlabelled node").await;
    assert_eq!(assigned(&d[0]), Some(open.id), "{d:?}");
}

/// `max_per_node` counts existing instances and those placed in the same call.
pub async fn respects_max_per_node(s: Arc<dyn Scheduler>) {
    let nodes: Vec<Node> = (0..3).map(|_| ready_node(8000, 8192)).collect();
    let mut w = workload("capped", small());
    w.spec.placement.max_per_node = Some(2);
    let w = Arc::new(w);
    let mut req = request(&w, 5);
    let old = InstanceId::new();
    req.existing.push((old, nodes[0].id));
    s.record_placements(&[Placement {
        instance: old,
        node: nodes[0].id,
        resources: small(),
        host_ports: Vec::new(),
    }]);
    let d = schedule_ok(&*s, &req, &nodes, "capped").await;
    let mut per_node: HashMap<NodeId, u32> = HashMap::from([(nodes[0].id, 1)]);
    for d in &d {
        let Some(id) = assigned(d) else {
            panic!("room for 5 within max 2 per node: {d:?}")
        };
        *per_node.entry(id).or_default() += 1;
    }
    assert!(
        per_node.values().all(|&c| c <= 2),
        "more than max_per_node on a node: {per_node:?}"
    );
    let mut full = request(&w, 1);
    full.existing = per_node
        .iter()
        .flat_map(|(n, c)| (0..*c).map(|_| (InstanceId::new(), *n)))
        .collect();
    let d = schedule_ok(&*s, &full, &nodes, "all capped").await;
    assert!(
        matches!(d[0], ScheduleDecision::NoPlacement(_)),
        "every node at max_per_node: {d:?}"
    );
}

/// One decision per instance, in order: releasing instance `i` frees exactly
/// its request on the node decision `i` named.
pub async fn one_decision_per_instance_in_order(s: Arc<dyn Scheduler>) {
    let nodes: Vec<Node> = (0..4).map(|_| ready_node(1000, 4096)).collect();
    let w = Arc::new(workload("ordered", Resources::new(300, 64 * MIB)));
    // 4 nodes × 3 instances fit; 14 asked: the last two cannot be placed.
    let req = request(&w, 14);
    let d = schedule_ok(&*s, &req, &nodes, "order").await;
    assert_eq!(
        d.iter().filter(|d| assigned(d).is_some()).count(),
        12,
        "{d:?}"
    );
    for (i, d) in req.instances.iter().zip(&d) {
        if let Some(n) = assigned(d) {
            let before = s.reserved(&n);
            s.release(*i);
            assert_eq!(
                s.reserved(&n),
                before.saturating_sub(w.spec.instance_request()),
                "decision order"
            );
        }
    }
}

/// A `NoPlacement` says why, in words a user understands.
pub async fn no_placement_says_why(s: Arc<dyn Scheduler>) {
    let nodes = vec![
        node(NodeStatus::NotReady, Resources::new(1000, 1 << 30)),
        ready_node(50, 1024),
    ];
    let w = Arc::new(workload("web", small()));
    let d = schedule_ok(&*s, &request(&w, 1), &nodes, "reason").await;
    match &d[0] {
        ScheduleDecision::NoPlacement(reason) => assert!(!reason.trim().is_empty(), "empty reason"),
        other => panic!("nothing fits, yet: {other:?}"),
    }
    let d = schedule_ok(&*s, &request(&w, 1), &[], "no nodes").await;
    assert!(
        matches!(&d[0], ScheduleDecision::NoPlacement(r) if !r.is_empty()),
        "{d:?}"
    );
}

/// Many tasks scheduling at once never over-commit a node.
pub async fn concurrent_schedules_never_overcommit(s: Arc<dyn Scheduler>) {
    // 5 nodes × 10 slots of 100m; 32 tasks × 3 calls × 4 instances = 384 asked.
    let nodes: Arc<Vec<Node>> = Arc::new((0..5).map(|_| ready_node(1000, 100_000)).collect());
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..32 {
        let (s, nodes) = (Arc::clone(&s), Arc::clone(&nodes));
        tasks.spawn(async move {
            let w = Arc::new(workload(&format!("w{t}"), small()));
            let mut placed = 0usize;
            for _ in 0..3 {
                let d = schedule_ok(&*s, &request(&w, 4), &nodes, "concurrent").await;
                placed += d.iter().filter(|d| assigned(d).is_some()).count();
                tokio::task::yield_now().await;
            }
            placed
        });
    }
    let mut placed = 0;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(n) => placed += n,
            Err(e) => panic!("a scheduling task failed: {e}"),
        }
    }
    assert_not_overcommitted(&*s, &nodes, "concurrent");
    assert_eq!(placed, 50, "exactly the 50 slots are filled, never more");
    let total = nodes
        .iter()
        .fold(Resources::ZERO, |a, n| a.saturating_add(s.reserved(&n.id)));
    assert_eq!(total.cpu_millis, 50 * 100, "reservations match placements");
}
