//! Requests bound to their audience and agent (SPEC §11, signing scheme v2),
//! attacked: a request signed for one node is refused by another; an agent's
//! signed call with `X-Univrs-Agent` stripped or changed is refused, directly
//! and through a worker's forwarding proxy; a flood of unsigned or forged
//! requests adds nothing to the audit log (it is counted instead) while a
//! user's signed requests go on; agents are refused on `/api/v1/network*`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod rest_common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::any;
use axum::Router;
use chrono::{Duration, Utc};
use cluster_manager::mock::{test_node, MockClusterManager};
use cluster_manager_interface::{ClusterManager, ROLE_CONTROL_PLANE, ROLE_LABEL, ROLE_WORKER};
use container_runtime::mock::MockRuntime;
use ed25519_dalek::SigningKey;
use node_agent::proxy::{self, ProxyState};
use orchestrator_audit::AuditLog;
use orchestrator_daemon::run::Daemon;
use orchestrator_daemon::DaemonConfig;
use orchestrator_rest::network::{self, NetworkState};
use orchestrator_rest::{self as rest, AuthConfig};
use orchestrator_shared_types::agent::{issue_token, TokenClaims, HEADER_AGENT};
use orchestrator_shared_types::auth::{
    sign_request, Payload, HEADER_AUDIENCE, HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use orchestrator_shared_types::NodeId;
use rest_common::{
    api_on, app_state, key, public, refused_count, send_to, signed, signed_as_agent, AUDIENCE,
};
use serde_json::{json, Value};

const MANIFEST: &[u8] =
    br#"{"name":"web","replicas":1,"containers":[{"name":"main","image":"web:1"}]}"#;

/// A standalone daemon (mock runtime, memory store) on an ephemeral port.
async fn standalone() -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = DaemonConfig::for_test(dir.path().join("data"));
    (Daemon::start(&config).await.unwrap(), dir)
}

