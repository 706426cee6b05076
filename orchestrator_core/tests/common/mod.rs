//! A mock cluster around a real reconciler, for convergence tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cluster_manager::mock::{test_node, MockClusterManager};
use container_runtime::mock::MockRuntime;
use orchestrator_core::{Deps, Orchestrator, ReconcilerConfig, WorkloadStatus};
use orchestrator_shared_types::{
    ContainerConfig, InstanceStatus, Node, PublicKey, ResourceList, ResourceRequirements,
    WorkloadDefinition, WorkloadInstance, WorkloadSpec,
};
use scheduler_interface::simple::{SimpleScheduler, SimpleSchedulerConfig};
use state_store_interface::memory::InMemoryStore;
use state_store_interface::StateStore;
use tokio_util::sync::CancellationToken;

/// The owner every test workload belongs to.
pub const OWNER: PublicKey = PublicKey([9; 32]);
/// Node size used by default: 16 cpu, 64 GiB.
pub const NODE_CPU: u64 = 16_000;
/// Node memory used by default.
pub const NODE_MEM: u64 = 64 << 30;

pub struct Harness {
    pub orch: Orchestrator,
    pub runtime: Arc<MockRuntime>,
    pub cluster: Arc<MockClusterManager>,
    pub store: Arc<dyn StateStore>,
    pub nodes: Vec<Node>,
    pub cancel: CancellationToken,
}

pub fn nodes(n: u64) -> Vec<Node> {
    (1..=n).map(|i| test_node(i, NODE_CPU, NODE_MEM)).collect()
}

pub async fn start(
    nodes: Vec<Node>,
    store: Arc<dyn StateStore>,
    config: ReconcilerConfig,
) -> Harness {
    start_with_runtime(nodes, store, config, Arc::new(MockRuntime::new())).await
}

pub async fn start_with_runtime(
    nodes: Vec<Node>,
    store: Arc<dyn StateStore>,
    config: ReconcilerConfig,
    runtime: Arc<MockRuntime>,
) -> Harness {
    let cluster = Arc::new(MockClusterManager::new(nodes[0].clone()));
    for n in &nodes[1..] {
        cluster.add_node(n.clone()).unwrap();
    }
    for n in &nodes {
        use container_runtime_interface::ContainerRuntime;
        runtime.init_node(n.id).await.unwrap();
    }
    let deps = Deps {
        store: Arc::clone(&store),
        runtime: runtime.clone(),
        cluster: cluster.clone(),
        scheduler: Arc::new(SimpleScheduler::new(SimpleSchedulerConfig::default())),
        metrics: Arc::new(observability::metrics::Metrics::new().unwrap()),
        events: observability::events::EventHub::new(1024),
    };
    let cancel = CancellationToken::new();
    let orch = Orchestrator::start(config, deps, cancel.clone())
        .await
        .unwrap();
    Harness {
        orch,
        runtime,
        cluster,
        store,
        nodes,
        cancel,
    }
}

pub async fn memory_harness(n: u64) -> Harness {
    start(
        nodes(n),
        Arc::new(InMemoryStore::new()),
        ReconcilerConfig::for_test(),
    )
    .await
}

pub fn spec(name: &str, replicas: u32) -> WorkloadSpec {
    spec_with_image(name, replicas, "example/app:1")
}

pub fn spec_with_image(name: &str, replicas: u32, image: &str) -> WorkloadSpec {
    WorkloadSpec {
        name: name.into(),
        replicas,
        containers: vec![ContainerConfig {
            name: "main".into(),
            image: image.into(),
            command: vec!["sleep".into(), "3600".into()],
            args: vec![],
            env: Default::default(),
            secret_env: vec![],
            secret_files: vec![],
            volumes: Vec::new(),
            ports: vec![],
            resources: ResourceRequirements {
                requests: ResourceList {
                    cpu: Some(orchestrator_shared_types::CpuQuantity(100)),
                    memory: Some(orchestrator_shared_types::MemoryQuantity(32 << 20)),
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
    }
}

/// Polls `check` until it returns `Some`, failing after `deadline` with `what`.
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Harness {
    pub async fn apply(&self, spec: WorkloadSpec) -> WorkloadDefinition {
        self.orch.apply_workload(OWNER, spec).await.unwrap()
    }

    pub async fn status(&self, name: &str) -> WorkloadStatus {
        let w = self
            .orch
            .get_workload_by_name(&OWNER, name)
            .await
            .unwrap()
            .unwrap();
        self.orch.workload_status(&w).await.unwrap()
    }

    pub async fn instances(&self, name: &str) -> Vec<WorkloadInstance> {
        let w = self
            .orch
            .get_workload_by_name(&OWNER, name)
            .await
            .unwrap()
            .unwrap();
        self.orch.list_instances(&w.id).await.unwrap()
    }

    /// Waits until `name` has exactly `n` instances, all running at its current generation.
    pub async fn wait_running(&self, name: &str, n: u32) {
        wait_for(
            Duration::from_secs(20),
            &format!("{name} to run {n} up-to-date instances"),
            || async {
                let w = self
                    .orch
                    .get_workload_by_name(&OWNER, name)
                    .await
                    .unwrap()?;
                let instances = self.orch.list_instances(&w.id).await.unwrap();
                let ok = instances.len() == n as usize
                    && instances.iter().all(|i| {
                        i.status == InstanceStatus::Running && i.generation == w.generation
                    });
                ok.then_some(())
            },
        )
        .await;
    }

    /// Waits until the runtime runs exactly `n` containers.
    pub async fn wait_containers(&self, n: usize) {
        wait_for(
            Duration::from_secs(20),
            &format!("{n} running containers"),
            || async { (self.runtime.running_count() == n).then_some(()) },
        )
        .await;
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        self.orch.shutdown().await;
    }
}
