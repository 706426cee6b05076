//! Draining a node: its instances move elsewhere through their workloads' own
//! passes, never more than `max_unavailable` of a workload unavailable at
//! once, and never while another pass of the same workload acts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cluster_manager::mock::MockClusterManager;
use common::{nodes, spec, wait_for, OWNER};
use container_runtime::mock::MockRuntime;
use container_runtime_interface::{
    ContainerRuntime, ContainerSpec, ContainerStatus, LogLine, LogOptions, Result as RtResult,
};
use futures::stream::BoxStream;
use orchestrator_core::{Deps, Orchestrator, ReconcileEvent, ReconcilerConfig};
use orchestrator_shared_types::{ContainerId, InstanceStatus, NodeId, UpdateStrategy, WorkloadId};
use scheduler_interface::simple::{SimpleScheduler, SimpleSchedulerConfig};
use state_store_interface::memory::InMemoryStore;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// What the watching runtime saw of one workload.
#[derive(Debug, Default)]
struct Seen {
    /// Containers created and not yet stopped or removed.
    running: HashSet<ContainerId>,
    /// Fewest running containers since tracking was armed.
    min_running: Option<usize>,
    /// Most containers at once since tracking was armed.
    max_running: usize,
    /// Creations and removals in flight now.
    creating: usize,
    removing: usize,
    /// Times a removal and a creation of the workload were in flight at once.
    overlaps: usize,
}

#[derive(Debug, Default)]
struct Tracker {
    armed: bool,
    owner: HashMap<ContainerId, WorkloadId>,
    seen: HashMap<WorkloadId, Seen>,
}

impl Tracker {
    fn note(&mut self, w: WorkloadId) {
        let armed = self.armed;
        let s = self.seen.entry(w).or_default();
        if armed {
            let n = s.running.len();
            s.min_running = Some(s.min_running.map_or(n, |m| m.min(n)));
            s.max_running = s.max_running.max(n);
        }
    }
}

/// A runtime that watches, per workload, how many containers run and whether
/// a removal ever overlaps a creation (within one pass they never do:
/// removals finish before anything starts).
struct Watching {
    inner: Arc<MockRuntime>,
    tracker: Mutex<Tracker>,
}

impl Watching {
    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap()
    }

    fn arm(&self) {
        let mut t = self.tracker();
        t.armed = true;
        let ids: Vec<WorkloadId> = t.seen.keys().copied().collect();
        for w in ids {
            t.note(w);
        }
    }

    fn start_removal(&self, id: &ContainerId) -> Option<WorkloadId> {
        let mut t = self.tracker();
        let w = *t.owner.get(id)?;
        let s = t.seen.entry(w).or_default();
        s.removing += 1;
        if s.creating > 0 {
            s.overlaps += 1;
        }
        s.running.remove(id);
        t.note(w);
        Some(w)
    }

    fn end_removal(&self, w: Option<WorkloadId>) {
        if let Some(w) = w {
            if let Some(s) = self.tracker().seen.get_mut(&w) {
                s.removing -= 1;
            }
        }
    }
}

#[async_trait]
impl ContainerRuntime for Watching {
    async fn init_node(&self, node: NodeId) -> RtResult<()> {
        self.inner.init_node(node).await
    }

    async fn create_container(&self, node: NodeId, spec: &ContainerSpec) -> RtResult<ContainerId> {
        let w = spec.workload_id;
        {
            let mut t = self.tracker();
            let s = t.seen.entry(w).or_default();
            s.creating += 1;
            if s.removing > 0 {
                s.overlaps += 1;
            }
        }
        let res = self.inner.create_container(node, spec).await;
        let mut t = self.tracker();
        if let Ok(id) = &res {
            t.owner.insert(id.clone(), w);
            t.seen.entry(w).or_default().running.insert(id.clone());
        }
        t.seen.entry(w).or_default().creating -= 1;
        t.note(w);
        res
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> RtResult<()> {
        let w = self.start_removal(id);
        let res = self.inner.stop_container(id, grace).await;
        self.end_removal(w);
        res
    }

    async fn remove_container(&self, id: &ContainerId) -> RtResult<()> {
        let w = self.start_removal(id);
        let res = self.inner.remove_container(id).await;
        self.end_removal(w);
        res
    }

    async fn get_container_status(&self, id: &ContainerId) -> RtResult<ContainerStatus> {
        self.inner.get_container_status(id).await
    }

    async fn list_containers(&self, node: NodeId) -> RtResult<Vec<ContainerStatus>> {
        self.inner.list_containers(node).await
    }

    async fn get_container_logs(
        &self,
        id: &ContainerId,
        opts: LogOptions,
    ) -> RtResult<Vec<LogLine>> {
        self.inner.get_container_logs(id, opts).await
    }

    async fn follow_container_logs(
        &self,
        id: &ContainerId,
    ) -> RtResult<BoxStream<'static, LogLine>> {
        self.inner.follow_container_logs(id).await
    }

