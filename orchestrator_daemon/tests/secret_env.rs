//! A manifest whose `secret_env` names a secret its owner has not set gets a
//! 400 naming the secret, on create (POST) and on update (PUT), and nothing
//! is stored — never a workload that starts without its variables. Once the
//! owner sets it, the same manifest is accepted; another user's secret of
//! that name does not count.
#![allow(clippy::unwrap_used)]

mod rest_common;

use axum::http::StatusCode;
use orchestrator_rest::AuthConfig;
use rest_common::*;

/// The reference manifest with one `secret_env` entry on its container.
fn with_secret_env() -> String {
    let yaml = HELLO_YAML.replace(
        "    env: {GREETING: hi}\n",
        "    env: {GREETING: hi}\n    secret_env: [{name: DB_PASSWORD, secret: db-password}]\n",
    );
    assert_ne!(yaml, HELLO_YAML, "examples/hello.yaml changed shape");
    yaml
}

/// `who` posts the manifest `yaml`.
async fn post_yaml(
    api: &Api,
    who: &ed25519_dalek::SigningKey,
    yaml: &str,
) -> (StatusCode, serde_json::Value) {
    api.send(signed_with(
        who,
        "POST",
        "/api/v1/workloads",
        yaml.as_bytes(),
        "application/yaml",
    ))
    .await
}

fn assert_refused(status: StatusCode, body: &serde_json::Value) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("names secret \"db-password\", which does not exist"),
        "the message must name the secret: {msg}"
    );
}

#[tokio::test]
async fn creating_a_workload_with_secret_env_is_refused_and_stores_nothing() {
    let api = api(AuthConfig::default()).await;
    let alice = key(1);
    let before = api.snapshot().await;

    let yaml = with_secret_env();
    let (status, body) = post_yaml(&api, &alice, &yaml).await;
    assert_refused(status, &body);

    let json = serde_json::json!({
        "name": "hello",
        "containers": [{
            "name": "main",
            "image": "busybox",
            "secret_env": [{"name": "DB_PASSWORD", "secret": "db-password"}],
        }],
    });
    let (status, body) = api
        .send(signed(
            &alice,
            "POST",
            "/api/v1/workloads",
            json.to_string().as_bytes(),
        ))
        .await;
    assert_refused(status, &body);

    assert_eq!(
        api.snapshot().await,
        before,
        "a refused manifest was stored"
    );
    assert!(api.store.list_workloads().await.unwrap().is_empty());

    // Bob's secret of that name is not Alice's.
    let bob = key(2);
    set_secret(&api, &bob).await;
    let (status, body) = post_yaml(&api, &alice, &yaml).await;
    assert_refused(status, &body);

    // Set by Alice, it is accepted.
    set_secret(&api, &alice).await;
    let (status, body) = post_yaml(&api, &alice, &yaml).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["spec"]["containers"][0]["secret_env"][0]["secret"], "db-password",
        "{body}"
    );
    api.cancel.cancel();
}

/// `who` sets the secret `db-password`, sealed to their own key.
async fn set_secret(api: &Api, who: &ed25519_dalek::SigningKey) {
    let me = orchestrator_shared_types::PublicKey(who.verifying_key().to_bytes());
    let sealed = orchestrator_secrets::seal(b"s3cret", &[me]).unwrap();
    let body = serde_json::json!({"recipients": [me.to_string()], "sealed": sealed});
    let (status, reply) = api
        .send(signed(
            who,
            "PUT",
            "/api/v1/secrets/db-password",
            body.to_string().as_bytes(),
        ))
        .await;
    assert!(status.is_success(), "{reply}");
}

#[tokio::test]
async fn updating_a_workload_to_add_secret_env_is_refused_and_keeps_the_old_spec() {
    let api = api(AuthConfig::default()).await;
    let alice = key(1);
    let (status, created) = post_yaml(&api, &alice, HELLO_YAML).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id: orchestrator_shared_types::WorkloadId =
        created["id"].as_str().unwrap().parse().unwrap();
    let stored = api.store.get_workload(&id).await.unwrap().unwrap();

    let yaml = with_secret_env();
    for path in [
        format!("/api/v1/workloads/{id}"),
        "/api/v1/workloads/hello".to_owned(),
    ] {
        let (status, body) = api
            .send(signed_with(
                &alice,
                "PUT",
                &path,
                yaml.as_bytes(),
                "application/yaml",
            ))
            .await;
        assert_refused(status, &body);
    }
    // POST of the same name is an update too.
    let (status, body) = post_yaml(&api, &alice, &yaml).await;
    assert_refused(status, &body);

    let after = api.store.get_workload(&id).await.unwrap().unwrap();
    assert_eq!(
        after, stored,
        "a refused update changed the stored workload"
    );
    assert!(after.spec.containers[0].secret_env.is_empty());
    api.cancel.cancel();
}
