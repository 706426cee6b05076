//! The `/metrics` exposition: every metric touched, checked by `promtool`,
//! and the HTTP middleware's labels.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use observability::{track_http, Metrics};
use tower::ServiceExt as _;

/// Touches every metric so each one has at least one sample.
fn touched_metrics() -> Metrics {
    let m = Metrics::new().expect("metrics");
    m.containers.set(3);
    m.container_creation_errors.inc();
    m.container_run_duration.observe(0.42);
    m.container_create_duration.observe(0.05);
    m.workloads.set(2);
    m.instances.set(5);
    m.set_instances_by_status([("Running", 4), ("Pending", 1)]);
    m.nodes.set(3);
    m.nodes_ready.set(2);
    m.cluster_capacity_cpu_cores.set(12.0);
    m.cluster_capacity_memory_bytes.set(32 << 30);
    m.cluster_allocatable_cpu_cores.set(7.5);
    m.cluster_allocatable_memory_bytes.set(20 << 30);
    m.schedule_attempts.inc_by(6);
    m.schedule_successes.inc_by(5);
    m.schedule_failures.inc();
    m.reconciliation_cycles.inc_by(10);
    m.reconciliation_duration.observe(0.003);
    m.reconciliation_errors.inc();
    m.observe_http(
        "GET",
        "/api/v1/workloads/{ref}",
        200,
        Duration::from_millis(4),
    );
    m
}

#[test]
fn every_metric_has_help_type_and_a_sample() {
    let text = touched_metrics().encode().expect("encode");
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(families.len(), 26, "{text}");
    for name in families {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
        assert!(
            text.lines()
                .any(|l| !l.starts_with('#') && l.starts_with(name)),
            "{name} has no sample"
        );
    }
    assert!(text.contains(
        "orchestrator_http_requests_total{method=\"GET\",route=\"/api/v1/workloads/{ref}\",status=\"200\"} 1"
    ));
}

#[test]
fn exposition_passes_promtool() {
    let text = touched_metrics().encode().expect("encode");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is not on PATH in CI (apt-get install prometheus)"
            );
            println!(
                "SKIPPED exposition_passes_promtool: promtool not on PATH \
                 (apt-get install prometheus); CI runs it"
            );
            return;
        }
        Err(error) => panic!("running promtool: {error}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let output = child.wait_with_output().expect("waiting for promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool failed:\n{report}\n{text}"
    );
    assert!(report.trim().is_empty(), "promtool lint:\n{report}");
}

#[tokio::test]
async fn middleware_labels_by_route_template() {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let app = Router::new()
        .route("/api/v1/workloads/{id}", get(|| async { "w" }))
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            track_http,
        ));
    for uri in ["/api/v1/workloads/a", "/api/v1/workloads/b", "/nope"] {
        app.clone()
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("response");
    }
    let response = app
        .oneshot(
            Request::post("/api/v1/workloads/a")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let text = metrics.encode().expect("encode");
    for line in [
        "orchestrator_http_requests_total{method=\"GET\",route=\"/api/v1/workloads/{id}\",status=\"200\"} 2",
        "orchestrator_http_requests_total{method=\"POST\",route=\"/api/v1/workloads/{id}\",status=\"405\"} 1",
        "orchestrator_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "orchestrator_http_request_duration_seconds_count{route=\"/api/v1/workloads/{id}\"} 3",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}
