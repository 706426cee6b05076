//! The owner's pushed trust policy holds for every client (issue 18): three
//! hosts in network namespaces, each run by its own operator, the control
//! plane on the default (simple) scheduler. The user pushes a trust policy
//! that denies operator 1 (`PUT /api/v1/trust/policy`, as `ui policy push`
//! does); then a workload created over REST and one created over MCP by an
//! agent, neither with a `trust` block, never run on operator 1's node. An
//! agent cannot loosen the policy with a `trust` block of its own, nor push
//! a policy; and a new policy reaches workloads created before it: one that
//! could not be placed is placed, and instances on nodes it now excludes
//! move.
//!
//! Needs root (CI runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod multihost_common;

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use multihost_common::operators::{hex_key, manifest, operator, running, start_operated};
use multihost_common::{eventually, Lab};
use orchestrator_shared_types::agent::{issue_token, TokenClaims};
use orchestrator_shared_types::PublicKey;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);

fn daemon() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"))
}

/// Waits until `name` has `n` running instances and returns them per node.
async fn placed(lab: &Lab, name: &str, n: usize) -> std::collections::BTreeMap<String, usize> {
    eventually(DEADLINE, &format!("{n} replicas of {name} run"), || async {
        running(lab, name)
            .await
            .is_some_and(|p| p.values().sum::<usize>() == n)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 60)));
    running(lab, name).await.unwrap()
}

/// Waits until `name` reports an unscheduled replica whose reason holds `why`.
async fn unscheduled(lab: &Lab, name: &str, why: &str) {
    eventually(
        DEADLINE,
        &format!("{name} is unscheduled: {why}"),
        || async {
            lab.get(0, &format!("/api/v1/workloads/{name}"))
                .await
                .is_some_and(|w| {
                    w["status"]["unscheduled"].as_u64().unwrap_or(0) > 0
                        && w["status"]["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains(why))
                })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 40)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pushed_trust_policy_holds_for_rest_and_mcp_with_the_default_scheduler() {
    let mut lab = Lab::new("up", 9, 3, &daemon());
    let ids = start_operated(&mut lab, &daemon(), &[]).await;
    let denied = hex_key(&operator(1));

    // The user pushes a policy denying operator 1, as `ui policy push` does.
    let policy = json!({"denied_operators": [denied]});
    let (s, v) = lab
        .call(0, "PUT", "/api/v1/trust/policy", Some(&policy))
        .await
        .unwrap();
    assert_eq!(s, 200, "{v}");
    let (s, held) = lab
        .call(0, "GET", "/api/v1/trust/policy", None)
        .await
        .unwrap();
    assert_eq!((s, &held), (200, &policy));

    // Over REST, with no trust block: 6 replicas, none on operator 1's node.
    let (s, v) = lab
        .call(
            0,
            "POST",
            "/api/v1/workloads",
            Some(&manifest("by-rest", 6, Value::Null)),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{v}");
    assert!(v["spec"].get("trust").is_none(), "stored as sent: {v}");
    let per_node = placed(&lab, "by-rest", 6).await;
    assert!(
        !per_node.contains_key(&ids[1]),
        "denied node used: {per_node:?}"
    );
    assert_eq!(
        per_node.len(),
        2,
        "the simple scheduler spreads: {per_node:?}"
    );

    // An agent, over MCP with a real MCP client, allowed to create workloads.
    let agent_policy = json!({"enabled": true, "autonomous": ["create_workload"]});
    let (s, v) = lab
        .call(0, "PUT", "/api/v1/agent/policy", Some(&agent_policy))
        .await
        .unwrap();
    assert_eq!(s, 200, "{v}");
    let now = Utc::now();
    let claims = TokenClaims::new(
        PublicKey(lab.key.verifying_key().to_bytes()),
        "bot",
        vec!["create_workload".to_owned()],
        now,
        now + chrono::Duration::hours(1),
    );
    let token = issue_token(&lab.key, &claims);
    let url = format!("{}/mcp", lab.hosts[0].api());
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.as_str()).auth_header(token.clone()),
    );
    let agent = ClientConfig::default()
        .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
        .await
        .unwrap();
    let create = |m: Value| {
        let arguments = json!({ "manifest": m }).as_object().cloned().unwrap();
        CallToolRequestParams::new("create_workload").with_arguments(arguments)
    };
    let answer = agent
        .call_tool(create(manifest("by-agent", 6, Value::Null)))
        .await
        .unwrap();
    assert_ne!(answer.is_error, Some(true), "{answer:?}");
    let per_node = placed(&lab, "by-agent", 6).await;
    assert!(
        !per_node.contains_key(&ids[1]),
        "denied node used: {per_node:?}"
    );

    // The agent's own trust block cannot widen the policy: allowing only the
    // denied operator leaves no node, and the reason says why.
    let loose = manifest("loose", 1, json!({"allowed_operators": [denied]}));
    let answer = agent.call_tool(create(loose)).await.unwrap();
    assert_ne!(answer.is_error, Some(true), "{answer:?}");
    unscheduled(&lab, "loose", "allow no operator in common").await;
    assert_eq!(running(&lab, "loose").await.unwrap().len(), 0);
    agent.cancel().await.unwrap();

    // Nor can the agent push a policy: that is the user's in person.
    let refused = lab
        .http
        .put(format!("{}/api/v1/trust/policy", lab.hosts[0].api()))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let (_, still) = lab
        .call(0, "GET", "/api/v1/trust/policy", None)
        .await
        .unwrap();
    assert_eq!(still, policy, "the refused push changed the policy");

    // A new policy reaches workloads created before it: allowing only
    // operator 1 (the daemon's answer to `ui policy trust` + push) places
    // `loose`, which asked for nothing else.
    let (s, v) = lab
        .call(
            0,
            "PUT",
            "/api/v1/trust/policy",
            Some(&json!({"allowed_operators": [denied]})),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{v}");
    let per_node = placed(&lab, "loose", 1).await;
    assert_eq!(per_node.keys().collect::<Vec<_>>(), vec![&ids[1]]);
    // ... and moves what runs on nodes it now excludes, replacement first.
    eventually(DEADLINE, "by-rest moved to operator 1's node", || async {
        running(&lab, "by-rest")
            .await
            .is_some_and(|p| p.get(&ids[1]) == Some(&6) && p.len() == 1)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 60)));

    // A policy that is not valid is refused and changes nothing.
    let bad = json!({"min_reputation": 2.0});
    let (s, v) = lab
        .call(0, "PUT", "/api/v1/trust/policy", Some(&bad))
        .await
        .unwrap();
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("min_reputation"), "{v}");
    let (_, kept) = lab
        .call(0, "GET", "/api/v1/trust/policy", None)
        .await
        .unwrap();
    assert_eq!(kept, json!({"allowed_operators": [denied]}));
}
