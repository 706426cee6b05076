//! The audit log through the REST API: every mutating call, allowed or
//! refused, is recorded with who, what and the outcome; owners see their own
//! entries, admins all; an edited entry makes the chain fail to verify.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod rest_common;

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use container_runtime::mock::MockRuntime;
use orchestrator_audit::{AuditLog, AUDIT_FILE};
use orchestrator_rest::{self as rest, AuthConfig};
use rest_common::{api_on, key, public, send_to, signed};

#[tokio::test]
async fn mutating_calls_are_recorded_and_tampering_is_detected() {
    let (owner, other, admin) = (key(1), key(2), key(9));
    let auth = AuthConfig {
        admin_keys: HashSet::from([public(&admin)]),
        ..AuthConfig::default()
    };
    let node = cluster_manager::mock::test_node(1, 4000, 8 << 30);
    let api = api_on(auth.clone(), Arc::new(MockRuntime::new()), node).await;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path()).unwrap());
    let router = rest::router(rest_common::app_state(&api.orch, auth).with_audit(Arc::clone(&log)));

    let manifest = br#"{"name":"web","replicas":1,"containers":[{"name":"main","image":"web:1"}]}"#;
    let (s, _) = send_to(
        &router,
        signed(&owner, "POST", "/api/v1/workloads", manifest),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let scale = br#"{"replicas":2}"#;
    let (s, _) = send_to(
        &router,
        signed(&owner, "POST", "/api/v1/workloads/web/scale", scale),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send_to(
        &router,
        signed(&other, "DELETE", "/api/v1/workloads/web", b""),
    )
    .await;
    assert!(
        s.is_client_error(),
        "another owner's delete is refused: {s}"
    );
    let unsigned = Request::builder()
        .method("POST")
        .uri("/api/v1/workloads")
        .body(Body::from(manifest.to_vec()))
        .unwrap();
    let (s, _) = send_to(&router, unsigned).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Reads are not recorded.
    let (s, _) = send_to(&router, signed(&owner, "GET", "/api/v1/workloads", b"")).await;
    assert_eq!(s, StatusCode::OK);

    let (s, all) = send_to(&router, signed(&admin, "GET", "/api/v1/audit", b"")).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let items = all["items"].as_array().unwrap();
    let got: Vec<(&str, &str)> = items
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("POST /api/v1/workloads", "allowed"),
            ("POST /api/v1/workloads/web/scale", "allowed"),
            ("DELETE /api/v1/workloads/web", "refused"),
        ],
        "the unsigned call is not recorded: the audit log holds only authenticated callers"
    );
    assert_eq!(items[1]["args"], r#"{"replicas":2}"#);
    assert_eq!(items[0]["key"], public(&owner).to_string());
    assert_eq!(items[2]["key"], public(&other).to_string());

    let (_, mine) = send_to(&router, signed(&owner, "GET", "/api/v1/audit", b"")).await;
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        2,
        "an owner sees their own calls"
    );

    let (_, v) = send_to(&router, signed(&owner, "GET", "/api/v1/audit/verify", b"")).await;
    assert_eq!(
        (v["ok"].as_bool(), v["entries"].as_u64()),
        (Some(true), Some(3)),
        "{v}"
    );
    let path = dir.path().join(AUDIT_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("\\\"replicas\\\":2", "\\\"replicas\\\":7", 1),
    )
    .unwrap();
    let (_, v) = send_to(&router, signed(&owner, "GET", "/api/v1/audit/verify", b"")).await;
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("entry 2"), "{v}");
}
