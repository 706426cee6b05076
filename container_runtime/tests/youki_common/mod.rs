//! Helpers of the youki runtime tests: the test registry, container
//! configs, a runtime in a temp dir, and waits with a deadline.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use container_runtime::youki::{YoukiConfig, YoukiRuntime};
use container_runtime_interface::{
    ContainerRuntime, ContainerSpec, ContainerState, ContainerStatus, LogOptions,
};
use orchestrator_shared_types::{ContainerConfig, ContainerId, InstanceId, NodeId, WorkloadId};
use tempfile::TempDir;

pub const NODE: NodeId = NodeId([7; 32]);
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

pub fn image(name: &str) -> String {
    format!("{}/test/{name}:1", registry())
}

pub fn config(image_name: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        name: "main".into(),
        image: image(image_name),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        args: Vec::new(),
        env: BTreeMap::new(),
        secret_env: Vec::new(),
        secret_files: Vec::new(),
        volumes: Vec::new(),
        ports: Vec::new(),
        resources: Default::default(),
        liveness_probe: None,
        readiness_probe: None,
    }
}

pub fn spec(config: ContainerConfig) -> ContainerSpec {
    ContainerSpec {
        instance_id: InstanceId::new(),
        workload_id: WorkloadId::new(),
        config,
        labels: BTreeMap::new(),
        volumes: Vec::new(),
        secrets: Default::default(),
    }
}

pub struct Rt {
    pub rt: Arc<YoukiRuntime>,
    pub _dir: Arc<TempDir>,
}

pub async fn open(dir: Arc<TempDir>) -> Rt {
    open_with(dir, |_| {}).await
}

/// A runtime in `dir` whose config `tweak` changes first. Containers
/// without a network label run on the host's network, which this runtime
/// allows (the daemon's does only at its operator's word).
pub async fn open_with(dir: Arc<TempDir>, tweak: impl FnOnce(&mut YoukiConfig)) -> Rt {
    let mut cfg = YoukiConfig::new(dir.path().join("runtime"));
    cfg.insecure_registries = vec![registry()];
    cfg.allow_host_network = true;
    tweak(&mut cfg);
    let rt = YoukiRuntime::new(cfg)
        .await
        .unwrap_or_else(|e| panic!("the youki runtime must start here (root, cgroups): {e}"));
    rt.init_node(NODE).await.expect("init node");
    Rt {
        rt: Arc::new(rt),
        _dir: dir,
    }
}

pub async fn runtime() -> Rt {
    open(Arc::new(TempDir::new().expect("tempdir"))).await
}

pub async fn create(rt: &YoukiRuntime, spec: &ContainerSpec) -> ContainerId {
    rt.create_container(NODE, spec)
        .await
        .unwrap_or_else(|e| panic!("creating {:?}: {e}", spec.config.command))
}

/// Polls the status of `id` until `pred` holds, or panics at the deadline.
pub async fn wait_status(
    rt: &YoukiRuntime,
    id: &ContainerId,
    what: &str,
    pred: impl Fn(&ContainerStatus) -> bool,
) -> ContainerStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let s = rt.get_container_status(id).await.expect("status");
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: still {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn exited(rt: &YoukiRuntime, id: &ContainerId) -> ContainerStatus {
    wait_status(rt, id, "waiting for the exit", |s| {
        s.state == ContainerState::Exited
    })
    .await
}

/// Everything the container printed, a line each.
pub async fn output(rt: &YoukiRuntime, id: &ContainerId) -> String {
    rt.get_container_logs(id, LogOptions::default())
        .await
        .expect("logs")
        .into_iter()
        .map(|l| l.line + "\n")
        .collect()
}
