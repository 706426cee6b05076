//! Real containers through the REST API: signed requests to the router, an
//! orchestrator on the youki runtime, images from the test registry
//! (`./scripts/test-registry start`; address in `UNIVRS_TEST_REGISTRY`,
//! default 127.0.0.1:5000). Needs root and cgroups, as CI has.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rest_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cluster_manager::mock::test_node;
use container_runtime::youki::YoukiRuntime;
use container_runtime_interface::ContainerRuntime;
use ed25519_dalek::SigningKey;
use observability::events::Event;
use orchestrator_rest::AuthConfig;
use orchestrator_shared_types::ContainerId;
use rest_common::{api_on, key, registry, send_to, signed, signed_with, youki_runtime, ApiOn};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::broadcast;

const DEADLINE: Duration = Duration::from_secs(60);

struct Cluster {
    api: ApiOn,
    node: orchestrator_shared_types::NodeId,
    runtime: Arc<YoukiRuntime>,
    key: SigningKey,
    _dir: TempDir,
}

async fn cluster() -> Cluster {
    // Shown only when a test fails: what the runtime and reconciler did.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,container_runtime=debug,orchestrator_core=debug".into()),
        )
        .try_init();
    let dir = TempDir::new().unwrap();
    let runtime = youki_runtime(dir.path()).await;
    let node = test_node(1, 4_000, 8 << 30);
    let node_id = node.id;
    let api = api_on(AuthConfig::default(), runtime.clone(), node).await;
    Cluster {
        api,
        node: node_id,
        runtime,
        key: key(1),
        _dir: dir,
    }
}

