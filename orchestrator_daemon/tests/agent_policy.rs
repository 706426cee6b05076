//! Agents through the REST API (docs/AGENTS.md): agent tokens are verified on
//! every call (expired, tampered, revoked, out of scope refused), the user's
//! automation policy is enforced by the daemon (forbidden refused, approval
//! held until the user approves — then run exactly once — autonomous run), an
//! agent cannot approve, change the policy or reach another user's workloads,
//! and every decision is in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod rest_common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration, Utc};
use container_runtime::mock::MockRuntime;
use ed25519_dalek::SigningKey;
use orchestrator_audit::AuditLog;
use orchestrator_rest::{self as rest, AuthConfig};
use orchestrator_shared_types::agent::{issue_token, TokenClaims};
use rest_common::{api_on, key, public, refused_count, send_to, signed, signed_as_agent};
use serde_json::{json, Value};

const MANIFEST: &[u8] =
    br#"{"name":"web","replicas":1,"containers":[{"name":"main","image":"web:1"}]}"#;

fn token(user: &SigningKey, agent: &str, tools: &[&str], ttl: Duration) -> (String, String) {
    let now = Utc::now();
    let claims = TokenClaims::new(
        public(user),
        agent,
        tools.iter().map(|t| (*t).to_owned()).collect(),
        now,
        now + ttl,
    );
    (issue_token(user, &claims), claims.id)
}

fn bearer(token: &str, method: &str, path: &str, body: &[u8]) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap()
}

struct Lab {
    router: axum::Router,
    log: Arc<AuditLog>,
    _dir: tempfile::TempDir,
    _api: rest_common::ApiOn,
}

async fn lab() -> Lab {
    let auth = AuthConfig::default();
    let node = cluster_manager::mock::test_node(1, 4000, 8 << 30);
    let api = api_on(auth.clone(), Arc::new(MockRuntime::new()), node).await;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path()).unwrap());
    let router = rest::router(
        rest_common::app_state(&api.orch, auth)
            .with_audit(Arc::clone(&log))
            .with_mcp(api.cancel.child_token()),
    );
    Lab {
        router,
        log,
        _dir: dir,
        _api: api,
    }
}

