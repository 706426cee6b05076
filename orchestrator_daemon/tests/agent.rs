//! The node agent and the routing runtime over a real socket: the control
//! plane's `RoutingRuntime` passes the whole `ContainerRuntime` contract on a
//! node it reaches only through that node's agent, and the agent refuses every
//! caller but the live control plane, replays and forgeries (of container
//! calls and of the directory of names and owners alike); a leader whose
//! control-plane term is over is refused ([`agent_term`]).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod agent_term;
mod rest_common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use cluster_manager::mock::{test_node, MockClusterManager};
use cluster_manager_interface::{ClusterManager, ROLE_CONTROL_PLANE, ROLE_LABEL, ROLE_WORKER};
use container_runtime::mock::MockRuntime;
use container_runtime_interface::testsuite::{self, RuntimeUnderTest};
use container_runtime_interface::{ContainerRuntime, RuntimeError};
use ed25519_dalek::SigningKey;
use node_agent::agent::{self, AgentState};
use node_agent::client::AgentClient;
use node_agent::directory::{DirectorySink, DIRECTORY_PATH};
use node_agent::term::TermGate;
use node_agent::RoutingRuntime;
use orchestrator_shared_types::auth::{
    sign_request, Payload, HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use orchestrator_shared_types::net::Directory;
use orchestrator_shared_types::{ContainerConfig, ContainerId, Node, NodeId, NodeStatus};
use rest_common::{send_to, signed, AUDIENCE};
use signed_http::ReplayCache;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A member record for `key` with `role`.
fn member(key: &SigningKey, role: &str, address: String) -> Node {
    let mut n = test_node(1, 4000, 8 << 30);
    n.id = NodeId(key.verifying_key().to_bytes());
    n.address = address;
    n.labels = BTreeMap::from([(ROLE_LABEL.to_owned(), role.to_owned())]);
    n
}

/// A worker with its mock runtime, its membership, its agent's address
/// and router.
type Worker = (
    Arc<MockRuntime>,
    Arc<MockClusterManager>,
    String,
    axum::Router,
);

/// A worker: its mock runtime behind its agent on 127.0.0.1, knowing
/// `control_plane` as the control plane.
async fn worker(worker_key: &SigningKey, control_plane: &SigningKey) -> Worker {
    worker_with(worker_key, control_plane, None).await
}

/// [`worker`], its agent holding calls to the control-plane term in `terms`.
async fn worker_with(
    worker_key: &SigningKey,
    control_plane: &SigningKey,
    terms: Option<Arc<TermGate>>,
) -> Worker {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let me = member(worker_key, ROLE_WORKER, addr.clone());
    let cluster = Arc::new(MockClusterManager::new(me.clone()));
    cluster
        .add_node(member(
            control_plane,
            ROLE_CONTROL_PLANE,
            "127.0.0.1:1".into(),
        ))
        .unwrap();
    let runtime = Arc::new(MockRuntime::new());
    runtime.init_node(me.id).await.unwrap();
    let router = agent::router(AgentState {
        runtime: Arc::clone(&runtime) as Arc<dyn ContainerRuntime>,
        node: me.id,
        cluster: Arc::clone(&cluster) as Arc<dyn ClusterManager>,
        replays: Arc::new(ReplayCache::new(1000)),
        max_skew_seconds: 60,
        audience: Arc::from(AUDIENCE),
        gossip_keys: None,
        directory: None,
        terms,
    });
    let served = router.clone();
    let tls = peer_tls::NodeTls::new(worker_key).unwrap();
    let members = node_agent::members(Arc::clone(&cluster) as Arc<dyn ClusterManager>);
    tokio::spawn(async move {
        peer_tls::serve(listener, served, &tls, members, std::future::pending())
            .await
            .unwrap()
    });
    (runtime, cluster, addr, router)
}

fn config(image: &str) -> ContainerConfig {
    serde_json::from_value(serde_json::json!({"name": "main", "image": image})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routing_runtime_passes_the_runtime_contract_through_a_remote_agent() {
    testsuite::run_all(|| async {
        let (cp_key, w_key) = (key(1), key(2));
        let (_rt, _cluster, addr, _router) = worker(&w_key, &cp_key).await;
        let cp = member(&cp_key, ROLE_CONTROL_PLANE, "127.0.0.1:1".into());
        let cluster = Arc::new(MockClusterManager::new(cp));
        let remote = member(&w_key, ROLE_WORKER, addr);
        cluster.add_node(remote.clone()).unwrap();
        let routing = RoutingRuntime::new(
            Arc::new(MockRuntime::new()),
            cluster,
            AgentClient::new(cp_key, AUDIENCE).unwrap(),
            Duration::from_millis(50),
        );
        routing.init_node(remote.id).await.unwrap();
        RuntimeUnderTest {
            runtime: Arc::new(routing),
            node: remote.id,
            config_template: config("mock/anything:1"),
        }
    })
    .await;
}

/// A volume on a worker, through its agent: created with a container,
/// refused deletion while mounted (the agent's 409 comes back as
/// `VolumeInUse`), wiped once unused; a stranger cannot delete it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_travel_to_the_agent_and_are_wiped_only_when_unused() {
    use container_runtime_interface::{ContainerSpec, VolumeAttachment, VolumeRef};
    let (cp_key, w_key, stranger) = (key(1), key(2), key(5));
    let (worker_rt, _cluster, addr, router) = worker(&w_key, &cp_key).await;
    let cp = member(&cp_key, ROLE_CONTROL_PLANE, "127.0.0.1:1".into());
    let cluster = Arc::new(MockClusterManager::new(cp));
    let remote = member(&w_key, ROLE_WORKER, addr);
    cluster.add_node(remote.clone()).unwrap();
    let routing = RoutingRuntime::new(
        Arc::new(MockRuntime::new()),
        cluster,
        AgentClient::new(cp_key, AUDIENCE).unwrap(),
        Duration::from_millis(50),
    );
    let volume = VolumeRef {
        owner: orchestrator_shared_types::PublicKey([9; 32]),
        name: "data".into(),
    };
    let spec = ContainerSpec {
        instance_id: orchestrator_shared_types::InstanceId::new(),
        workload_id: orchestrator_shared_types::WorkloadId::new(),
        config: config("mock/db:1"),
        labels: BTreeMap::new(),
        volumes: vec![VolumeAttachment {
            volume: volume.clone(),
            size_bytes: 8 << 20,
            mount_path: "/data".into(),
            read_only: false,
        }],
        secrets: Default::default(),
    };
    let id = routing.create_container(remote.id, &spec).await.unwrap();
    assert_eq!(
        worker_rt.volumes_on(remote.id),
        vec![(volume.clone(), 8 << 20)]
    );
    match routing.delete_volume(remote.id, &volume).await {
        Err(RuntimeError::VolumeInUse { containers: 1, .. }) => {}
        other => panic!("deleting a mounted volume: {other:?}"),
    }
    let path = format!("/agent/v1/volumes/{}/data", volume.owner.to_hex());
    let (status, _) = send_to(
        &router,
        via(&stranger, signed(&stranger, "DELETE", &path, b"")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    routing.remove_container(&id).await.unwrap();
    routing.delete_volume(remote.id, &volume).await.unwrap();
    assert!(
        worker_rt.volumes_on(remote.id).is_empty(),
        "wiped on the worker"
    );
}

#[tokio::test]
async fn a_dead_or_unknown_node_is_unreachable_not_an_error_of_the_container() {
    let cp_key = key(1);
    let cluster = Arc::new(MockClusterManager::new(member(
        &cp_key,
        ROLE_CONTROL_PLANE,
        "127.0.0.1:1".into(),
    )));
    // A member whose agent does not listen.
    let gone = member(&key(3), ROLE_WORKER, "127.0.0.1:9".into());
    cluster.add_node(gone.clone()).unwrap();
    let routing = RoutingRuntime::new(
        Arc::new(MockRuntime::new()),
        Arc::clone(&cluster) as Arc<dyn ClusterManager>,
        AgentClient::new(cp_key, AUDIENCE).unwrap(),
        Duration::from_millis(50),
    );
    let id = node_agent::routed_id(&gone.id, &ContainerId("c1".into()));
    let err = routing.get_container_status(&id).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::NodeUnreachable(n) if n == gone.id),
        "{err}"
    );
    cluster.set_status(&gone.id, NodeStatus::Down).unwrap();
    let err = routing.list_containers(gone.id).await.unwrap_err();
    assert!(matches!(err, RuntimeError::NodeUnreachable(_)), "{err}");
    let err = routing
        .get_container_status(&ContainerId("not-routed".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::NotFound(_)), "{err}");
    routing.shutdown().await;
}

#[tokio::test]
async fn the_agent_obeys_only_the_live_control_plane() {
    let (cp_key, w_key, other_worker, stranger) = (key(1), key(2), key(4), key(5));
    let (runtime, cluster, _addr, router) = worker(&w_key, &cp_key).await;
    cluster
        .add_node(member(&other_worker, ROLE_WORKER, "127.0.0.1:2".into()))
        .unwrap();
    let list = "/agent/v1/containers";

    let (status, body) = send_to(&router, via(&cp_key, signed(&cp_key, "GET", list, b""))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!([]));

    let create = serde_json::to_vec(&serde_json::json!({
        "instance_id": uuid_v4(), "workload_id": uuid_v4(),
        "config": {"name": "main", "image": "web:1"}
    }))
    .unwrap();
    for (who, k) in [("a stranger", &stranger), ("another worker", &other_worker)] {
        let (status, body) = send_to(&router, via(k, signed(k, "POST", list, &create))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    // Forged: signed by a stranger but claiming the control plane's key.
    let mut forged = signed(&stranger, "POST", list, &create);
    let cp_pub = signed(&cp_key, "GET", "/", b"");
    forged.headers_mut().insert(
        HEADER_PUBLIC_KEY,
        cp_pub.headers()[HEADER_PUBLIC_KEY].clone(),
    );
    let (status, _) = send_to(&router, via(&cp_key, forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The control plane's key, but signed for another cluster: refused.
    let other = sign_request(
        &cp_key,
        &Payload::new("POST", list, &create, "another-cluster"),
        Utc::now(),
    );
    let foreign = Request::builder()
        .method("POST")
        .uri(list)
        .header("content-type", "application/json")
        .header(HEADER_PUBLIC_KEY, other.public_key)
        .header(HEADER_TIMESTAMP, other.timestamp)
        .header(HEADER_SIGNATURE, other.signature)
        .body(Body::from(create.clone()))
        .unwrap();
    let (status, body) = send_to(&router, via(&cp_key, foreign)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(AUDIENCE)),
        "the refusal names the expected audience: {body}"
    );
    // The control plane's own signature, but not over its own mutual-TLS
    // connection (sent in clear, or relayed by another member): refused.
    // (Another body, so that no signature here is the one sent below.)
    let other_create = serde_json::to_vec(&serde_json::json!({
        "instance_id": uuid_v4(), "workload_id": uuid_v4(),
        "config": {"name": "main", "image": "web:2"}
    }))
    .unwrap();
    let (status, body) = send_to(&router, signed(&cp_key, "POST", list, &other_create)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "in clear: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("mutual TLS")),
        "{body}"
    );
    let relayed = via(&other_worker, signed(&cp_key, "POST", list, &other_create));
    let (status, body) = send_to(&router, relayed).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "relayed: {body}");
    // Malformed body from the control plane: refused, nothing created.
    let (status, body) = send_to(
        &router,
        via(&cp_key, signed(&cp_key, "POST", list, b"{\"nope\":1}")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        runtime.container_count(),
        0,
        "refused requests created nothing"
    );

    // The control plane creates; a replay of the same request is refused.
    let req = via(&cp_key, signed(&cp_key, "POST", list, &create));
    let replay = via(&cp_key, clone_request(&req, &create));
    let (status, body) = send_to(&router, req).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = send_to(&router, replay).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(runtime.container_count(), 1);

    // Once the control plane is Down, even its key is refused.
    cluster
        .set_status(&NodeId(cp_key.verifying_key().to_bytes()), NodeStatus::Down)
        .unwrap();
    let (status, _) = send_to(&router, via(&cp_key, signed(&cp_key, "GET", list, b""))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Records the directories a node takes into use (newer ones only).
#[derive(Default)]
struct Sink(std::sync::Mutex<Vec<Directory>>);

#[async_trait::async_trait]
impl DirectorySink for Sink {
    async fn receive(&self, directory: Directory) -> Result<u64, String> {
        let mut held = self.0.lock().unwrap();
        if held.last().is_none_or(|d| d.version < directory.version) {
            held.push(directory);
        }
        Ok(held.last().map_or(0, |d| d.version))
    }
}

#[tokio::test]
async fn a_directory_is_taken_only_from_the_live_control_plane() {
    let (cp_key, w_key, other_worker, stranger) = (key(1), key(2), key(4), key(5));
    let me = member(&w_key, ROLE_WORKER, "127.0.0.1:3".into());
    let cluster = Arc::new(MockClusterManager::new(me.clone()));
    for (k, role) in [(&cp_key, ROLE_CONTROL_PLANE), (&other_worker, ROLE_WORKER)] {
        cluster
            .add_node(member(k, role, "127.0.0.1:1".into()))
            .unwrap();
    }
    let sink = Arc::new(Sink::default());
    let router = agent::router(AgentState {
        runtime: Arc::new(MockRuntime::new()),
        node: me.id,
        cluster: Arc::clone(&cluster) as Arc<dyn ClusterManager>,
        replays: Arc::new(ReplayCache::new(1000)),
        max_skew_seconds: 60,
        audience: Arc::from(AUDIENCE),
        gossip_keys: None,
        directory: Some(Arc::clone(&sink) as Arc<dyn DirectorySink>),
        terms: None,
    });
    let path = DIRECTORY_PATH;
    // A directory that would make a stranger's address one of the owner's
    // (its instances then accept it) and point the owner's `web` at it.
    let owner = orchestrator_shared_types::PublicKey([7; 32]);
    let evil = serde_json::to_vec(&Directory {
        version: u64::MAX / 2,
        owners: vec![("10.88.9.9".parse().unwrap(), owner)],
        names: vec![(owner, "web".into(), vec!["10.88.9.9".parse().unwrap()])],
        workloads: Vec::new(),
    })
    .unwrap();
    for (who, k) in [("a stranger", &stranger), ("another worker", &other_worker)] {
        let (status, body) = send_to(&router, via(k, signed(k, "PUT", path, &evil))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
    }
    let mut forged = signed(&stranger, "PUT", path, &evil);
    let cp_pub = signed(&cp_key, "GET", "/", b"");
    forged.headers_mut().insert(
        HEADER_PUBLIC_KEY,
        cp_pub.headers()[HEADER_PUBLIC_KEY].clone(),
    );
    let (status, _) = send_to(&router, via(&cp_key, forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a forged signature");
    let (status, _) = send_to(&router, signed(&cp_key, "PUT", path, &evil)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "in clear, not over mutual TLS"
    );
    let (status, body) = send_to(
        &router,
        via(&cp_key, signed(&cp_key, "PUT", path, b"[1,2]")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        sink.0.lock().unwrap().is_empty(),
        "nothing refused was taken"
    );

    // The control plane's is taken; a replay of it is refused; an older
    // one changes nothing.
    let good = Directory {
        version: 7,
        owners: Vec::new(),
        names: Vec::new(),
        workloads: Vec::new(),
    };
    let bytes = serde_json::to_vec(&good).unwrap();
    let req = via(&cp_key, signed(&cp_key, "PUT", path, &bytes));
    let replay = via(&cp_key, clone_request(&req, &bytes));
    let (status, body) = send_to(&router, req).await;
    assert_eq!(
        (status, body["version"].as_u64()),
        (StatusCode::OK, Some(7))
    );
    let (status, _) = send_to(&router, replay).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a replay");
    let older = serde_json::to_vec(&Directory {
        version: 3,
        ..good.clone()
    })
    .unwrap();
    let (status, body) = send_to(&router, via(&cp_key, signed(&cp_key, "PUT", path, &older))).await;
    assert_eq!(
        (status, body["version"].as_u64()),
        (StatusCode::OK, Some(7))
    );
    assert_eq!(*sink.0.lock().unwrap(), vec![good]);
}

/// `req` as if it came over `key`'s node's mutual-TLS connection.
fn via(key: &SigningKey, mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer_tls::PeerInfo {
            remote: ([127, 0, 0, 1], 1).into(),
            tls: true,
            node: Some(NodeId(key.verifying_key().to_bytes())),
        }));
    req
}

fn uuid_v4() -> String {
    orchestrator_shared_types::InstanceId::new().to_string()
}

fn clone_request(req: &Request<Body>, body: &[u8]) -> Request<Body> {
    let mut b = Request::builder().method(req.method()).uri(req.uri());
    for (k, v) in req.headers() {
        b = b.header(k, v);
    }
    b.body(Body::from(body.to_vec())).unwrap()
}
