//! Prometheus metrics of the orchestrator (SPEC §14).
//!
//! [`Metrics`] owns a [`prometheus::Registry`] and every metric as a public
//! field, so other crates update them directly
//! (`metrics.schedule_attempts.inc()`), and [`Metrics::encode`] renders the
//! registry in the text format 0.0.4 served at `/metrics`.
//!
//! SPEC §14 lists seed names; the exposed names follow the Prometheus naming
//! rules that `promtool check metrics` enforces: counters end in `_total`,
//! other metrics must not, and values carry their base unit (`_seconds`,
//! `_bytes`, `_cores`). Every name keeps the seed name as its stem (with the
//! seed's `_total` dropped from gauges):
//!
//! | SPEC §14 name                | exposed name                                      | type      |
//! |------------------------------|---------------------------------------------------|-----------|
//! | `containers_total`           | `orchestrator_containers`                         | gauge     |
//! | `container_creation_errors`  | `orchestrator_container_creation_errors_total`    | counter   |
//! | `container_run_duration`     | `orchestrator_container_run_duration_seconds`     | histogram |
//! | —                            | `orchestrator_container_create_duration_seconds`  | histogram |
//! | `workloads_total`            | `orchestrator_workloads`                          | gauge     |
//! | `instances_total`            | `orchestrator_instances`                          | gauge     |
//! | `instances_by_status`        | `orchestrator_instances_by_status{status}`        | gauge     |
//! | `nodes_total`                | `orchestrator_nodes`                              | gauge     |
//! | `nodes_ready`                | `orchestrator_nodes_ready`                        | gauge     |
//! | `cluster_capacity_cpu`       | `orchestrator_cluster_capacity_cpu_cores`         | gauge     |
//! | —                            | `orchestrator_cluster_capacity_memory_bytes`      | gauge     |
//! | `cluster_allocatable_cpu`    | `orchestrator_cluster_allocatable_cpu_cores`      | gauge     |
//! | `cluster_allocatable_memory` | `orchestrator_cluster_allocatable_memory_bytes`   | gauge     |
//! | `schedule_attempts`          | `orchestrator_schedule_attempts_total`            | counter   |
//! | `schedule_successes`         | `orchestrator_schedule_successes_total`           | counter   |
//! | `schedule_failures`          | `orchestrator_schedule_failures_total`            | counter   |
//! | `reconciliation_cycles`      | `orchestrator_reconciliation_cycles_total`        | counter   |
//! | `reconciliation_duration`    | `orchestrator_reconciliation_duration_seconds`    | histogram |
//! | `reconciliation_errors`      | `orchestrator_reconciliation_errors_total`        | counter   |
//! | —                            | `orchestrator_containers_cpu_usage_seconds`       | gauge     |
//! | —                            | `orchestrator_containers_memory_usage_bytes`      | gauge     |
//! | —                            | `orchestrator_network_decentralization`           | gauge     |
//! | —                            | `orchestrator_network_bootstrap_ratio`            | gauge     |
//! | —                            | `orchestrator_network_operator_diversity`         | gauge     |
//! | —                            | `orchestrator_http_requests_total{method,route,status}` | counter |
//! | —                            | `orchestrator_http_request_duration_seconds{route}` | histogram |
//! | —                            | `orchestrator_api_auth_refused_total{reason}`     | counter   |
//!
//! The HTTP metrics are filled by the [`track_http`](crate::track_http)
//! middleware.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::error::{Error, Result};

/// Content type of [`Metrics::encode`]'s output: `text/plain; version=0.0.4`.
pub const TEXT_CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Buckets (seconds) for creating and starting a container, image pulls included.
const CONTAINER_CREATE_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Buckets (seconds) for how long a container ran: from a crash at start to
/// a service that ran for a week.
const CONTAINER_RUN_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10_800.0, 21_600.0,
    43_200.0, 86_400.0, 604_800.0,
];

