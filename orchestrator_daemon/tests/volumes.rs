//! Volumes through the REST API (issue 18): three nodes on the mock runtime
//! under the spreading scheduler. A workload's volume is placed with its
//! first instance, and every instance using it stays on that node: scaled
//! up, rolled to a new template, restarted after a crash, and while the node
//! is down (its replicas wait, the reason naming the volume, and come back
//! there). A volume in use is not deleted (409); unused, it is wiped on its
//! node and forgotten. A volume's size cannot change.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod rest_common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cluster_manager::mock::{test_node, MockClusterManager};
use container_runtime::mock::MockRuntime;
use container_runtime_interface::ContainerRuntime;
use ed25519_dalek::SigningKey;
use observability::events::EventHub;
use observability::health::Health;
use observability::metrics::Metrics;
use orchestrator_core::{Deps, Orchestrator, ReconcilerConfig};
use orchestrator_rest::{self as rest, AppState, AuthConfig};
use orchestrator_shared_types::{ContainerId, NodeId, NodeStatus};
use rest_common::{gate, key, public, send_to, signed};
use scheduler_interface::simple::{SimpleScheduler, SimpleSchedulerConfig};
use serde_json::{json, Value};
use state_store_interface::memory::InMemoryStore;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(20);

/// An instance as listed: node (hex), status, generation, container ids.
type Inst = (String, String, u64, Vec<String>);

struct Lab {
    router: axum::Router,
    runtime: Arc<MockRuntime>,
    cluster: Arc<MockClusterManager>,
    _cancel: CancellationToken,
    user: SigningKey,
}

async fn lab() -> Lab {
    let nodes: Vec<_> = (1..=3).map(|s| test_node(s, 8_000, 16 << 30)).collect();
    let cluster = Arc::new(MockClusterManager::new(nodes[0].clone()));
    let runtime = Arc::new(MockRuntime::new());
    for n in &nodes {
        if n.id != nodes[0].id {
            cluster.add_node(n.clone()).unwrap();
        }
        runtime.init_node(n.id).await.unwrap();
    }
    let metrics = Arc::new(Metrics::new().unwrap());
    let deps = Deps {
        store: Arc::new(InMemoryStore::new()),
        runtime: runtime.clone(),
        cluster: cluster.clone(),
        scheduler: Arc::new(SimpleScheduler::new(SimpleSchedulerConfig::default())),
        metrics: Arc::clone(&metrics),
        events: EventHub::new(1024),
    };
    let cancel = CancellationToken::new();
    let orch = Arc::new(
        Orchestrator::start(ReconcilerConfig::for_test(), deps, cancel.clone())
            .await
            .unwrap(),
    );
    let health = Arc::new(Health::new());
    health.set_ok("store");
    health.set_ready(true);
    let state = AppState::with_gate(orch, gate(AuthConfig::default(), &metrics), health);
    Lab {
        router: rest::router(state),
        runtime,
        cluster,
        _cancel: cancel,
        user: key(42),
    }
}

