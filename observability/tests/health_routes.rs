//! `/health`, `/healthz`, `/live`, `/ready` and `/metrics` through
//! `tower::ServiceExt::oneshot`.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use observability::health::component;
use observability::{health_routes, Health, Metrics};
use serde_json::json;
use tower::ServiceExt as _;

fn app() -> (Arc<Health>, Arc<Metrics>, Router) {
    let health = Arc::new(Health::new());
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let router = health_routes(health.clone(), metrics.clone());
    (health, metrics, router)
}

async fn get(router: &Router, path: &str) -> (StatusCode, Option<String>, String) {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).expect("utf-8"),
    )
}

#[tokio::test]
async fn liveness_always_ok() {
    let (_, _, router) = app();
    for path in ["/healthz", "/live"] {
        let (status, _, body) = get(&router, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, "ok", "{path}");
    }
}

#[tokio::test]
async fn ready_follows_the_flag() {
    let (health, _, router) = app();
    assert_eq!(
        get(&router, "/ready").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("text/plain; charset=utf-8".into()),
            "not ready".into()
        )
    );
    health.set_ready(true);
    let (status, _, body) = get(&router, "/ready").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));
    health.set_ready(false);
    let (status, _, body) = get(&router, "/ready").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    );
}

#[tokio::test]
async fn health_reports_components() {
    let (health, _, router) = app();
    health.set_ok(component::STORE);
    health.set_ok(component::RECONCILER);
    let (status, content_type, body) = get(&router, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let value: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        value,
        json!({"status": "ok", "components": {
            "reconciler": {"status": "ok"},
            "store": {"status": "ok"},
        }})
    );

    health.set_failing(component::RUNTIME, "containerd socket unreachable");
    health.set_starting(component::CLUSTER);
    let (status, _, body) = get(&router, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let value: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        value,
        json!({"status": "degraded", "components": {
            "cluster": {"status": "starting"},
            "reconciler": {"status": "ok"},
            "runtime": {"status": "failing", "message": "containerd socket unreachable"},
            "store": {"status": "ok"},
        }})
    );
}

#[tokio::test]
async fn metrics_served_as_text_0_0_4() {
    let (_, metrics, router) = app();
    metrics.schedule_attempts.inc();
    let (status, content_type, body) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("text/plain; version=0.0.4"));
    assert!(
        body.contains("orchestrator_schedule_attempts_total 1"),
        "{body}"
    );
}