/// Buckets (seconds) for one reconciliation of one workload.
const RECONCILIATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets (seconds) for answering one HTTP request.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric of the orchestrator, registered in one registry.
///
/// Create it once, share it as `Arc<Metrics>`, and update the fields
/// directly; all of them are cheap, lock-free and thread-safe.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Containers the runtime currently runs (`orchestrator_containers`).
    pub containers: IntGauge,
    /// Containers the runtime failed to create
    /// (`orchestrator_container_creation_errors_total`).
    pub container_creation_errors: IntCounter,
    /// How long a container ran, from its start to its exit, observed when
    /// the runtime reports the exit
    /// (`orchestrator_container_run_duration_seconds`).
    pub container_run_duration: Histogram,
    /// Time taken to create and start a container, image pull included
    /// (`orchestrator_container_create_duration_seconds`).
    pub container_create_duration: Histogram,
    /// Workloads stored (`orchestrator_workloads`).
    pub workloads: IntGauge,
    /// Workload instances known (`orchestrator_instances`).
    pub instances: IntGauge,
    /// Workload instances by status, label `status`
    /// (`orchestrator_instances_by_status`); see [`Metrics::set_instances_by_status`].
    pub instances_by_status: IntGaugeVec,
    /// Nodes known to the cluster (`orchestrator_nodes`).
    pub nodes: IntGauge,
    /// Nodes that are ready (`orchestrator_nodes_ready`).
    pub nodes_ready: IntGauge,
    /// Total CPU of the cluster in cores (`orchestrator_cluster_capacity_cpu_cores`).
    pub cluster_capacity_cpu_cores: Gauge,
    /// Total memory of the cluster in bytes (`orchestrator_cluster_capacity_memory_bytes`).
    pub cluster_capacity_memory_bytes: IntGauge,
    /// CPU still free for workloads, in cores
    /// (`orchestrator_cluster_allocatable_cpu_cores`).
    pub cluster_allocatable_cpu_cores: Gauge,
    /// Memory still free for workloads, in bytes
    /// (`orchestrator_cluster_allocatable_memory_bytes`).
    pub cluster_allocatable_memory_bytes: IntGauge,
    /// CPU time used by the running containers of this node, from their
    /// cgroups (`orchestrator_containers_cpu_usage_seconds`; a gauge, as the
    /// sum drops when containers go).
    pub containers_cpu_usage_seconds: Gauge,
    /// Memory used by the running containers of this node
    /// (`orchestrator_containers_memory_usage_bytes`).
    pub containers_memory_usage_bytes: IntGauge,
    /// `1 − largest operator's share of the nodes` (`orchestrator_network_decentralization`).
    pub network_decentralization: Gauge,
    /// Share of nodes younger than 30 days (`orchestrator_network_bootstrap_ratio`).
    pub network_bootstrap_ratio: Gauge,
    /// Distinct operators per node (`orchestrator_network_operator_diversity`).
    pub network_operator_diversity: Gauge,
    /// Placements attempted (`orchestrator_schedule_attempts_total`).
    pub schedule_attempts: IntCounter,
    /// Placements that found a node (`orchestrator_schedule_successes_total`).
    pub schedule_successes: IntCounter,
    /// Placements that found no node (`orchestrator_schedule_failures_total`).
    pub schedule_failures: IntCounter,
    /// Reconciliations run (`orchestrator_reconciliation_cycles_total`).
    pub reconciliation_cycles: IntCounter,
    /// Time one reconciliation took (`orchestrator_reconciliation_duration_seconds`).
    pub reconciliation_duration: Histogram,
    /// Reconciliations that ended in an error (`orchestrator_reconciliation_errors_total`).
    pub reconciliation_errors: IntCounter,
    /// HTTP requests answered, labels `method`, `route`, `status`
    /// (`orchestrator_http_requests_total`).
    pub http_requests: IntCounterVec,
    /// Time taken to answer HTTP requests, label `route`
    /// (`orchestrator_http_request_duration_seconds`).
    pub http_request_duration: HistogramVec,
    /// API requests refused before their caller was authenticated (unsigned,
    /// forged, replayed, for another audience, a bad or revoked agent
    /// token), label `reason` (`orchestrator_api_auth_refused_total`). These
    /// are not written to the audit log, which records only authenticated
    /// callers.
    pub auth_refused: IntCounterVec,
}

