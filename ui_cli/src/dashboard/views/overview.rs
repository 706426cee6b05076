//! The overview: the cluster at a glance.

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};
use orchestrator_api::{ApprovalFilter, Workload};

use super::super::live::{call, usage, Sample};
use super::{millis_as_cores, page, unreachable, Params, Shared};

fn chart(label: &str, points: &[u64]) -> Markup {
    // One sample draws as a flat line, not as nothing.
    let one;
    let points = match points {
        [p] => {
            one = [*p, *p];
            &one[..]
        }
        _ => points,
    };
    let (w, h) = (300.0_f64, 60.0_f64);
    let max = points.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = points.len().max(2) as f64 - 1.0;
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 / n * w,
                h - *v as f64 / max * (h - 4.0) - 2.0
            )
        })
        .collect();
    let last = points.last().copied().unwrap_or(0);
    html! {
        figure.chart {
            svg viewBox="0 0 300 60" role="img" aria-label=(format!("{label}: {last} now, at most {max} in the last hour")) preserveAspectRatio="none" {
                polyline points=(line.join(" ")) fill="none" stroke="currentColor" stroke-width="2" {}
            }
            figcaption { (label) ": " strong { (last) } " now" }
        }
    }
}

fn failing(workloads: &[Workload]) -> Vec<(&Workload, String)> {
    workloads
        .iter()
        .filter(|w| {
            w.status.failed > 0
                || w.status.unscheduled > 0
                || w.status.reason.is_some() && w.status.running < w.status.desired
        })
        .map(|w| {
            (
                w,
                w.status
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("{} failed", w.status.failed)),
            )
        })
        .collect()
}

/// `GET /`.
pub async fn overview(State(dash): State<Shared>, q: Params) -> Response {
    let status = call(&dash, |c| c.cluster_status().map(|r| r.data)).await;
    let workloads = call(&dash, |c| c.list_workloads().map(|r| r.data)).await;
    let approvals = call(&dash, |c| {
        c.approvals(ApprovalFilter::Pending).map(|r| r.data.len())
    })
    .await;
    let samples: Vec<Sample> = dash
        .samples
        .lock()
        .map(|s| s.0.iter().copied().collect())
        .unwrap_or_default();
    let body = html! {
        h1 { "Overview" }
        @match &status {
            Err(e) => (unreachable(&dash, "the cluster's status", e)),
            Ok(s) => {
                section.tiles aria-label="Cluster" {
                    div.tile { span.big { (s.nodes_ready) } span { "nodes ready" } }
                    div.tile class=(if s.nodes_down > 0 { "bad" } else { "" }) { span.big { (s.nodes_down) } span { "nodes down" } }
                    @if let Ok(w) = &workloads {
                        @let u = usage(w);
                        div.tile {
                            span.big { (millis_as_cores(u.cpu_millis)) " / " (millis_as_cores(s.allocatable.cpu_millis)) }
                            span { "CPU cores in use by your instances" }
                        }
                        div.tile { span.big { (u.running) } span { "of your instances running" } }
                    }
                    @if let Ok(n) = approvals {
                        div.tile class=(if n > 0 { "warn" } else { "" }) {
                            a href="/agents" { span.big { (n) } span { "agent calls waiting for you" } }
                        }
                    }
                }
                section.card aria-labelledby="net-h" {
                    h2 #net-h { "Network health" }
                    dl.facts {
                        dt { "Operators" } dd { (s.network_health.operators) }
                        dt { "Decentralization" } dd { (format!("{:.2}", s.network_health.decentralization)) }
                        dt { "Operator diversity" } dd { (format!("{:.2}", s.network_health.operator_diversity)) }
                        dt { "New nodes (under 30 days)" } dd { (format!("{:.0} %", s.network_health.bootstrap_ratio * 100.0)) }
                    }
                }
            }
        }
        section.card aria-labelledby="hour-h" {
            h2 #hour-h { "The last hour" }
            div.charts {
                (chart("Running instances", &samples.iter().map(|s| s.running).collect::<Vec<_>>()))
                (chart("CPU in use (millicores)", &samples.iter().map(|s| s.cpu_millis).collect::<Vec<_>>()))
            }
        }
        section.card aria-labelledby="fail-h" {
            h2 #fail-h { "Failing" }
            @match &workloads {
                Err(e) => (unreachable(&dash, "your workloads", e)),
                Ok(w) => {
                    @let bad = failing(w);
                    @if bad.is_empty() {
                        p.quiet { "Nothing is failing." }
                    } @else {
                        ul.list {
                            @for (w, why) in bad {
                                li { a href=(format!("/workloads/{}", orchestrator_api::routes::segment(w.workload.name()))) { (w.workload.name()) } ": " (why) }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&dash, &q, "Overview", "/", body)
}
