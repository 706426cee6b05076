//! Tests of the metrics registry and its exposition.
use super::*;
use prometheus::Encoder as _;

/// The seed names of SPEC §14, each of which must be the stem of an exposed name.
const SPEC_SEEDS: &[&str] = &[
    "containers_total",
    "container_creation_errors",
    "container_run_duration",
    "workloads_total",
    "instances_total",
    "instances_by_status",
    "nodes_total",
    "nodes_ready",
    "cluster_capacity_cpu",
    "cluster_allocatable_cpu",
    "cluster_allocatable_memory",
    "schedule_attempts",
    "schedule_successes",
    "schedule_failures",
    "reconciliation_cycles",
    "reconciliation_duration",
    "reconciliation_errors",
];

#[test]
fn every_spec_seed_is_exposed_with_help() {
    let metrics = Metrics::new().unwrap();
    metrics.set_instances_by_status([("Running", 2)]);
    metrics.observe_http("GET", "/health", 200, Duration::from_millis(3));
    let text = metrics.encode().unwrap();
    for seed in SPEC_SEEDS {
        let stem = seed.strip_suffix("_total").unwrap_or(seed);
        let prefix = format!("# HELP orchestrator_{stem}");
        assert!(
            text.lines().any(|l| l.starts_with(&prefix)),
            "no metric with stem {stem} in\n{text}"
        );
    }
}

#[test]
fn counters_end_in_total_and_others_do_not() {
    let metrics = Metrics::new().unwrap();
    metrics.set_instances_by_status([("Running", 1)]);
    metrics.observe_http("GET", "/", 200, Duration::ZERO);
    let text = metrics.encode().unwrap();
    let mut seen = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        assert!(name.starts_with("orchestrator_"), "{name}");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} is a {kind}"
        );
        seen += 1;
    }
    assert_eq!(seen, 26);
}

#[test]
fn instances_by_status_drops_stale_series() {
    let metrics = Metrics::new().unwrap();
    metrics.set_instances_by_status([("Running", 2), ("Pending", 1)]);
    metrics.set_instances_by_status([("Running", 3)]);
    let text = metrics.encode().unwrap();
    assert!(text.contains("orchestrator_instances_by_status{status=\"Running\"} 3"));
    assert!(!text.contains("status=\"Pending\""));
}

#[test]
fn content_type_is_text_0_0_4() {
    assert_eq!(TEXT_CONTENT_TYPE, "text/plain; version=0.0.4");
    assert_eq!(TextEncoder::new().format_type(), TEXT_CONTENT_TYPE);
}
