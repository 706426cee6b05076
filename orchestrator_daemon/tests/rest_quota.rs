//! Per-owner quotas over the REST API: a write above a quota is a 403 with
//! code `quota_exceeded` whose message names the quota, its limit and the
//! usage the write would make; nothing is stored. Admin keys are not exempt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rest_common;

use std::collections::HashSet;

use axum::http::StatusCode;
use orchestrator_core::api::quota::names;
use orchestrator_core::{OwnerQuotas, ReconcilerConfig};
use orchestrator_rest::AuthConfig;
use rest_common::{api_with, key, public, signed, signed_with, HELLO_YAML};

/// `examples/hello.yaml`: 3 replicas of 100m CPU and 32Mi requested.
const QUOTAS: OwnerQuotas = OwnerQuotas {
    max_workloads: 1,
    max_replicas: 4,
    max_cpu_millis: 400,
    max_memory_bytes: 128 << 20,
    max_volume_bytes: 1 << 40,
};

fn assert_quota_refusal(status: StatusCode, body: &serde_json::Value, quota: &str, parts: &[&str]) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(quota), "{message} should name {quota}");
    for part in parts {
        assert!(message.contains(part), "{message} should contain {part}");
    }
}

#[tokio::test]
async fn writes_above_a_quota_are_403_quota_exceeded_and_change_nothing() {
    let admin = key(2);
    let auth = AuthConfig {
        admin_keys: HashSet::from([public(&admin)]),
        ..AuthConfig::default()
    };
    let config = ReconcilerConfig {
        quotas: QUOTAS,
        ..ReconcilerConfig::for_test()
    };
    let api = api_with(auth, config).await;
    let alice = key(1);
    let post = |who, yaml: String| {
        signed_with(
            who,
            "POST",
            "/api/v1/workloads",
            yaml.as_bytes(),
            "application/yaml",
        )
    };
    let (status, body) = api.send(post(&alice, HELLO_YAML.to_owned())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = api.snapshot().await;

    // A second workload: the workload quota of 1.
    let second = HELLO_YAML.replace("name: hello", "name: second");
    let (status, body) = api.send(post(&alice, second.clone())).await;
    assert_quota_refusal(status, &body, names::WORKLOADS, &["2", "1"]);
    assert_eq!(
        api.snapshot().await,
        before,
        "a refused create stored something"
    );

    // Scaling to 5 replicas: the replica quota of 4.
    let (status, body) = api
        .send(signed(
            &alice,
            "POST",
            "/api/v1/workloads/hello/scale",
            br#"{"replicas":5}"#,
        ))
        .await;
    assert_quota_refusal(status, &body, names::REPLICAS, &["5", "4"]);
    assert_eq!(
        api.snapshot().await,
        before,
        "a refused scale stored something"
    );

    // 3 replicas of 200m: 600m of CPU, above 400m.
    let bigger = HELLO_YAML.replace("cpu: 100m", "cpu: 200m");
    let (status, body) = api.send(post(&alice, bigger)).await;
    assert_quota_refusal(status, &body, names::CPU, &["600", "400"]);
    // 3 replicas of 64Mi: 192Mi, above 128Mi.
    let bigger = HELLO_YAML.replace("memory: 32Mi", "memory: 64Mi");
    let (status, body) = api.send(post(&alice, bigger)).await;
    assert_quota_refusal(
        status,
        &body,
        names::MEMORY,
        &[&(192u64 << 20).to_string(), &(128u64 << 20).to_string()],
    );
    assert_eq!(
        api.snapshot().await,
        before,
        "a refused update stored something"
    );

    // An admin's own workloads count against the same quotas.
    let (status, body) = api.send(post(&admin, HELLO_YAML.to_owned())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = api.send(post(&admin, second)).await;
    assert_quota_refusal(status, &body, names::WORKLOADS, &["2", "1"]);
    api.cancel.cancel();
}
