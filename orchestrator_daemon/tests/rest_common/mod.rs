//! An API over a mock cluster, and a signing client, for REST tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use chrono::Utc;
use cluster_manager::mock::{test_node, MockClusterManager};
use container_runtime::mock::MockRuntime;
use container_runtime_interface::ContainerRuntime;
use ed25519_dalek::SigningKey;
use observability::events::EventHub;
use observability::health::Health;
use observability::metrics::Metrics;
use orchestrator_core::{Deps, Orchestrator, ReconcilerConfig};
use orchestrator_rest::info::{self, NodeInfo};
use orchestrator_rest::{self as rest, AppState, AuthConfig, AuthGate};
use orchestrator_shared_types::auth::{
    sign_request, Payload, HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use orchestrator_shared_types::PublicKey;
use scheduler_interface::simple::{SimpleScheduler, SimpleSchedulerConfig};
use state_store_interface::memory::InMemoryStore;
use state_store_interface::StateStore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const HELLO_YAML: &str = include_str!("../../../examples/hello.yaml");

/// The audience the test APIs expect (as a cluster's id would be).
pub const AUDIENCE: &str = "test-cluster";

/// The gate of a test API: `auth`, [`AUDIENCE`], refusals counted in `metrics`.
pub fn gate(auth: AuthConfig, metrics: &Arc<Metrics>) -> AuthGate {
    AuthGate::new(auth, AUDIENCE).counting(Arc::clone(metrics))
}

/// The state of a test API over `orch`: `auth`, [`AUDIENCE`], refusals
/// counted in the orchestrator's metrics.
pub fn app_state(orch: &Arc<Orchestrator>, auth: AuthConfig) -> AppState {
    let health = Arc::new(Health::new());
    AppState::with_gate(Arc::clone(orch), gate(auth, &orch.deps().metrics), health)
}

/// `GET /api/v1/info` of a test API on `node`.
pub fn info_router(node: &orchestrator_shared_types::Node) -> Router {
    info::router(NodeInfo {
        audience: AUDIENCE.to_owned(),
        cluster_id: Some(AUDIENCE.to_owned()),
        node_id: node.id.to_string(),
        version: "test".to_owned(),
    })
}

/// The test registry's address (`./scripts/test-registry start`), from
/// `UNIVRS_TEST_REGISTRY`, default 127.0.0.1:5000.
pub fn registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

/// A youki runtime keeping its state under `dir`, pulling from the test
/// registry over plain HTTP; the test fails if it cannot start (CI is root).
#[cfg(target_os = "linux")]
pub async fn youki_runtime(dir: &std::path::Path) -> Arc<container_runtime::youki::YoukiRuntime> {
    let mut cfg = container_runtime::youki::YoukiConfig::new(dir.join("runtime"));
    cfg.insecure_registries = vec![registry()];
    Arc::new(
        container_runtime::youki::YoukiRuntime::new(cfg)
            .await
            .unwrap_or_else(|e| panic!("the youki runtime must start here: {e}")),
    )
}

pub struct Api {
    pub router: Router,
    pub orch: Arc<Orchestrator>,
    pub store: Arc<dyn StateStore>,
    pub runtime: Arc<MockRuntime>,
    pub metrics: Arc<Metrics>,
    pub cancel: CancellationToken,
}

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn public(k: &SigningKey) -> PublicKey {
    PublicKey(k.verifying_key().to_bytes())
}

pub async fn api(auth: AuthConfig) -> Api {
    api_with(auth, ReconcilerConfig::for_test()).await
}

/// [`api`] with the orchestrator configured by `config` (e.g. its quotas).
pub async fn api_with(auth: AuthConfig, config: ReconcilerConfig) -> Api {
    let node = test_node(1, 16_000, 64 << 30);
    let runtime = Arc::new(MockRuntime::new());
    let core = api_on_with(auth, runtime.clone(), node, config).await;
    Api {
        router: core.router,
        orch: core.orch,
        store: core.store,
        runtime,
        metrics: core.metrics,
        cancel: core.cancel,
    }
}

/// The API over any runtime, on one node.
pub struct ApiOn {
    pub router: Router,
    pub orch: Arc<Orchestrator>,
    pub store: Arc<dyn StateStore>,
    pub metrics: Arc<Metrics>,
    pub events: EventHub,
    pub cancel: CancellationToken,
}

/// The REST API and an orchestrator over `runtime`, serving `node` alone.
pub async fn api_on(
    auth: AuthConfig,
    runtime: Arc<dyn ContainerRuntime>,
    node: orchestrator_shared_types::Node,
) -> ApiOn {
    api_on_with(auth, runtime, node, ReconcilerConfig::for_test()).await
}

/// [`api_on`] with the orchestrator configured by `config`.
pub async fn api_on_with(
    auth: AuthConfig,
    runtime: Arc<dyn ContainerRuntime>,
    node: orchestrator_shared_types::Node,
    config: ReconcilerConfig,
) -> ApiOn {
    runtime.init_node(node.id).await.unwrap();
    let info = info_router(&node);
    let store: Arc<dyn StateStore> = Arc::new(InMemoryStore::new());
    let events = EventHub::new(1024);
    let metrics = Arc::new(Metrics::new().unwrap());
    let deps = Deps {
        store: Arc::clone(&store),
        runtime,
        cluster: Arc::new(MockClusterManager::new(node)),
        scheduler: Arc::new(SimpleScheduler::new(SimpleSchedulerConfig::default())),
        metrics: Arc::clone(&metrics),
        events: events.clone(),
    };
    let cancel = CancellationToken::new();
    let orch = Arc::new(
        Orchestrator::start(config, deps, cancel.clone())
            .await
            .unwrap(),
    );
    let health = Arc::new(Health::new());
    health.set_ok("store");
    health.set_ready(true);
    let router = rest::router(AppState::with_gate(
        Arc::clone(&orch),
        gate(auth, &metrics),
        health,
    ))
    .merge(info);
    ApiOn {
        router,
        orch,
        store,
        metrics,
        events,
        cancel,
    }
}

/// The headers `key` signs `method path body` with at `now`, for [`AUDIENCE`].
pub fn sign(
    key: &SigningKey,
    method: &str,
    path: &str,
    body: &[u8],
    now: chrono::DateTime<Utc>,
) -> orchestrator_shared_types::auth::SignedHeaders {
    sign_request(key, &Payload::new(method, path, body, AUDIENCE), now)
}

/// A request signed by `key` over exactly these method, path and body, for
/// [`AUDIENCE`].
pub fn signed(key: &SigningKey, method: &str, path: &str, body: &[u8]) -> Request<Body> {
    signed_with(key, method, path, body, "application/json")
}

/// A request signed by `key` as made by agent `agent` (`X-Univrs-Agent`,
/// signed too), for [`AUDIENCE`].
pub fn signed_as_agent(
    key: &SigningKey,
    agent: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Request<Body> {
    let p = Payload::new(method, path, body, AUDIENCE).by_agent(agent);
    let h = sign_request(key, &p, Utc::now());
    Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header(HEADER_PUBLIC_KEY, h.public_key)
        .header(HEADER_TIMESTAMP, h.timestamp)
        .header(HEADER_SIGNATURE, h.signature)
        .header(orchestrator_shared_types::agent::HEADER_AGENT, agent)
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// The value of `orchestrator_api_auth_refused_total{reason}` in `metrics`.
pub fn refused_count(metrics: &Metrics, reason: &str) -> u64 {
    metrics.auth_refused.with_label_values(&[reason]).get()
}

pub fn signed_with(
    key: &SigningKey,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> Request<Body> {
    let h = sign_request(key, &Payload::new(method, path, body, AUDIENCE), Utc::now());
    Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .header(HEADER_PUBLIC_KEY, h.public_key)
        .header(HEADER_TIMESTAMP, h.timestamp)
        .header(HEADER_SIGNATURE, h.signature)
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// Sends `req` through `router` and reads the JSON answer.
pub async fn send_to(router: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp: Response<Body> = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        })
    };
    (status, value)
}

impl Api {
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, serde_json::Value) {
        send_to(&self.router, req).await
    }

    /// A fingerprint of everything stored, to prove a refused request changed nothing.
    pub async fn snapshot(&self) -> String {
        let mut w = self.store.list_workloads().await.unwrap();
        w.sort_by_key(|w| w.id);
        let mut i = self.store.list_instances().await.unwrap();
        i.sort_by_key(|i| i.id);
        format!(
            "{}{}",
            serde_json::to_string(&w).unwrap(),
            serde_json::to_string(&i).unwrap()
        )
    }
}

/// Polls `check` every 20 ms until it holds; fails naming `what` after 30 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
