//! Workloads: the list, a workload's page, and its logs.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use orchestrator_shared_types::InstanceStatus;

use super::super::live::call;
use super::{page, short, status_badge, unreachable, Params, Shared};

/// `GET /workloads`.
pub async fn workloads(State(dash): State<Shared>, q: Params) -> Response {
    let workloads = call(&dash, |c| c.list_workloads().map(|r| r.data)).await;
    let body = html! {
        h1 { "Workloads" }
        @match &workloads {
            Err(e) => (unreachable(&dash, "your workloads", e)),
            Ok(w) if w.is_empty() => p.quiet { "No workloads yet: " code { "ui deploy MANIFEST" } },
            Ok(w) => div.scroll {
                table {
                    caption.sr { "Your workloads and their replicas" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Running" } th scope="col" { "Ready" } th scope="col" { "Status" } } }
                    tbody {
                        @for w in w {
                            tr data-workload=(w.workload.name()) {
                                th scope="row" { a href=(format!("/workloads/{}", orchestrator_api::routes::segment(w.workload.name()))) { (w.workload.name()) } }
                                td.num data-field="running" { (w.status.running) "/" (w.status.desired) }
                                td.num { (w.status.ready) }
                                td { @if let Some(r) = &w.status.reason { (r) } @else { "—" } }
                            }
                        }
                    }
                }
            },
        }
    };
    page(&dash, &q, "Workloads", "/workloads", body)
}

/// `GET /workloads/{name}`.
pub async fn workload(State(dash): State<Shared>, Path(name): Path<String>, q: Params) -> Response {
    let n = name.clone();
    let w = call(&dash, move |c| c.get_workload(&n).map(|r| r.data)).await;
    let n = name.clone();
    let instances = call(&dash, move |c| c.list_instances(&n).map(|r| r.data)).await;
    let events = call(&dash, |c| {
        c.get_json(&format!(
            "{}?limit=1000",
            orchestrator_api::routes::EVENTS_RECENT
        ))
    })
    .await;
    let seg = orchestrator_api::routes::segment(&name);
    let body = html! {
        @match &w {
            Err(e) => { h1 { (name) } (unreachable(&dash, "this workload", e)) },
            Ok(w) => {
                h1 { (name) }
                p.sub {
                    (w.status.running) " of " (w.status.desired) " running, " (w.status.ready) " ready"
                    @if let Some(r) = &w.status.reason { " — " (r) }
                }
                div.actions {
                    form method="post" action=(format!("/workloads/{seg}/scale")) {
                        label for="replicas" { "Replicas" }
                        input #replicas name="replicas" type="number" min="0" max="10000" value=(w.status.desired) required;
                        button type="submit" { "Scale" }
                    }
                    a.button href=(format!("/workloads/{seg}/logs")) { "Logs" }
                    form method="post" action=(format!("/workloads/{seg}/delete")) data-confirm=(format!("Delete {name} and stop its instances?")) {
                        button.danger type="submit" { "Delete" }
                    }
                }
                section.card aria-labelledby="inst-h" {
                    h2 #inst-h { "Instances" }
                    @match &instances {
                        Err(e) => (unreachable(&dash, "its instances", e)),
                        Ok(list) if list.is_empty() => p.quiet { "No instances." },
                        Ok(list) => div.scroll { table {
                            thead { tr { th scope="col" { "Instance" } th scope="col" { "Node" } th scope="col" { "Address" } th scope="col" { "Status" } th scope="col" { "Restarts" } th scope="col" { "Last reason" } } }
                            tbody { @for i in list {
                                tr {
                                    th scope="row" { code { (short(&i.id.to_string())) } }
                                    td { code { (i.node_id.short()) } }
                                    td { @if let Some(a) = &i.address { (a) } @else { "—" } }
                                    td { (status_badge(&format!("{:?}", i.status))) @if i.status == InstanceStatus::Running && !i.ready { " " span.badge.warn { "not ready" } } }
                                    td.num { (i.restarts) }
                                    td { @if let Some(r) = &i.reason { (r) } @else { "—" } }
                                }
                            } }
                        } },
                    }
                }
                section.card aria-labelledby="ev-h" {
                    h2 #ev-h { "Events" }
                    @let id = w.workload.id.to_string();
                    @let mine: Vec<&serde_json::Value> = events.as_ref().ok().and_then(|v| v["items"].as_array()).map(|items| items.iter().filter(|e| e["data"]["workload"] == id.as_str()).collect()).unwrap_or_default();
                    @if mine.is_empty() { p.quiet { "No recent events." } } @else {
                        ol.events { @for e in mine.iter().rev().take(50) {
                            li { time { (e["timestamp"].as_str().unwrap_or_default()) } " " strong { (e["type"].as_str().unwrap_or_default()) } @if let Some(r) = e["data"]["reason"].as_str() { " — " (r) } }
                        } }
                    }
                }
                section.card aria-labelledby="man-h" {
                    h2 #man-h { "Manifest" }
                    pre.manifest { (serde_json::to_string_pretty(&w.workload.spec).unwrap_or_default()) }
                }
            }
        }
    };
    page(&dash, &q, &name, "/workloads", body)
}

/// `GET /workloads/{name}/logs`: the lines so far and each new one, live.
pub async fn logs(State(dash): State<Shared>, Path(name): Path<String>, q: Params) -> Response {
    let seg = orchestrator_api::routes::segment(&name);
    let body = html! {
        h1 { "Logs of " (name) }
        p.sub { a href=(format!("/workloads/{seg}")) { "Back to " (name) } }
        ol #log .log aria-live="polite" aria-label=(format!("Log lines of {name}")) data-stream=(format!("/workloads/{seg}/logs/stream")) {}
    };
    page(&dash, &q, &format!("Logs of {name}"), "/workloads", body)
}
