//! End to end over a real socket: AI agents (docs/AGENTS.md) against the real
//! `orchestrator_daemon`: `ui policy ...` and `ui agent token create` push the
//! automation policy, a token acts within it, `ui approvals` decides the calls
//! waiting, and `ui agent token revoke` ends the token.

mod common;

use serde_json::Value;

use common::{agent_token, start_daemon, ui, ui_ok, with_token};

#[test]
fn tokens_policy_and_approvals_against_a_real_daemon() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config_dir = tmp.path().join("config");
    let daemon = start_daemon(&tmp.path().join("data"));
    let server = daemon.url.as_str();
    ui_ok(&config_dir, server, &["init"]);

    // Local edits only say how to apply them.
    let out = ui_ok(
        &config_dir,
        server,
        &["policy", "automation", "list_workloads", "autonomous"],
    );
    assert!(out.contains("run `ui policy push`"), "{out}");
    ui_ok(
        &config_dir,
        server,
        &["policy", "automation", "drain_node", "forbidden"],
    );
    let out = ui(
        &config_dir,
        server,
        &["policy", "automation", "deploy", "forbidden"],
    );
    assert_eq!(out.status.code(), Some(1));
    ui_ok(&config_dir, server, &["policy", "ai", "on"]);

    // Creating a token pushes the policy first; stdout is the token alone.
    let out = ui(
        &config_dir,
        server,
        &agent_token("bot", "list_workloads,delete_workload,drain_node"),
    );
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("univrs-agent-v1."), "{token}");
    assert!(!token.contains('\n'));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pushed your automation policy"), "{stderr}");
    let claims = orchestrator_shared_types::agent::decode_unverified(&token).expect("claims");
    assert_eq!(claims.agent, "bot");

    let pushed = ui_ok(&config_dir, server, &["policy", "push", "-o", "json"]);
    let pushed: Value = serde_json::from_str(&pushed).expect("json");
    assert_eq!(pushed["automation"]["enabled"], true);
    assert_eq!(
        pushed["automation"]["forbidden"],
        serde_json::json!(["drain_node"])
    );
    // No trust.toml: the trust policy pushed is empty.
    assert_eq!(pushed["trust"], serde_json::json!({}));

    // Autonomous runs; forbidden and tools outside the token are refused;
    // the rest waits for approval.
    let (status, _) = with_token(server, &token, "GET", "/api/v1/workloads");
    assert_eq!(status, 200);
    let (status, _) = with_token(
        server,
        &token,
        "POST",
        &format!("/api/v1/nodes/{}/drain", "ab".repeat(32)),
    );
    assert_eq!(status, 403);
    let (status, _) = with_token(server, &token, "GET", "/api/v1/nodes");
    assert_eq!(status, 403);
    let (status, body) = with_token(server, &token, "DELETE", "/api/v1/workloads/web");
    assert_eq!(status, 202, "{body}");

    let listed = ui_ok(&config_dir, server, &["approvals", "list", "-o", "json"]);
    let listed: Value = serde_json::from_str(&listed).expect("json");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["tool"], "delete_workload");
    let id = items[0]["id"].as_str().expect("id").to_owned();
    let table = ui_ok(&config_dir, server, &["approvals", "list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&id) && table.contains("DELETE /api/v1/workloads/web"));

    let out = ui_ok(&config_dir, server, &["approvals", "approve", &id]);
    assert!(out.starts_with(&format!("approval {id} approved")), "{out}");
    let again = ui(&config_dir, server, &["approvals", "approve", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("HTTP 409"));
    let pending = ui_ok(&config_dir, server, &["approvals", "list", "-o", "json"]);
    let pending: Value = serde_json::from_str(&pending).expect("json");
    assert_eq!(pending["items"], serde_json::json!([]));
    let all = ui_ok(
        &config_dir,
        server,
        &["approvals", "list", "--all", "-o", "json"],
    );
    let all: Value = serde_json::from_str(&all).expect("json");
    assert_eq!(all["items"][0]["state"], "approved");

    // A revoked token is refused.
    let out = ui_ok(
        &config_dir,
        server,
        &["agent", "token", "revoke", &claims.id],
    );
    assert_eq!(out.trim(), format!("token {} revoked", claims.id));
    let (status, _) = with_token(server, &token, "GET", "/api/v1/workloads");
    assert!((400..500).contains(&status), "{status}");
}
