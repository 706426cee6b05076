//! Authentication of the REST API (SPEC §11): every refusal answers the right
//! status and leaves the store exactly as it was.
#![allow(clippy::unwrap_used)]

mod rest_common;

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use orchestrator_rest::AuthConfig;
use orchestrator_shared_types::auth::{HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use rest_common::*;

const MANIFEST: &str =
    r#"{"name":"web","replicas":1,"containers":[{"name":"main","image":"example/app:1"}]}"#;

fn with_headers(
    method: &str,
    path: &str,
    body: &[u8],
    pk: &str,
    ts: &str,
    sig: &str,
) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header(HEADER_PUBLIC_KEY, pk)
        .header(HEADER_TIMESTAMP, ts)
        .header(HEADER_SIGNATURE, sig)
        .body(Body::from(body.to_vec()))
        .unwrap()
}

async fn refused(api: &Api, req: Request<Body>, want: StatusCode, what: &str) {
    let before = api.snapshot().await;
    let (status, body) = api.send(req).await;
    assert_eq!(status, want, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert_eq!(api.snapshot().await, before, "{what} changed the store");
}

#[tokio::test]
async fn unsigned_forged_altered_stale_and_replayed_requests_change_nothing() {
    let api = api(AuthConfig::default()).await;
    let alice = key(1);
    let mallory = key(2);
    let path = "/api/v1/workloads";
    let body = MANIFEST.as_bytes();

    // Missing headers.
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    refused(&api, req, StatusCode::UNAUTHORIZED, "missing headers").await;

    // Bad signature: Mallory signs, claims Alice's key.
    let h = sign(&mallory, "POST", path, body, Utc::now());
    let alice_pk = sign(&alice, "POST", path, body, Utc::now()).public_key;
    refused(
        &api,
        with_headers("POST", path, body, &alice_pk, &h.timestamp, &h.signature),
        StatusCode::UNAUTHORIZED,
        "forged signature",
    )
    .await;

    // Body changed after signing.
    let h = sign(&alice, "POST", path, body, Utc::now());
    let altered = MANIFEST.replace("\"replicas\":1", "\"replicas\":9");
    refused(
        &api,
        with_headers(
            "POST",
            path,
            altered.as_bytes(),
            &h.public_key,
            &h.timestamp,
            &h.signature,
        ),
        StatusCode::UNAUTHORIZED,
        "altered body",
    )
    .await;

    // Path or query changed after signing.
    let h = sign(&alice, "GET", "/api/v1/workloads?limit=1", b"", Utc::now());
    refused(
        &api,
        with_headers(
            "GET",
            "/api/v1/workloads?limit=2",
            b"",
            &h.public_key,
            &h.timestamp,
            &h.signature,
        ),
        StatusCode::UNAUTHORIZED,
        "altered query",
    )
    .await;
    let h = sign(&alice, "POST", path, body, Utc::now());
    refused(
        &api,
        with_headers(
            "POST",
            "/api/v1/workloads/x/scale",
            body,
            &h.public_key,
            &h.timestamp,
            &h.signature,
        ),
        StatusCode::UNAUTHORIZED,
        "altered path",
    )
    .await;

    // Timestamp outside the skew, both ways.
    for offset in [-120, 120] {
        let h = sign(
            &alice,
            "POST",
            path,
            body,
            Utc::now() + chrono::Duration::seconds(offset),
        );
        refused(
            &api,
            with_headers(
                "POST",
                path,
                body,
                &h.public_key,
                &h.timestamp,
                &h.signature,
            ),
            StatusCode::UNAUTHORIZED,
            "stale timestamp",
        )
        .await;
    }

    // The same signed request twice: the first acts, the replay does not.
    let h = sign(&alice, "POST", path, body, Utc::now());
    let (status, created) = api
        .send(with_headers(
            "POST",
            path,
            body,
            &h.public_key,
            &h.timestamp,
            &h.signature,
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    refused(
        &api,
        with_headers(
            "POST",
            path,
            body,
            &h.public_key,
            &h.timestamp,
            &h.signature,
        ),
        StatusCode::UNAUTHORIZED,
        "replay",
    )
    .await;

    // Malformed headers.
    refused(
        &api,
        with_headers(
            "POST",
            path,
            body,
            "not base64!",
            &h.timestamp,
            &h.signature,
        ),
        StatusCode::UNAUTHORIZED,
        "malformed key",
    )
    .await;
    api.cancel.cancel();
}

#[tokio::test]
async fn keys_off_the_trusted_list_are_refused() {
    let alice = key(1);
    let stranger = key(3);
    let auth = AuthConfig {
        trusted_keys: Some(HashSet::from([public(&alice)])),
        ..AuthConfig::default()
    };
    let api = api(auth).await;
    refused(
        &api,
        signed(&stranger, "POST", "/api/v1/workloads", MANIFEST.as_bytes()),
        StatusCode::FORBIDDEN,
        "untrusted key",
    )
    .await;
    let (status, _) = api
        .send(signed(
            &alice,
            "POST",
            "/api/v1/workloads",
            MANIFEST.as_bytes(),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    api.cancel.cancel();
}

#[tokio::test]
async fn only_the_owner_or_an_admin_may_touch_a_workload() {
    let alice = key(1);
    let bob = key(2);
    let admin = key(4);
    let auth = AuthConfig {
        admin_keys: HashSet::from([public(&admin)]),
        ..AuthConfig::default()
    };
    let api = api(auth).await;
    let (status, w) = api
        .send(signed(
            &alice,
            "POST",
            "/api/v1/workloads",
            MANIFEST.as_bytes(),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = w["id"].as_str().unwrap().to_owned();

    for (method, path, body) in [
        ("DELETE", format!("/api/v1/workloads/{id}"), String::new()),
        (
            "POST",
            format!("/api/v1/workloads/{id}/scale"),
            r#"{"replicas":5}"#.to_owned(),
        ),
        (
            "PUT",
            format!("/api/v1/workloads/{id}"),
            MANIFEST.to_owned(),
        ),
        ("GET", format!("/api/v1/workloads/{id}"), String::new()),
    ] {
        refused(
            &api,
            signed(&bob, method, &path, body.as_bytes()),
            StatusCode::FORBIDDEN,
            &format!("bob {method} {path}"),
        )
        .await;
    }
    // By name, Bob only sees his own (none).
    refused(
        &api,
        signed(&bob, "DELETE", "/api/v1/workloads/web", b""),
        StatusCode::NOT_FOUND,
        "bob by name",
    )
    .await;
    let (_, list) = api
        .send(signed(&bob, "GET", "/api/v1/workloads", b""))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    // An admin may.
    let (status, scaled) = api
        .send(signed(
            &admin,
            "POST",
            &format!("/api/v1/workloads/{id}/scale"),
            br#"{"replicas":2}"#,
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{scaled}");
    assert_eq!(scaled["spec"]["replicas"], 2);
    api.cancel.cancel();
}