    fn subscribe_status(&self) -> broadcast::Receiver<ContainerStatus> {
        self.inner.subscribe_status()
    }
}

struct Lab {
    orch: Orchestrator,
    runtime: Arc<Watching>,
    nodes: Vec<NodeId>,
    cancel: CancellationToken,
}

/// Three nodes; creations take a while, so that passes overlap in time.
async fn lab() -> Lab {
    let nodes = nodes(3);
    let cluster = Arc::new(MockClusterManager::new(nodes[0].clone()));
    for n in &nodes[1..] {
        cluster.add_node(n.clone()).unwrap();
    }
    let mock = Arc::new(MockRuntime::new().with_latency(Duration::from_millis(50)));
    for n in &nodes {
        mock.init_node(n.id).await.unwrap();
    }
    let runtime = Arc::new(Watching {
        inner: mock,
        tracker: Mutex::new(Tracker::default()),
    });
    let deps = Deps {
        store: Arc::new(InMemoryStore::new()),
        runtime: runtime.clone(),
        cluster,
        scheduler: Arc::new(SimpleScheduler::new(SimpleSchedulerConfig::default())),
        metrics: Arc::new(observability::metrics::Metrics::new().unwrap()),
        events: observability::events::EventHub::new(1024),
    };
    let cancel = CancellationToken::new();
    let orch = Orchestrator::start(ReconcilerConfig::for_test(), deps, cancel.clone())
        .await
        .unwrap();
    Lab {
        orch,
        runtime,
        nodes: nodes.iter().map(|n| n.id).collect(),
        cancel,
    }
}

/// Instances of `name` per node.
async fn placement(orch: &Orchestrator, id: &WorkloadId) -> HashMap<NodeId, usize> {
    let mut per_node = HashMap::new();
    for i in orch.list_instances(id).await.unwrap() {
        *per_node.entry(i.node_id).or_default() += 1;
    }
    per_node
}