/// `(status, json)` of a reqwest answer.
async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_signed_for_one_node_is_refused_by_another() {
    let ((a, _da), (b, _db)) = (standalone().await, standalone().await);
    let http = reqwest::Client::new();
    let info = |d: &Daemon| format!("http://{}/api/v1/info", d.api_addr);

    // /api/v1/info answers without a signature; a standalone node's audience
    // is its own node id.
    let (s, info_a) = answer(http.get(info(&a)).send().await.unwrap()).await;
    assert_eq!(s, 200, "{info_a}");
    let (_, info_b) = answer(http.get(info(&b)).send().await.unwrap()).await;
    let (aud_a, aud_b) = (
        info_a["audience"].as_str().unwrap().to_owned(),
        info_b["audience"].as_str().unwrap().to_owned(),
    );
    assert_eq!(info_a["node_id"], info_a["audience"], "{info_a}");
    assert!(info_a["cluster_id"].is_null(), "{info_a}");
    assert!(!info_a["version"].as_str().unwrap().is_empty());
    assert_ne!(aud_a, aud_b, "two nodes, two audiences");

    // One request, signed for A, sent to B then to A.
    let user = key(1);
    let path = "/api/v1/workloads";
    let h = sign_request(
        &user,
        &Payload::new("POST", path, MANIFEST, &aud_a),
        Utc::now(),
    );
    let send = |d: &Daemon, with_audience: bool| {
        let mut r = http
            .post(format!("http://{}{path}", d.api_addr))
            .header("content-type", "application/json")
            .header(HEADER_PUBLIC_KEY, &h.public_key)
            .header(HEADER_TIMESTAMP, &h.timestamp)
            .header(HEADER_SIGNATURE, &h.signature)
            .body(MANIFEST.to_vec());
        if with_audience {
            r = r.header(HEADER_AUDIENCE, &aud_a);
        }
        r.send()
    };
    let (s, refused) = answer(send(&b, false).await.unwrap()).await;
    assert_eq!(s, 401, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains(&aud_b), "names B's audience: {message}");
    // Naming the audience it signed for, the client learns exactly why.
    let (s, refused) = answer(send(&b, true).await.unwrap()).await;
    assert_eq!(s, 401, "{refused}");
    assert_eq!(refused["error"]["code"], "audience_mismatch", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("audience does not match") && message.contains(&aud_b),
        "{message}"
    );
    let (s, created) = answer(send(&a, false).await.unwrap()).await;
    assert_eq!(s, 201, "A accepts what was signed for it: {created}");

    // Nothing was created on B; the workload exists on A.
    let list = |d: &Daemon, aud: &str| {
        let h = sign_request(&user, &Payload::new("GET", path, b"", aud), Utc::now());
        http.get(format!("http://{}{path}", d.api_addr))
            .header(HEADER_PUBLIC_KEY, h.public_key)
            .header(HEADER_TIMESTAMP, h.timestamp)
            .header(HEADER_SIGNATURE, h.signature)
            .send()
    };
    let (s, on_b) = answer(list(&b, &aud_b).await.unwrap()).await;
    assert_eq!((s, on_b["items"].as_array().unwrap().len()), (200, 0));
    let (s, on_a) = answer(list(&a, &aud_a).await.unwrap()).await;
    assert_eq!((s, on_a["items"].as_array().unwrap().len()), (200, 1));
    // B counted the refusals.
    let metrics = http
        .get(format!("http://{}/metrics", b.api_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"orchestrator_api_auth_refused_total{reason="audience_mismatch"} 1"#)
            && metrics.contains(r#"orchestrator_api_auth_refused_total{reason="bad_signature"} 1"#),
        "{metrics}"
    );
    a.stop().await;
    b.stop().await;
}

/// An API whose user `key(1)` lets agents list workloads.
async fn with_agents_allowed() -> rest_common::ApiOn {
    let node = test_node(1, 4000, 8 << 30);
    let api = api_on(AuthConfig::default(), Arc::new(MockRuntime::new()), node).await;
    let policy = json!({"enabled": true, "autonomous": ["list_workloads"]}).to_string();
    let (s, v) = send_to(
        &api.router,
        signed(&key(1), "PUT", "/api/v1/agent/policy", policy.as_bytes()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    api
}

/// `req` with its `X-Univrs-Agent` header set to `agent`, or removed.
fn with_agent(req: &Request<Body>, agent: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(req.method()).uri(req.uri());
    for (k, v) in req.headers() {
        if k.as_str() != HEADER_AGENT {
            b = b.header(k, v);
        }
    }
    if let Some(a) = agent {
        b = b.header(HEADER_AGENT, a);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn an_agents_call_with_its_agent_stripped_or_changed_is_refused() {
    let api = with_agents_allowed().await;
    let user = key(1);
    let path = "/api/v1/workloads";
    let call = signed_as_agent(&user, "bot", "GET", path, b"");
    let stripped = with_agent(&call, None);
    let changed = with_agent(&call, Some("other-bot"));
    // Stripped, the call would run as the user in person, past the policy;
    // changed, as another agent. Both are refused before any handler runs.
    for (what, req) in [("stripped", stripped), ("changed", changed)] {
        let (s, v) = send_to(&api.router, req).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
        assert!(v.to_string().contains("X-Univrs-Agent"), "{what}: {v}");
    }
    assert_eq!(refused_count(&api.metrics, "bad_signature"), 2);
    // The call as signed goes through (it was never spent by the refusals).
    let (s, v) = send_to(&api.router, call).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    api.cancel.cancel();
}

/// A member record for `key` with `role` at `address`.
fn member(key: &SigningKey, role: &str, address: String) -> orchestrator_shared_types::Node {
    let mut n = test_node(1, 4000, 8 << 30);
    n.id = NodeId(key.verifying_key().to_bytes());
    n.address = address;
    n.labels = BTreeMap::from([(ROLE_LABEL.to_owned(), role.to_owned())]);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_calls_verify_on_the_control_plane_and_a_stripped_agent_still_fails() {
    // The control plane's API on a real socket.
    let api = with_agents_allowed().await;
    // It takes the worker's mutual-TLS connection (the worker is a member).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cp_addr = listener.local_addr().unwrap().to_string();
    let served = api.router.clone();
    let worker_id = NodeId(key(20).verifying_key().to_bytes());
    let members: peer_tls::Members = Arc::new(move |id| Box::pin(async move { id == worker_id }));
    let cp_tls = peer_tls::NodeTls::new(&key(21)).unwrap();
    tokio::spawn(async move {
        peer_tls::serve(listener, served, &cp_tls, members, std::future::pending())
            .await
            .unwrap()
    });
    // A worker whose proxy knows it as the control plane.
    let cluster = Arc::new(MockClusterManager::new(member(
        &key(20),
        ROLE_WORKER,
        "127.0.0.1:1".into(),
    )));
    cluster
        .add_node(member(&key(21), ROLE_CONTROL_PLANE, cp_addr))
        .unwrap();
    let peers = peer_tls::PeerClients::new(
        Arc::new(peer_tls::NodeTls::new(&key(20)).unwrap()),
        std::time::Duration::from_secs(2),
    );
    let proxy_state = ProxyState::new(cluster as Arc<dyn ClusterManager>, Arc::new(peers));
    let worker = Router::new()
        .route("/api/v1/{*rest}", any(proxy::forward))
        .with_state(proxy_state);

    let user = key(1);
    let path = "/api/v1/workloads";
    let (s, v) = send_to(&worker, signed(&user, "POST", path, MANIFEST)).await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "a user's call through a worker: {v}"
    );
    let call = signed_as_agent(&user, "bot", "GET", path, b"");
    let stripped = with_agent(&call, None);
    let (s, v) = send_to(&worker, call).await;
    assert_eq!(s, StatusCode::OK, "an agent's call through a worker: {v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    let (s, v) = send_to(&worker, stripped).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "stripped after signing: {v}");
    api.cancel.cancel();
}

#[tokio::test]
async fn a_thousand_unsigned_or_forged_posts_add_no_audit_entry_while_a_user_goes_on() {
    let node = test_node(1, 4000, 8 << 30);
    let api = api_on(AuthConfig::default(), Arc::new(MockRuntime::new()), node).await;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path()).unwrap());
    let router =
        rest::router(app_state(&api.orch, AuthConfig::default()).with_audit(Arc::clone(&log)));
    let (user, mallory) = (key(1), key(2));
    let path = "/api/v1/workloads";
    let before = log.entries().await.unwrap().len();
    let refused_before: u64 = ["missing_header", "bad_signature", "audience_mismatch"]
        .iter()
        .map(|r| refused_count(&api.metrics, r))
        .sum();
    let mut user_posts = 0;
    for i in 0..1000u32 {
        let body = format!(
            r#"{{"name":"spam-{i}","replicas":1,"containers":[{{"name":"main","image":"web:1"}}]}}"#
        );
        let req = match i % 4 {
            // Unsigned.
            0 => Request::builder()
                .method("POST")
                .uri(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
            // Mallory's signature under the user's key.
            1 => {
                let mut r = signed(&mallory, "POST", path, body.as_bytes());
                let pk = signed(&user, "GET", "/", b"").headers()[HEADER_PUBLIC_KEY].clone();
                r.headers_mut().insert(HEADER_PUBLIC_KEY, pk);
                r
            }
            // Signed for another cluster, saying so.
            2 => {
                let h = sign_request(
                    &user,
                    &Payload::new("POST", path, body.as_bytes(), "elsewhere"),
                    Utc::now(),
                );
                Request::builder()
                    .method("POST")
                    .uri(path)
                    .header("content-type", "application/json")
                    .header(HEADER_PUBLIC_KEY, h.public_key)
                    .header(HEADER_TIMESTAMP, h.timestamp)
                    .header(HEADER_SIGNATURE, h.signature)
                    .header(HEADER_AUDIENCE, "elsewhere")
                    .body(Body::from(body))
                    .unwrap()
            }
            // The body changed after signing.
            _ => {
                let r = signed(&user, "POST", path, MANIFEST);
                let (parts, _) = r.into_parts();
                Request::from_parts(parts, Body::from(body))
            }
        };
        let (s, v) = send_to(&router, req).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{i}: {v}");
        // Meanwhile the user's own signed requests go on.
        if i % 100 == 0 {
            let body = format!(
                r#"{{"name":"mine-{i}","replicas":1,"containers":[{{"name":"main","image":"web:1"}}]}}"#
            );
            let (s, v) = send_to(&router, signed(&user, "POST", path, body.as_bytes())).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            user_posts += 1;
        }
    }
    let entries = log.entries().await.unwrap();
    assert_eq!(
        entries.len() - before,
        user_posts,
        "only the user's signed calls are on record"
    );
    let me = public(&user).to_string();
    assert!(entries[before..]
        .iter()
        .all(|e| e.key.as_deref() == Some(me.as_str()) && e.decision == "allowed"));
    let refused_after: u64 = ["missing_header", "bad_signature", "audience_mismatch"]
        .iter()
        .map(|r| refused_count(&api.metrics, r))
        .sum();
    assert_eq!(
        refused_after - refused_before,
        1000,
        "every refusal is counted"
    );
    assert!(log.verify().await.is_ok());
    api.cancel.cancel();
}

fn token(user: &SigningKey, tools: &[&str]) -> (String, String) {
    let now = Utc::now();
    let claims = TokenClaims::new(
        public(user),
        "bot",
        tools.iter().map(|t| (*t).to_owned()).collect(),
        now,
        now + Duration::hours(1),
    );
    (issue_token(user, &claims), claims.id)
}

fn bearer(token: &str, method: &str, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn agents_are_refused_on_the_network_routes_whatever_their_token() {
    let api = with_agents_allowed().await;
    let node = test_node(1, 4000, 8 << 30);
    let state = app_state(&api.orch, AuthConfig::default());
    let net = network::router(
        NetworkState {
            cluster: Arc::new(MockClusterManager::new(node)),
            gossip: None,
            role: "standalone".into(),
            peers: None,
            leader: None,
        },
        state.gate.clone(),
    );
    let router = rest::router(state).merge(net);
    let user = key(1);
    let (good, _) = token(&user, &["*"]);
    let (narrow, _) = token(&user, &["list_workloads"]);
    let (revoked, revoked_id) = token(&user, &["*"]);
    let revoke = format!("/api/v1/agent/tokens/{revoked_id}/revoke");
    let (s, v) = send_to(&router, signed(&user, "POST", &revoke, b"")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The tokens work where their scope and the policy allow.
    let (s, v) = send_to(&router, bearer(&narrow, "GET", "/api/v1/workloads")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = send_to(&router, bearer(&revoked, "GET", "/api/v1/workloads")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked");
    // No agent reaches /api/v1/network*: revoked, out of scope, or not.
    let mut refused = HashSet::new();
    for p in [
        "/api/v1/network",
        "/api/v1/network/peers",
        "/api/v1/network/discover",
    ] {
        for (what, req) in [
            ("a token", bearer(&good, "GET", p)),
            ("an out-of-scope token", bearer(&narrow, "GET", p)),
            ("a revoked token", bearer(&revoked, "GET", p)),
            (
                "a signed agent call",
                signed_as_agent(&user, "bot", "GET", p, b""),
            ),
        ] {
            let (s, v) = send_to(&router, req).await;
            assert!(
                s == StatusCode::FORBIDDEN || s == StatusCode::UNAUTHORIZED,
                "{what} on {p}: {s} {v}"
            );
            refused.insert(s);
        }
        // The user in person is answered.
        let (s, v) = send_to(&router, signed(&user, "GET", p, b"")).await;
        assert_eq!(s, StatusCode::OK, "{p}: {v}");
    }
    assert!(refused.contains(&StatusCode::FORBIDDEN));
    api.cancel.cancel();
}

#[tokio::test]
async fn info_is_unsigned_and_its_audience_makes_a_signed_request_succeed() {
    let node = test_node(1, 4000, 8 << 30);
    let api = api_on(AuthConfig::default(), Arc::new(MockRuntime::new()), node).await;
    let req = Request::builder()
        .uri("/api/v1/info")
        .body(Body::empty())
        .unwrap();
    let (s, info) = send_to(&api.router, req).await;
    assert_eq!(s, StatusCode::OK, "{info}");
    assert_eq!(info["audience"], AUDIENCE);
    let audience = info["audience"].as_str().unwrap();
    let user = key(1);
    let path = "/api/v1/workloads";
    let h = sign_request(
        &user,
        &Payload::new("POST", path, MANIFEST, audience),
        Utc::now(),
    );
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .header(HEADER_PUBLIC_KEY, h.public_key)
        .header(HEADER_TIMESTAMP, h.timestamp)
        .header(HEADER_SIGNATURE, h.signature)
        .body(Body::from(MANIFEST.to_vec()))
        .unwrap();
    let (s, v) = send_to(&api.router, req).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The OpenAPI document lists /api/v1/info, without security.
    let req = Request::builder()
        .uri("/api/v1/openapi.json")
        .body(Body::empty())
        .unwrap();
    let (_, doc) = send_to(&api.router, req).await;
    let op = &doc["paths"]["/api/v1/info"]["get"];
    assert!(op.is_object(), "{}", doc["paths"]);
    assert!(op.get("security").is_none(), "{op}");
    api.cancel.cancel();
}