async fn push_policy(lab: &Lab, user: &SigningKey, policy: Value) {
    let body = policy.to_string();
    let (s, v) = send_to(
        &lab.router,
        signed(user, "PUT", "/api/v1/agent/policy", body.as_bytes()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn the_policy_forbids_holds_and_lets_run_and_approval_runs_once() {
    let lab = lab().await;
    let user = key(1);
    let (t, _) = token(&user, "helper", &["*"], Duration::hours(1));

    // No policy pushed: agents are off.
    let (s, v) = send_to(&lab.router, bearer(&t, "GET", "/api/v1/workloads", b"")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v.to_string().contains("disabled"), "{v}");

    // A policy naming an unknown tool is refused.
    let (s, v) = send_to(
        &lab.router,
        signed(
            &user,
            "PUT",
            "/api/v1/agent/policy",
            br#"{"enabled":true,"autonomous":["rm_rf"]}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("rm_rf"), "{v}");

    push_policy(
        &lab,
        &user,
        json!({"enabled": true,
               "autonomous": ["create_workload", "scale_workload", "get_workload", "list_pending_approvals"],
               "require_approval": ["delete_workload"],
               "forbidden": ["drain_node"]}),
    )
    .await;
    let (s, _) = send_to(
        &lab.router,
        bearer(&t, "POST", "/api/v1/workloads", MANIFEST),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    // Forbidden: refused, naming the policy; the node stays schedulable.
    let node = cluster_manager::mock::test_node(1, 4000, 8 << 30).id;
    let drain = format!("/api/v1/nodes/{node}/drain");
    let (s, v) = send_to(&lab.router, bearer(&t, "POST", &drain, b"")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        v.to_string()
            .contains("forbidden by your automation policy"),
        "{v}"
    );
    let (_, n) = send_to(
        &lab.router,
        signed(&user, "GET", &format!("/api/v1/nodes/{node}"), b""),
    )
    .await;
    assert_eq!(n["unschedulable"], false);

    // Unlisted (list_nodes): held for approval like require_approval.
    let (s, v) = send_to(&lab.router, bearer(&t, "GET", "/api/v1/nodes", b"")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");

    // Autonomous: runs.
    let (s, v) = send_to(
        &lab.router,
        bearer(
            &t,
            "POST",
            "/api/v1/workloads/web/scale",
            br#"{"replicas":2}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Approval: 202 with a pending id; the workload is still there.
    let (s, v) = send_to(
        &lab.router,
        bearer(&t, "DELETE", "/api/v1/workloads/web", b""),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["pending_approval"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["pending_approval"]["state"], "pending");
    let (s, _) = send_to(
        &lab.router,
        signed(&user, "GET", "/api/v1/workloads/web", b""),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "still there while pending");
    let (s, v) = send_to(&lab.router, bearer(&t, "GET", "/api/v1/approvals", b"")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");

    // The agent cannot approve, deny, change the policy or read the audit log,
    // with a token or through `ui mcp`'s header.
    let approve = format!("/api/v1/approvals/{id}/approve");
    for req in [
        bearer(&t, "POST", &approve, b""),
        bearer(&t, "POST", &format!("/api/v1/approvals/{id}/deny"), b""),
        bearer(&t, "PUT", "/api/v1/agent/policy", br#"{"enabled":true}"#),
        bearer(&t, "GET", "/api/v1/audit", b""),
        signed_as_agent(&user, "stdio-agent", "POST", &approve, b""),
    ] {
        let (s, v) = send_to(&lab.router, req).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    }
    // Another user cannot approve it.
    let (s, _) = send_to(&lab.router, signed(&key(2), "POST", &approve, b"")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The user approves: it runs, once.
    let (s, v) = send_to(&lab.router, signed(&user, "POST", &approve, b"")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(v["result"]["status"], 200, "{v}");
    let (s, _) = send_to(
        &lab.router,
        signed(&user, "GET", "/api/v1/workloads/web", b""),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "deleted on approval");
    let (s, v) = send_to(&lab.router, signed(&user, "POST", &approve, b"")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // Everything is on record, the approved delete exactly once.
    let entries = lab.log.entries().await.unwrap();
    let mine: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.agent.as_deref() == Some("helper"))
        .map(|e| (e.action.clone(), e.decision.clone()))
        .collect();
    for (action, decision) in [
        ("POST /api/v1/workloads".to_owned(), "allowed"),
        (format!("POST {drain}"), "refused"),
        ("POST /api/v1/workloads/web/scale".to_owned(), "allowed"),
        (
            "DELETE /api/v1/workloads/web".to_owned(),
            "pending_approval",
        ),
        ("GET /api/v1/nodes".to_owned(), "pending_approval"),
    ] {
        let want = (action, decision.to_owned());
        assert!(mine.contains(&want), "{want:?} not in {mine:?}");
    }
    let approved = mine
        .iter()
        .filter(|(a, d)| a == "DELETE /api/v1/workloads/web" && d == "approved")
        .count();
    assert_eq!(approved, 1, "{mine:?}");
    assert!(lab.log.verify().await.is_ok());

    // An agent looping on a held call fills the user's queue up to its bound,
    // then is refused with nothing stored.
    let pending = || async {
        let (_, v) = send_to(
            &lab.router,
            signed(&user, "GET", "/api/v1/approvals?limit=1000", b""),
        )
        .await;
        v["items"].as_array().map_or(0, Vec::len)
    };
    let mut held = pending().await;
    while held < orchestrator_agents::MAX_PENDING_PER_USER {
        let (s, _) = send_to(&lab.router, bearer(&t, "GET", "/api/v1/nodes", b"")).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        held += 1;
    }
    let (s, v) = send_to(&lab.router, bearer(&t, "GET", "/api/v1/nodes", b"")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(v.to_string().contains("approve or deny some"), "{v}");
    assert_eq!(pending().await, orchestrator_agents::MAX_PENDING_PER_USER);
}

#[tokio::test]
async fn bad_tokens_are_refused_and_change_nothing() {
    let lab = lab().await;
    let (user, other) = (key(1), key(2));
    for k in [&user, &other] {
        push_policy(
            &lab,
            k,
            json!({"enabled": true, "autonomous": ["create_workload", "get_workload",
                   "scale_workload", "delete_workload", "list_workloads"]}),
        )
        .await;
    }
    let (good, good_id) = token(
        &user,
        "a",
        &["create_workload", "get_workload"],
        Duration::hours(1),
    );
    let (s, _) = send_to(
        &lab.router,
        bearer(&good, "POST", "/api/v1/workloads", MANIFEST),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    // Out of scope.
    let scale = bearer(
        &good,
        "POST",
        "/api/v1/workloads/web/scale",
        br#"{"replicas":5}"#,
    );
    let (s, v) = send_to(&lab.router, scale).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v.to_string().contains("does not allow"), "{v}");

    // Expired.
    let (old, _) = token(&user, "a", &["*"], Duration::seconds(-5));
    let (s, v) = send_to(
        &lab.router,
        bearer(&old, "GET", "/api/v1/workloads/web", b""),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v.to_string().contains("expired"), "{v}");

    // Tampered: the claims re-encoded with more tools, the old signature kept.
    let (prefix_claims, sig) = good.rsplit_once('.').unwrap();
    let (prefix, claims) = prefix_claims.split_once('.').unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut c: Value = serde_json::from_slice(&b64.decode(claims).unwrap()).unwrap();
    c["tools"] = json!(["*"]);
    let forged = format!("{prefix}.{}.{sig}", b64.encode(c.to_string()));
    let (s, _) = send_to(
        &lab.router,
        bearer(
            &forged,
            "POST",
            "/api/v1/workloads/web/scale",
            br#"{"replicas":5}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Another user's token cannot reach the workload.
    let (theirs, _) = token(&other, "b", &["*"], Duration::hours(1));
    for (m, p, b) in [
        ("GET", "/api/v1/workloads/web", &b""[..]),
        ("DELETE", "/api/v1/workloads/web", &b""[..]),
    ] {
        let (s, _) = send_to(&lab.router, bearer(&theirs, m, p, b)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {p}");
    }

    // Revoked: by another user it stays valid; by its user it is refused.
    let revoke = format!("/api/v1/agent/tokens/{good_id}/revoke");
    let revoke_as = |k: &SigningKey| send_to(&lab.router, signed(k, "POST", &revoke, b""));
    let read_with_good = || {
        send_to(
            &lab.router,
            bearer(&good, "GET", "/api/v1/workloads/web", b""),
        )
    };
    assert_eq!(revoke_as(&other).await.0, StatusCode::OK);
    let (s, _) = read_with_good().await;
    assert_eq!(s, StatusCode::OK, "a stranger's revocation does not count");
    assert_eq!(revoke_as(&user).await.0, StatusCode::OK);
    let (s, v) = read_with_good().await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v.to_string().contains("revoked"), "{v}");
    // A stranger revoking it again afterwards cannot undo the user's revocation.
    assert_eq!(revoke_as(&other).await.0, StatusCode::OK);
    let (s, _) = read_with_good().await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "still revoked");
    // /mcp refuses it too, and refuses no token at all.
    let audited = lab.log.entries().await.unwrap().len();
    let counted = refused_count(&lab._api.metrics, "bad_token");
    let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    for auth in [Some(good.as_str()), None] {
        let mut req = Request::builder()
            .method("POST")
            .uri("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(t) = auth {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let (s, _) = send_to(&lab.router, req.body(Body::from(&init[..])).unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Both refusals at /mcp were before authentication: counted as refused,
    // not written to the audit log (which records only authenticated callers).
    assert_eq!(lab.log.entries().await.unwrap().len(), audited);
    assert_eq!(refused_count(&lab._api.metrics, "bad_token"), counted + 2);
    assert!(lab.log.verify().await.is_ok());

    // Nothing changed: still one replica.
    let (_, w) = send_to(
        &lab.router,
        signed(&user, "GET", "/api/v1/workloads/web", b""),
    )
    .await;
    assert_eq!(w["spec"]["replicas"], 1);
}