impl Cluster {
    async fn deploy(&self, yaml: &str) -> Value {
        let req = signed_with(
            &self.key,
            "POST",
            "/api/v1/workloads",
            yaml.as_bytes(),
            "application/yaml",
        );
        let (status, body) = send_to(&self.api.router, req).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = send_to(&self.api.router, signed(&self.key, "GET", path, b"")).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn instances(&self, name: &str) -> Vec<Value> {
        let body = self
            .get(&format!("/api/v1/workloads/{name}/instances"))
            .await;
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Polls the instances of `name` until `pred` holds for them.
    async fn wait_instances(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let items = self.instances(name).await;
            if pred(&items) {
                return items;
            }
            assert!(Instant::now() < deadline, "{name}: {what}: {items:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn delete(&self, name: &str) {
        let path = format!("/api/v1/workloads/{name}");
        let (status, body) =
            send_to(&self.api.router, signed(&self.key, "DELETE", &path, b"")).await;
        assert!(status.is_success(), "DELETE {path}: {status} {body}");
    }

    /// Deletes every workload and waits until no container is left.
    async fn finish(self) {
        let list = self.get("/api/v1/workloads").await;
        for w in list["items"].as_array().cloned().unwrap_or_default() {
            self.delete(w["spec"]["name"].as_str().unwrap()).await;
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = self
                .runtime
                .list_containers(self.node)
                .await
                .expect("listing the node's containers")
                .len();
            if left == 0 {
                break;
            }
            if Instant::now() >= deadline {
                let containers = self.runtime.list_containers(self.node).await;
                let instances = self.api.store.list_instances_by_node(&self.node).await;
                panic!("{left} containers left: {containers:#?}\ninstances: {instances:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Nothing may still be starting once the orchestrator stops.
        self.api.cancel.cancel();
        self.runtime.wait_idle().await;
        for c in self.runtime.list_containers(self.node).await.unwrap() {
            self.runtime.remove_container(&c.id).await.unwrap();
        }
        self.runtime.shutdown();
    }
}

fn status_of(i: &Value) -> &str {
    i["status"].as_str().unwrap_or_default()
}

fn container_of(i: &Value) -> ContainerId {
    ContainerId(
        i["container_ids"][0]
            .as_str()
            .expect("a container id")
            .to_owned(),
    )
}

fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap()
}

/// A manifest named `name`. Its instances get only loopback: these tests
/// are about the containers' lifecycle, and this runtime has no bridge
/// network (`bridge_network.rs` tests the default, the bridge).
fn manifest(name: &str, body: &str) -> String {
    format!("name: {name}\nnetwork: none\n{body}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleep_workload_runs_isolated_with_its_limits() {
    let c = cluster().await;
    c.deploy(&manifest(
        "sleeper",
        &format!(
            "replicas: 2\ncontainers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [sleep, '3600']\n    resources:\n      limits: {{memory: 48Mi, pids: 20, cpu: 250m}}\n",
            registry()
        ),
    ))
    .await;
    let items = c
        .wait_instances("sleeper", "2 running", |i| {
            i.len() == 2 && i.iter().all(|i| status_of(i) == "Running")
        })
        .await;
    for i in &items {
        let id = container_of(i);
        let pid = c
            .runtime
            .pid(&id)
            .expect("a running container has a pid")
            .to_string();
        for kind in ["pid", "mnt"] {
            assert_ne!(
                ns(&pid, kind),
                ns("self", kind),
                "{kind} namespace shared with the daemon"
            );
        }
        assert_eq!(c.runtime.memory_limit(&id), Some(48 << 20));
        assert_eq!(c.runtime.pids_limit(&id), Some(20));
    }
    // cgroup usage reaches the metrics.
    c.api.orch.refresh_gauges().await.unwrap();
    assert!(c.api.metrics.containers_memory_usage_bytes.get() > 0);
    let text = c.api.metrics.encode().unwrap();
    assert!(
        text.contains("orchestrator_containers_cpu_usage_seconds"),
        "{text}"
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_workload_reports_its_output_and_exit_code() {
    let c = cluster().await;
    c.deploy(&manifest(
        "echo",
        &format!(
            "restart_policy: Never\ncontainers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [sh, -c, 'echo hello from a real container; exit 0']\n",
            registry()
        ),
    ))
    .await;
    let items = c
        .wait_instances("echo", "succeeded", |i| {
            i.len() == 1 && status_of(&i[0]) == "Succeeded"
        })
        .await;
    assert_eq!(items[0]["last_exit_code"], 0, "{items:?}");
    assert_eq!(items[0]["reason"], "Completed", "{items:?}");
    let logs = c.get("/api/v1/workloads/echo/logs").await;
    let text = logs.to_string();
    assert!(text.contains("hello from a real container"), "{logs}");

    c.deploy(&manifest(
        "fail",
        &format!(
            "restart_policy: Never\ncontainers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [sh, -c, 'exit 7']\n",
            registry()
        ),
    ))
    .await;
    let items = c
        .wait_instances("fail", "failed", |i| {
            i.len() == 1 && status_of(&i[0]) == "Failed"
        })
        .await;
    assert_eq!(items[0]["last_exit_code"], 7, "{items:?}");
    assert_eq!(items[0]["reason"], "Error", "{items:?}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_memory_limit_a_container_is_oom_killed_and_the_rest_go_on() {
    let c = cluster().await;
    c.deploy(&manifest(
        "steady",
        &format!(
            "containers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [sleep, '3600']\n",
            registry()
        ),
    ))
    .await;
    c.wait_instances("steady", "running", |i| {
        i.len() == 1 && status_of(&i[0]) == "Running"
    })
    .await;
    c.deploy(&manifest(
        "hog",
        &format!(
            "restart_policy: Never\ncontainers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [dd, if=/dev/zero, of=/dev/null, bs=256M, count=1]\n    resources:\n      limits: {{memory: 32Mi}}\n",
            registry()
        ),
    ))
    .await;
    let items = c
        .wait_instances("hog", "OOM-killed", |i| {
            i.len() == 1 && status_of(&i[0]) == "Failed"
        })
        .await;
    assert_eq!(items[0]["reason"], "OOMKilled", "{items:?}");
    assert_eq!(items[0]["last_exit_code"], 137, "{items:?}");
    let steady = c.instances("steady").await;
    assert_eq!(status_of(&steady[0]), "Running", "{steady:?}");
    assert_eq!(steady[0]["restarts"], 0, "{steady:?}");
    c.finish().await;
}

/// Events of kind `kind` about workload `workload`, as they come.
async fn next_event(
    rx: &mut broadcast::Receiver<Event>,
    kind: &str,
    workload: &str,
    deadline: Instant,
) -> Event {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Ok(e)) if e.kind == kind && e.data.to_string().contains(workload) => return e,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event hub closed: {e}"),
            Err(_) => panic!("no {kind} event for {workload} in time"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_container_is_restarted_with_growing_delays() {
    let c = cluster().await;
    let mut rx = c.api.events.subscribe();
    let body = c
        .deploy(&manifest(
            "crasher",
            &format!(
                "restart_policy: Always\ncontainers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [sh, -c, 'exit 1']\n",
                registry()
            ),
        ))
        .await;
    let id = body["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + DEADLINE;
    let mut at = Vec::new();
    for _ in 0..5 {
        let e = next_event(&mut rx, "instances.restarted", &id, deadline).await;
        at.push(e.timestamp);
    }
    let gaps: Vec<i64> = at
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect();
    // Back-off doubles from 50 ms (test config): each gap is longer than the
    // one before, whatever the cost of a start.
    assert!(
        gaps.windows(2).all(|g| g[1] > g[0]),
        "restart gaps do not grow: {gaps:?} ms"
    );
    let items = c.instances("crasher").await;
    assert!(items[0]["restarts"].as_u64().unwrap() >= 5, "{items:?}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_container() {
    let c = cluster().await;
    let mut rx = c.api.events.subscribe();
    let body = c
        .deploy(&manifest(
            "sick",
            &format!(
                "containers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [sleep, '3600']\n    liveness_probe:\n      exec: {{command: [cat, /tmp/healthy]}}\n      period_seconds: 1\n      failure_threshold: 2\n",
                registry()
            ),
        ))
        .await;
    let id = body["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let e = next_event(&mut rx, "instances.status_changed", &id, deadline).await;
        if e.data["reason"] == "LivenessProbeFailed" {
            break;
        }
    }
    next_event(&mut rx, "instances.restarted", &id, deadline).await;
    c.wait_instances("sick", "restarted and running", |i| {
        i.len() == 1 && i[0]["restarts"].as_u64() >= Some(1) && status_of(&i[0]) == "Running"
    })
    .await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_does_not_exist_fails_the_instance_with_an_event() {
    let c = cluster().await;
    let mut rx = c.api.events.subscribe();
    let body = c
        .deploy(&manifest(
            "ghost",
            &format!(
                "restart_policy: Never\ncontainers:\n  - name: main\n    image: {}/test/does-not-exist:1\n",
                registry()
            ),
        ))
        .await;
    let id = body["id"].as_str().unwrap().to_owned();
    let e = next_event(
        &mut rx,
        "instances.status_changed",
        &id,
        Instant::now() + DEADLINE,
    )
    .await;
    assert!(e.data.to_string().contains("ImagePullFailed"), "{e:?}");
    let items = c
        .wait_instances("ghost", "failed", |i| {
            i.len() == 1 && status_of(&i[0]) == "Failed"
        })
        .await;
    let reason = items[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("ImagePullFailed") && reason.contains("does-not-exist"),
        "{reason}"
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_decides_whether_an_instance_counts_as_ready() {
    let c = cluster().await;
    c.deploy(&manifest(
        "slowstart",
        &format!(
            "containers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [sh, -c, 'sleep 2; touch /tmp/ready; exec sleep 3600']\n    readiness_probe:\n      exec: {{command: [cat, /tmp/ready]}}\n      period_seconds: 1\n      failure_threshold: 1\n",
            registry()
        ),
    ))
    .await;
    let items = c
        .wait_instances("slowstart", "running", |i| {
            i.len() == 1 && status_of(&i[0]) == "Running"
        })
        .await;
    assert_eq!(
        items[0]["ready"], false,
        "not ready before its probe passes: {items:?}"
    );
    c.wait_instances("slowstart", "ready", |i| {
        i.len() == 1 && i[0]["ready"] == true
    })
    .await;
    let w = c.get("/api/v1/workloads/slowstart").await;
    assert_eq!(w["status"]["ready"], 1, "{w}");
    assert_eq!(w["status"]["running"], 1, "{w}");
    c.finish().await;
}
