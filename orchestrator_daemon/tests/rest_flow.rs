//! The REST API end to end over the router: apply (JSON and YAML), list with
//! paging, get, scale, instances, logs, delete, errors that name the field,
//! metrics that move, and the WebSocket event stream of a deploy.
#![allow(clippy::unwrap_used)]

mod rest_common;

use std::time::Duration;

use axum::http::StatusCode;
use futures::{SinkExt, StreamExt};
use orchestrator_rest::AuthConfig;
use orchestrator_shared_types::auth::{HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use rest_common::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn wait_running(
    api: &Api,
    alice: &ed25519_dalek::SigningKey,
    name: &str,
    n: u64,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, w) = api
            .send(signed(
                alice,
                "GET",
                &format!("/api/v1/workloads/{name}"),
                b"",
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{w}");
        if w["status"]["running"] == n && w["status"]["desired"] == n {
            return w;
        }
        if tokio::time::Instant::now() >= deadline {
            let id = w["id"].as_str().unwrap().parse().unwrap();
            let inst = api.orch.list_instances(&id).await.unwrap();
            let statuses: Vec<_> = inst.iter().map(|i| i.status).collect();
            panic!("{name} never ran {n}: {w}; store has {statuses:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_goes_through_its_whole_life_over_the_api() {
    let api = api(AuthConfig::default()).await;
    let alice = key(1);

    // YAML create, then the same again is an update.
    let req = signed_with(
        &alice,
        "POST",
        "/api/v1/workloads",
        HELLO_YAML.as_bytes(),
        "application/yaml",
    );
    let (status, w) = api.send(req).await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    assert_eq!(w["spec"]["name"], "hello");
    assert!(w["id"].as_str().is_some());
    let req = signed_with(
        &alice,
        "POST",
        "/api/v1/workloads",
        HELLO_YAML.as_bytes(),
        "application/yaml",
    );
    assert_eq!(api.send(req).await.0, StatusCode::OK);
    wait_running(&api, &alice, "hello", 3).await;

    // Scale, instances, logs.
    let (status, w) = api
        .send(signed(
            &alice,
            "POST",
            "/api/v1/workloads/hello/scale",
            br#"{"replicas":5}"#,
        ))
        .await;
    assert_eq!(
        (status, w["spec"]["replicas"].as_u64()),
        (StatusCode::OK, Some(5))
    );
    wait_running(&api, &alice, "hello", 5).await;
    // Each node's share of what the instances request (5 × 100m, 32Mi).
    let (_, cluster) = api
        .send(signed(&alice, "GET", "/api/v1/cluster/status", b""))
        .await;
    let requested: Vec<&serde_json::Value> = cluster["requested"]
        .as_object()
        .map(|m| m.values().collect())
        .unwrap_or_default();
    let sum = |field: &str| -> u64 { requested.iter().filter_map(|r| r[field].as_u64()).sum() };
    assert_eq!(
        (sum("cpu_millis"), sum("memory_bytes")),
        (500, 5 * (32 << 20)),
        "{cluster}"
    );
    let (_, page) = api
        .send(signed(
            &alice,
            "GET",
            "/api/v1/workloads/hello/instances?limit=2",
            b"",
        ))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = api
        .send(signed(
            &alice,
            "GET",
            &format!("/api/v1/workloads/hello/instances?limit=10&cursor={cursor}"),
            b"",
        ))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    assert!(rest["next_cursor"].is_null());
    let (status, logs) = api
        .send(signed(
            &alice,
            "GET",
            "/api/v1/workloads/hello/logs?tail=5",
            b"",
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = logs.as_str().unwrap();
    assert_eq!(
        text.lines().count(),
        5,
        "one start line per container: {text}"
    );
    let entry: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(
        entry["line"].as_str().unwrap().contains("started main"),
        "{entry}"
    );

    // Delete.
    let (status, _) = api
        .send(signed(&alice, "DELETE", "/api/v1/workloads/hello", b""))
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.runtime.running_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "containers of a deleted workload keep running"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, list) = api
        .send(signed(&alice, "GET", "/api/v1/workloads", b""))
        .await;
    assert_eq!(
        (status, list["items"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    assert_eq!(
        api.send(signed(&alice, "GET", "/api/v1/workloads/hello", b""))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    api.cancel.cancel();
}

#[tokio::test]
async fn lists_page_with_a_cursor() {
    let api = api(AuthConfig::default()).await;
    let alice = key(1);
    for i in 0..7 {
        let m = format!(
            r#"{{"name":"w{i}","replicas":0,"containers":[{{"name":"c","image":"x:1"}}]}}"#
        );
        assert_eq!(
            api.send(signed(&alice, "POST", "/api/v1/workloads", m.as_bytes()))
                .await
                .0,
            StatusCode::CREATED
        );
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/workloads?limit=3".to_owned();
    loop {
        let (status, page) = api.send(signed(&alice, "GET", &path, b"")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["spec"]["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/workloads?limit=3&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, (0..7).map(|i| format!("w{i}")).collect::<Vec<_>>());
    for bad in ["limit=0", "limit=5000", "limit=abc"] {
        let (status, body) = api
            .send(signed(
                &alice,
                "GET",
                &format!("/api/v1/workloads?{bad}"),
                b"",
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    api.cancel.cancel();
}

#[tokio::test]
async fn bad_input_gets_a_400_that_names_the_field_and_changes_nothing() {
    let api = api(AuthConfig::default()).await;
    let alice = key(1);
    let before = api.snapshot().await;
    let bad_yaml = HELLO_YAML.replace("memory: 64Mi", "memory: 64Mo");
    let (status, body) = api
        .send(signed_with(
            &alice,
            "POST",
            "/api/v1/workloads",
            bad_yaml.as_bytes(),
            "application/yaml",
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("containers[0].resources.limits.memory"),
        "{msg}"
    );
    for (ct, b) in [
        ("application/json", "{not json".as_bytes()),
        (
            "application/json",
            br#"{"name":"x","replicas":-1,"containers":[]}"#.as_slice(),
        ),
        ("application/json", b"\xff\xfe".as_slice()),
    ] {
        let (status, body) = api
            .send(signed_with(&alice, "POST", "/api/v1/workloads", b, ct))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, _) = api
        .send(signed_with(
            &alice,
            "POST",
            "/api/v1/workloads",
            b"name: x",
            "text/plain",
        ))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = api
        .send(signed(
            &alice,
            "POST",
            "/api/v1/workloads/nope/scale",
            br#"{"replicas":1}"#,
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = api
        .send(signed(&alice, "GET", "/api/v1/nodes/zz", b""))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(api.snapshot().await, before);
    // Too large a body.
    let huge = vec![b' '; 2 << 20];
    assert_eq!(
        api.send(signed(&alice, "POST", "/api/v1/workloads", &huge))
            .await
            .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    api.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_when_a_workload_is_deployed_and_pass_promtool() {
    let api = api(AuthConfig::default()).await;
    let alice = key(1);
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    api.orch.refresh_gauges().await.unwrap();
    let before = api.metrics.encode().unwrap();
    assert_eq!(metric(&before, "orchestrator_workloads"), 0.0);
    let req = signed_with(
        &alice,
        "POST",
        "/api/v1/workloads",
        HELLO_YAML.as_bytes(),
        "application/yaml",
    );
    assert_eq!(api.send(req).await.0, StatusCode::CREATED);
    wait_running(&api, &alice, "hello", 3).await;
    api.orch.refresh_gauges().await.unwrap();
    let after = api.metrics.encode().unwrap();
    assert_eq!(metric(&after, "orchestrator_workloads"), 1.0);
    assert_eq!(metric(&after, "orchestrator_instances"), 3.0);
    assert_eq!(metric(&after, "orchestrator_schedule_successes_total"), 3.0);
    // Allocatable is what the nodes can still take: 16 cores minus 3 × 100m.
    assert_eq!(
        metric(&before, "orchestrator_cluster_allocatable_cpu_cores"),
        16.0
    );
    assert!((metric(&after, "orchestrator_cluster_allocatable_cpu_cores") - 15.7).abs() < 1e-9);
    assert!(metric(&after, "orchestrator_reconciliation_cycles_total") >= 1.0);

    // The exposition served at /metrics passes promtool.
    let (status, served) = api
        .send(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let served = served.as_str().unwrap().to_owned();
    assert!(served.contains("orchestrator_http_requests_total"));
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(served.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
                "promtool: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is required in CI: {e}"
            );
            eprintln!(
                "SKIPPED promtool check: promtool not on PATH ({e}); ./scripts/test installs it"
            );
        }
    }
    api.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_shows_a_deploy_in_order() {
    let api = api(AuthConfig::default()).await;
    let alice = key(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = api.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });

    // An unsigned upgrade is refused.
    let err = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    let h = sign(&alice, "GET", "/api/v1/events", b"", chrono::Utc::now());
    let mut req = format!("ws://{addr}/api/v1/events")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert(HEADER_PUBLIC_KEY, h.public_key.parse().unwrap());
    req.headers_mut()
        .insert(HEADER_TIMESTAMP, h.timestamp.parse().unwrap());
    req.headers_mut()
        .insert(HEADER_SIGNATURE, h.signature.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        r#"{"type":"subscribe","topics":["workloads","instances"]}"#,
    ))
    .await
    .unwrap();

    let mut kinds = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut deployed = false;
    while kinds
        .iter()
        .filter(|k: &&String| k.as_str() == "instances.started")
        .count()
        < 3
    {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("events keep coming")
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let kind = v["type"].as_str().unwrap().to_owned();
        if kind == "subscribed" && !deployed {
            deployed = true;
            let req = signed_with(
                &alice,
                "POST",
                "/api/v1/workloads",
                HELLO_YAML.as_bytes(),
                "application/yaml",
            );
            assert_eq!(api.send(req).await.0, StatusCode::CREATED);
            continue;
        }
        assert!(v["timestamp"].as_str().is_some(), "{v}");
        if kind != "workloads.reconciled" {
            kinds.push(kind);
        }
    }
    assert_eq!(
        kinds,
        [
            "workloads.applied",
            "instances.started",
            "instances.started",
            "instances.started"
        ]
    );
    api.cancel.cancel();
}