/// Puts `replicas` of a workload on the first node, then drains that node
/// while a scale-up pass of the workload is under way; checks the bounds.
async fn drain_case(max_surge: u32, max_unavailable: u32) {
    let lab = lab().await;
    let (first, others) = (lab.nodes[0], &lab.nodes[1..]);
    // Everything on the first node: cordon the others while placing.
    for n in others {
        lab.orch.set_unschedulable(n, true).await.unwrap();
    }
    let mut s = spec("web", 4);
    s.update_strategy = UpdateStrategy {
        max_surge,
        max_unavailable,
        ..UpdateStrategy::default()
    };
    let w = lab.orch.apply_workload(OWNER, s).await.unwrap();
    wait_for(
        Duration::from_secs(20),
        "4 replicas on the first node",
        || async {
            let p = placement(&lab.orch, &w.id).await;
            let running = lab
                .orch
                .list_instances(&w.id)
                .await
                .unwrap()
                .iter()
                .filter(|i| i.status == InstanceStatus::Running)
                .count();
            (p.get(&first) == Some(&4) && running == 4).then_some(())
        },
    )
    .await;
    for n in others {
        lab.orch.set_unschedulable(n, false).await.unwrap();
    }

    let mut events = lab.orch.subscribe();
    lab.runtime.arm();
    // A pass of the workload is busy creating a fifth replica when the drain
    // comes: the drain must wait for it rather than act beside it.
    lab.orch.scale(&OWNER, "web", 5).await.unwrap();
    wait_for(
        Duration::from_secs(10),
        "the scale-up pass to create",
        || async {
            let t = lab.runtime.tracker();
            (t.seen.get(&w.id).is_some_and(|s| s.creating > 0)).then_some(())
        },
    )
    .await;
    let node = lab.orch.drain_node(&first).await.unwrap();
    assert!(node.unschedulable, "drain cordons the node at once");

    wait_for(
        Duration::from_secs(20),
        "the node to be drained",
        || async {
            let p = placement(&lab.orch, &w.id).await;
            let instances = lab.orch.list_instances(&w.id).await.unwrap();
            let done = !p.contains_key(&first)
                && instances.len() == 5
                && instances
                    .iter()
                    .all(|i| i.status == InstanceStatus::Running);
            done.then_some(())
        },
    )
    .await;

    let (min, max_running, overlaps) = {
        let t = lab.runtime.tracker();
        let seen = t.seen.get(&w.id).expect("the workload was watched");
        let min = seen.min_running.expect("tracking was armed");
        (min, seen.max_running, seen.overlaps)
    };
    // Measured against the four replicas that ran before the scale-up, the
    // fifth being on its way while the drain began.
    assert!(
        min + max_unavailable as usize >= 4,
        "running dropped to {min}: more than max_unavailable = {max_unavailable} unavailable"
    );
    assert!(
        max_running <= 5 + max_surge as usize,
        "{max_running} running: more than replicas + max_surge"
    );
    assert_eq!(
        overlaps, 0,
        "an eviction ran while another pass of the workload was creating"
    );

    // Every instance that left the node was removed as drained, by a pass.
    let mut drained = 0;
    while let Ok(ev) = events.try_recv() {
        if let ReconcileEvent::InstanceRemoved {
            workload, reason, ..
        } = ev
        {
            if workload == w.id {
                assert_eq!(reason, "Drained");
                drained += 1;
            }
        }
    }
    assert_eq!(drained, 4, "the four instances of the drained node went");
    let n = lab.orch.get_node(&first).await.unwrap().unwrap();
    assert!(n.unschedulable, "the node stays cordoned");

    lab.cancel.cancel();
    lab.orch.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_with_no_unavailability_replaces_before_it_removes() {
    drain_case(1, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_never_has_more_than_max_unavailable_replicas_down() {
    drain_case(1, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_with_nowhere_to_go_removes_nothing_and_uncordoning_drops_it() {
    let lab = lab().await;
    let (first, others) = (lab.nodes[0], &lab.nodes[1..]);
    for n in others {
        lab.orch.set_unschedulable(n, true).await.unwrap();
    }
    let w = lab
        .orch
        .apply_workload(OWNER, spec("web", 2))
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "2 replicas on the first node",
        || async { (placement(&lab.orch, &w.id).await.get(&first) == Some(&2)).then_some(()) },
    )
    .await;
    let mut events = lab.orch.subscribe();
    // No other node can take a replacement, and max_unavailable is 0: the
    // drain's pass tries to place one, fails, and removes nothing.
    lab.orch.drain_node(&first).await.unwrap();
    wait_for(
        Duration::from_secs(10),
        "a pass to try to place a replacement",
        || async {
            let s = lab.orch.workload_status(&w).await.unwrap();
            (s.unscheduled > 0).then_some(())
        },
    )
    .await;
    assert_eq!(placement(&lab.orch, &w.id).await.get(&first), Some(&2));

    // Uncordoning drops the intent: once the other nodes can take work
    // again, a scale-up adds one replica and moves nothing (a drain still
    // under way would first surge to four and then remove from the first node).
    lab.orch.set_unschedulable(&first, false).await.unwrap();
    for n in others {
        lab.orch.set_unschedulable(n, false).await.unwrap();
    }
    lab.orch.scale(&OWNER, "web", 3).await.unwrap();
    wait_for(Duration::from_secs(10), "a third replica", || async {
        let instances = lab.orch.list_instances(&w.id).await.unwrap();
        let on_first = instances.iter().filter(|i| i.node_id == first).count();
        let running = instances
            .iter()
            .all(|i| i.status == InstanceStatus::Running);
        (instances.len() == 3 && running && on_first >= 2).then_some(())
    })
    .await;
    while let Ok(ev) = events.try_recv() {
        if let ReconcileEvent::InstanceRemoved { reason, .. } = ev {
            panic!("nothing should have been removed, but one was ({reason})");
        }
    }
    lab.cancel.cancel();
    lab.orch.shutdown().await;
}