impl Lab {
    async fn call(&self, method: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).unwrap()
        };
        send_to(&self.router, signed(&self.user, method, path, &bytes)).await
    }

    /// The instances of `name`: (node hex, status, generation, container ids).
    async fn instances(&self, name: &str) -> Vec<Inst> {
        let (status, page) = self
            .call(
                "GET",
                &format!("/api/v1/workloads/{name}/instances"),
                &Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["node_id"].as_str().unwrap().to_owned(),
                    i["status"].as_str().unwrap().to_owned(),
                    i["generation"].as_u64().unwrap(),
                    i["container_ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_owned())
                        .collect(),
                )
            })
            .collect()
    }

    /// Waits until `done` holds of `name`'s instances, checking at every
    /// look that none is anywhere but `node` (when given).
    async fn until(
        &self,
        name: &str,
        node: Option<&str>,
        what: &str,
        done: impl Fn(&[Inst]) -> bool,
    ) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let list = self.instances(name).await;
            if let Some(node) = node {
                for i in &list {
                    assert_eq!(i.0, node, "an instance left its volume's node: {list:?}");
                }
            }
            if done(&list) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {list:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn manifest(name: &str, replicas: u32, size: &str, env: &str) -> Value {
    json!({
        "name": name,
        "replicas": replicas,
        "containers": [{
            "name": "main",
            "image": "example.org/db:1",
            "env": {"VERSION": env},
            "volumes": [{"name": "data", "mount_path": "/data", "size": size}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
        }],
    })
}

fn running(n: usize) -> impl Fn(&[Inst]) -> bool {
    move |l| l.len() == n && l.iter().all(|i| i.1 == "Running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_stay_on_their_volumes_node_and_a_volume_in_use_is_not_deleted() {
    let lab = lab().await;
    let (status, body) = lab
        .call("POST", "/api/v1/workloads", &manifest("db", 1, "16Mi", "1"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    lab.until("db", None, "the first instance runs", running(1))
        .await;
    let node = lab.instances("db").await[0].0.clone();
    let node_id: NodeId = node.parse().unwrap();

    // Recorded with its node, size and user.
    let (status, vols) = lab.call("GET", "/api/v1/volumes", &Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{vols}");
    let v = &vols["items"][0];
    assert_eq!(
        (v["name"].as_str(), v["node"].as_str(), v["size"].as_str()),
        (Some("data"), Some(node.as_str()), Some("16Mi")),
        "{vols}"
    );
    assert_eq!(v["used_by"], json!(["db"]));
    let made = lab.runtime.volumes_on(node_id);
    assert_eq!(made.len(), 1, "the runtime was given the volume");
    assert_eq!((made[0].0.owner, made[0].1), (public(&lab.user), 16 << 20));

    // Scaled up under a spreading scheduler: all on the volume's node.
    let (status, body) = lab
        .call(
            "POST",
            "/api/v1/workloads/db/scale",
            &json!({"replicas": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    lab.until("db", Some(&node), "three replicas run", running(3))
        .await;

    // A rolling update: the new generation lands there too.
    let (status, body) = lab
        .call(
            "PUT",
            "/api/v1/workloads/db",
            &manifest("db", 3, "16Mi", "2"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    lab.until("db", Some(&node), "the rollout ends", |l| {
        running(3)(l) && l.iter().all(|i| i.2 == 2)
    })
    .await;

    // A killed container is restarted on its node.
    let victim = lab.instances("db").await[0].3[0].clone();
    lab.runtime
        .exit_container(&ContainerId(victim.clone()), 137)
        .unwrap();
    lab.until("db", Some(&node), "the killed one is replaced", |l| {
        running(3)(l) && l.iter().all(|i| !i.3.contains(&victim))
    })
    .await;

    // Its node goes down: its replicas wait for it, never elsewhere.
    lab.runtime.set_node_reachable(node_id, false);
    lab.cluster.set_status(&node_id, NodeStatus::Down).unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, w) = lab.call("GET", "/api/v1/workloads/db", &Value::Null).await;
        let reason = w["status"]["reason"].as_str().unwrap_or_default();
        if w["status"]["unscheduled"].as_u64().unwrap_or(0) > 0 && reason.contains("volume data") {
            break;
        }
        assert!(Instant::now() < deadline, "waiting for the reason: {w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..10 {
        for i in lab.instances("db").await {
            assert_eq!(i.0, node, "an instance left its volume's node");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Back: three run there again.
    lab.runtime.set_node_reachable(node_id, true);
    lab.cluster.set_status(&node_id, NodeStatus::Ready).unwrap();
    lab.until("db", Some(&node), "three replicas run again", running(3))
        .await;
    let nodes: BTreeSet<String> = lab.instances("db").await.into_iter().map(|i| i.0).collect();
    assert_eq!(nodes.len(), 1);

    // A volume's size is fixed.
    let (status, body) = lab
        .call(
            "POST",
            "/api/v1/workloads",
            &manifest("db2", 1, "32Mi", "1"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("cannot change"), "{body}");

    // Above the owner's volume quota (1Ti by default): refused.
    let mut big = manifest("big", 1, "1Ti", "1");
    big["containers"][0]["volumes"] = json!([
        {"name": "big-a", "mount_path": "/a", "size": "1Ti"},
        {"name": "big-b", "mount_path": "/b", "size": "16Mi"}
    ]);
    let (status, body) = lab.call("POST", "/api/v1/workloads", &big).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.to_string().contains("quota_volumes"), "{body}");

    // In use: refused, nothing wiped.
    let (status, body) = lab
        .call("DELETE", "/api/v1/volumes/data", &Value::Null)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("db"), "{body}");
    assert_eq!(lab.runtime.volumes_on(node_id).len(), 1);

    // Unused: wiped on its node and forgotten.
    let (status, body) = lab
        .call("DELETE", "/api/v1/workloads/db", &Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = lab
            .call("DELETE", "/api/v1/volumes/data", &Value::Null)
            .await;
        if status == StatusCode::OK {
            assert_eq!(body["name"], "data", "{body}");
            break;
        }
        // Its containers are still being removed.
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(Instant::now() < deadline, "deleting: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        lab.runtime.volumes_on(node_id).is_empty(),
        "wiped on its node"
    );
    let (_, vols) = lab.call("GET", "/api/v1/volumes", &Value::Null).await;
    assert_eq!(vols["items"], json!([]), "{vols}");
    let (status, _) = lab
        .call("DELETE", "/api/v1/volumes/data", &Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