impl Metrics {
    /// Creates every metric and registers it in a fresh registry.
    ///
    /// Fails only if a metric definition is invalid, which the tests rule out.
    pub fn new() -> Result<Self> {
        let registry = Registry::new();
        let r = &registry;
        Ok(Self {
            containers: register(
                r,
                "orchestrator_containers",
                IntGauge::new(
                    "orchestrator_containers",
                    "Containers the container runtime currently runs.",
                ),
            )?,
            container_creation_errors: register(
                r,
                "orchestrator_container_creation_errors_total",
                IntCounter::new(
                    "orchestrator_container_creation_errors_total",
                    "Containers the container runtime failed to create or start.",
                ),
            )?,
            container_run_duration: register(
                r,
                "orchestrator_container_run_duration_seconds",
                Histogram::with_opts(
                    HistogramOpts::new(
                        "orchestrator_container_run_duration_seconds",
                        "How long containers ran, from start to exit.",
                    )
                    .buckets(CONTAINER_RUN_BUCKETS.to_vec()),
                ),
            )?,
            container_create_duration: register(
                r,
                "orchestrator_container_create_duration_seconds",
                Histogram::with_opts(
                    HistogramOpts::new(
                        "orchestrator_container_create_duration_seconds",
                        "Time taken to create and start a container, image pull included.",
                    )
                    .buckets(CONTAINER_CREATE_BUCKETS.to_vec()),
                ),
            )?,
            workloads: register(
                r,
                "orchestrator_workloads",
                IntGauge::new("orchestrator_workloads", "Workloads in the state store."),
            )?,
            instances: register(
                r,
                "orchestrator_instances",
                IntGauge::new(
                    "orchestrator_instances",
                    "Workload instances in the state store, whatever their status.",
                ),
            )?,
            instances_by_status: register(
                r,
                "orchestrator_instances_by_status",
                IntGaugeVec::new(
                    Opts::new(
                        "orchestrator_instances_by_status",
                        "Workload instances in the state store by status.",
                    ),
                    &["status"],
                ),
            )?,
            nodes: register(
                r,
                "orchestrator_nodes",
                IntGauge::new("orchestrator_nodes", "Nodes known to the cluster."),
            )?,
            nodes_ready: register(
                r,
                "orchestrator_nodes_ready",
                IntGauge::new(
                    "orchestrator_nodes_ready",
                    "Nodes that are ready to run workloads.",
                ),
            )?,
            cluster_capacity_cpu_cores: register(
                r,
                "orchestrator_cluster_capacity_cpu_cores",
                Gauge::new(
                    "orchestrator_cluster_capacity_cpu_cores",
                    "CPU of all ready nodes together, in cores.",
                ),
            )?,
            cluster_capacity_memory_bytes: register(
                r,
                "orchestrator_cluster_capacity_memory_bytes",
                IntGauge::new(
                    "orchestrator_cluster_capacity_memory_bytes",
                    "Memory of all ready nodes together, in bytes.",
                ),
            )?,
            cluster_allocatable_cpu_cores: register(
                r,
                "orchestrator_cluster_allocatable_cpu_cores",
                Gauge::new(
                    "orchestrator_cluster_allocatable_cpu_cores",
                    "CPU of all ready nodes not yet reserved by workloads, in cores.",
                ),
            )?,
            cluster_allocatable_memory_bytes: register(
                r,
                "orchestrator_cluster_allocatable_memory_bytes",
                IntGauge::new(
                    "orchestrator_cluster_allocatable_memory_bytes",
                    "Memory of all ready nodes not yet reserved by workloads, in bytes.",
                ),
            )?,
            containers_cpu_usage_seconds: register(
                r,
                "orchestrator_containers_cpu_usage_seconds",
                Gauge::new(
                    "orchestrator_containers_cpu_usage_seconds",
                    "CPU time used by the running containers of this node, in seconds.",
                ),
            )?,
            containers_memory_usage_bytes: register(
                r,
                "orchestrator_containers_memory_usage_bytes",
                IntGauge::new(
                    "orchestrator_containers_memory_usage_bytes",
                    "Memory used by the running containers of this node, in bytes.",
                ),
            )?,
            network_decentralization: register(
                r,
                "orchestrator_network_decentralization",
                Gauge::new(
                    "orchestrator_network_decentralization",
                    "1 minus the largest operator's share of the nodes (0: one operator runs everything).",
                ),
            )?,
            network_bootstrap_ratio: register(
                r,
                "orchestrator_network_bootstrap_ratio",
                Gauge::new(
                    "orchestrator_network_bootstrap_ratio",
                    "Share of the nodes that joined less than 30 days ago.",
                ),
            )?,
            network_operator_diversity: register(
                r,
                "orchestrator_network_operator_diversity",
                Gauge::new(
                    "orchestrator_network_operator_diversity",
                    "Distinct operators divided by nodes (1: every node has its own operator).",
                ),
            )?,
            schedule_attempts: register(
                r,
                "orchestrator_schedule_attempts_total",
                IntCounter::new(
                    "orchestrator_schedule_attempts_total",
                    "Attempts to place a workload instance on a node.",
                ),
            )?,
            schedule_successes: register(
                r,
                "orchestrator_schedule_successes_total",
                IntCounter::new(
                    "orchestrator_schedule_successes_total",
                    "Placement attempts that found a node.",
                ),
            )?,
            schedule_failures: register(
                r,
                "orchestrator_schedule_failures_total",
                IntCounter::new(
                    "orchestrator_schedule_failures_total",
                    "Placement attempts that found no suitable node.",
                ),
            )?,
            reconciliation_cycles: register(
                r,
                "orchestrator_reconciliation_cycles_total",
                IntCounter::new(
                    "orchestrator_reconciliation_cycles_total",
                    "Reconciliations of a workload run by the reconciler.",
                ),
            )?,
            reconciliation_duration: register(
                r,
                "orchestrator_reconciliation_duration_seconds",
                Histogram::with_opts(
                    HistogramOpts::new(
                        "orchestrator_reconciliation_duration_seconds",
                        "Time taken by one reconciliation of a workload.",
                    )
                    .buckets(RECONCILIATION_BUCKETS.to_vec()),
                ),
            )?,
            reconciliation_errors: register(
                r,
                "orchestrator_reconciliation_errors_total",
                IntCounter::new(
                    "orchestrator_reconciliation_errors_total",
                    "Reconciliations of a workload that ended in an error.",
                ),
            )?,
            http_requests: register(
                r,
                "orchestrator_http_requests_total",
                IntCounterVec::new(
                    Opts::new(
                        "orchestrator_http_requests_total",
                        "HTTP requests answered, by method, route template and status code.",
                    ),
                    &["method", "route", "status"],
                ),
            )?,
            http_request_duration: register(
                r,
                "orchestrator_http_request_duration_seconds",
                HistogramVec::new(
                    HistogramOpts::new(
                        "orchestrator_http_request_duration_seconds",
                        "Time taken to answer an HTTP request, by route template.",
                    )
                    .buckets(HTTP_BUCKETS.to_vec()),
                    &["route"],
                ),
            )?,
            auth_refused: register(
                r,
                "orchestrator_api_auth_refused_total",
                IntCounterVec::new(
                    Opts::new(
                        "orchestrator_api_auth_refused_total",
                        "API requests refused before their caller was authenticated, by reason.",
                    ),
                    &["reason"],
                ),
            )?,
            registry,
        })
    }

    /// The registry, for a crate that wants to register metrics of its own
    /// (they then appear in [`Metrics::encode`]).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Replaces every `orchestrator_instances_by_status` series with the given
    /// counts, so a status that no longer occurs does not linger with a stale
    /// value.
    pub fn set_instances_by_status<'a>(&self, counts: impl IntoIterator<Item = (&'a str, i64)>) {
        self.instances_by_status.reset();
        for (status, count) in counts {
            self.instances_by_status
                .with_label_values(&[status])
                .set(count);
        }
    }

    /// Records one answered HTTP request in `orchestrator_http_requests_total`
    /// and `orchestrator_http_request_duration_seconds`.
    ///
    /// `route` must be a route template (`/api/v1/workloads/{ref}`), never the
    /// raw path, to keep the number of series bounded.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.http_requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.http_request_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Renders every registered metric in the Prometheus text format 0.0.4
    /// (content type [`TEXT_CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String> {
        let families = self.registry.gather();
        let mut out = String::new();
        TextEncoder::new()
            .encode_utf8(&families, &mut out)
            .map_err(Error::EncodeMetrics)?;
        Ok(out)
    }
}

/// Registers `metric` (just created, maybe with an error) in `registry`.
fn register<M>(registry: &Registry, name: &'static str, metric: prometheus::Result<M>) -> Result<M>
where
    M: Collector + Clone + 'static,
{
    let metric = metric.map_err(|source| Error::RegisterMetric { name, source })?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(|source| Error::RegisterMetric { name, source })?;
    Ok(metric)
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
