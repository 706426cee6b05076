//! The pages. Each is a full HTML page, or with `?fragment=1` only what its
//! `<main>` holds, which the page's script fetches to refresh itself when
//! something changed. Every value is escaped by maud.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use orchestrator_api::{ApprovalFilter, Workload};
use orchestrator_shared_types::{InstanceStatus, NodeStatus};

use super::live::{call, usage, Sample};
use super::State as Shared;

type Params = Query<HashMap<String, String>>;

const NAV: [(&str, &str); 5] = [
    ("/", "Overview"),
    ("/workloads", "Workloads"),
    ("/nodes", "Nodes"),
    ("/agents", "AI agents"),
    ("/credits", "Credits"),
];

fn short(s: &str) -> String {
    s.chars().take(12).collect()
}

fn millis_as_cores(m: u64) -> String {
    format!("{:.2}", m as f64 / 1000.0)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The page around `body`, or `body` alone for a refresh.
fn page(dash: &Shared, q: &Params, title: &str, active: &str, body: Markup) -> Response {
    if q.0.contains_key("fragment") {
        return Html(body.into_string()).into_response();
    }
    let flash =
        q.0.get("error")
            .map(|e| ("error", e.as_str()))
            .or_else(|| q.0.get("notice").map(|n| ("notice", n.as_str())));
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Univrs" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    span.brand { "Univrs" }
                    nav aria-label="Main" {
                        ul {
                            @for (href, label) in NAV {
                                li {
                                    @if href == active {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    span.server title="The daemon this dashboard talks to" { (dash.client.server()) }
                }
                div #live .live role="status" aria-live="polite" {}
                @if let Some((kind, text)) = flash {
                    div #flash class=(kind) role=(if kind == "error" { "alert" } else { "status" }) { (text) }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// What to say when the daemon cannot be asked.
fn unreachable(dash: &Shared, what: &str, error: &str) -> Markup {
    html! {
        section.card.error role="alert" {
            h2 { "Could not read " (what) }
            p { (error) }
            p {
                "Check that the daemon at " code { (dash.client.server()) }
                " runs (" code { "ui health" } "); this page retries when it answers."
            }
        }
    }
}

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

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "Running" | "Ready" | "Succeeded" | "allowed" | "approved" => "ok",
        "Pending" | "NotReady" | "Unknown" | "pending_approval" => "warn",
        _ => "bad",
    };
    html! { span.badge class=(class) { (status) } }
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

/// `GET /nodes`.
pub async fn nodes(State(dash): State<Shared>, q: Params) -> Response {
    let nodes = call(&dash, |c| {
        let nodes = c.list_nodes()?.data;
        let reps: Vec<_> = nodes
            .iter()
            .map(|n| {
                c.node_reputation(&n.id.to_string(), &[])
                    .ok()
                    .map(|r| r.data)
            })
            .collect();
        Ok((nodes, reps))
    })
    .await;
    let body = html! {
        h1 { "Nodes" }
        @match &nodes {
            Err(e) => (unreachable(&dash, "the nodes", e)),
            Ok((list, reps)) => div.scroll { table {
                thead { tr { th scope="col" { "Node" } th scope="col" { "Status" } th scope="col" { "Operator" } th scope="col" { "CPU" } th scope="col" { "Memory" } th scope="col" { "Labels and taints" } th scope="col" { "Reputation" } th scope="col" { "Actions" } } }
                tbody { @for (n, rep) in list.iter().zip(reps) {
                    @let id = n.id.to_string();
                    tr {
                        th scope="row" { code title=(id) { (n.id.short()) } br; small { (n.address) } }
                        td { (status_badge(&format!("{:?}", n.status))) @if n.unschedulable { " " span.badge.warn { "cordoned" } } }
                        td { code title=(n.operator.to_string()) { (n.operator.short()) } }
                        td.num { (millis_as_cores(n.resources_allocatable.cpu_millis)) " / " (millis_as_cores(n.resources_capacity.cpu_millis)) }
                        td.num { (gib(n.resources_allocatable.memory_bytes)) " / " (gib(n.resources_capacity.memory_bytes)) }
                        td { @for (k, v) in &n.labels { span.tag { (k) "=" (v) } " " } @for t in &n.taints { span.tag.warn { (t.key) "=" (t.value) ":" (format!("{:?}", t.effect)) } " " } }
                        td { @match rep {
                            Some(r) => { strong { (format!("{:.2}", r.composite)) } br; small { "uptime " (format!("{:.2}", r.uptime)) ", reliability " (format!("{:.2}", r.reliability)) ", honesty " (format!("{:.2}", r.honesty)) ", age " (format!("{:.2}", r.age)) ", attested " (format!("{:.2}", r.attestation_trust)) } }
                            None => "—",
                        } }
                        td.actions { @for action in ["cordon", "uncordon", "drain"] {
                            @if (action == "uncordon") == n.unschedulable || action == "drain" {
                                form method="post" action=(format!("/nodes/{id}/{action}")) data-confirm=(if action == "drain" { format!("Drain node {}? Its instances move elsewhere.", n.id.short()) } else { String::new() }) {
                                    button type="submit" aria-label=(format!("{action} node {}", n.id.short())) { (action) }
                                }
                            }
                        } }
                    }
                } }
            } },
        }
        @if let Ok((list, _)) = &nodes { p.quiet { (list.iter().filter(|n| n.status == NodeStatus::Ready).count()) " of " (list.len()) " ready" } }
    };
    page(&dash, &q, "Nodes", "/nodes", body)
}

/// `GET /agents`: approvals, tokens, the audit log by agent.
pub async fn agents(State(dash): State<Shared>, q: Params) -> Response {
    let approvals = call(&dash, |c| {
        c.approvals(ApprovalFilter::Pending).map(|r| r.data)
    })
    .await;
    let agent = q.0.get("agent").filter(|a| !a.is_empty()).cloned();
    let a = agent.clone();
    let audit = call(&dash, move |c| c.audit(None, a.as_deref()).map(|r| r.data)).await;
    let verified = call(&dash, |c| c.verify_audit().map(|r| r.data)).await;
    let tokens = dash
        .config_dir
        .as_ref()
        .and_then(|d| user_config::agent_tokens::TokenLog::load(d).ok())
        .map(|l| l.tokens)
        .unwrap_or_default();
    let body = html! {
        h1 { "AI agents" }
        section.card aria-labelledby="ap-h" {
            h2 #ap-h { "Waiting for you" }
            @match &approvals {
                Err(e) => (unreachable(&dash, "the approvals", e)),
                Ok(list) if list.is_empty() => p.quiet { "No agent call is waiting." },
                Ok(list) => ul.list { @for a in list {
                    li.approval data-approval=(a.id) {
                        strong { (a.agent) } " wants to " code { (a.tool) } " (" code { (a.method) " " (a.path) } ")"
                        @if let Some(b) = &a.body { pre.manifest { (b) } }
                        div.actions {
                            form method="post" action=(format!("/approvals/{}/approve", orchestrator_api::routes::segment(&a.id))) { button type="submit" aria-label=(format!("Approve {} by {}", a.tool, a.agent)) { "Approve" } }
                            form method="post" action=(format!("/approvals/{}/deny", orchestrator_api::routes::segment(&a.id))) { button.danger type="submit" aria-label=(format!("Deny {} by {}", a.tool, a.agent)) { "Deny" } }
                        }
                    }
                } },
            }
        }
        section.card aria-labelledby="tok-h" {
            h2 #tok-h { "Your agent tokens" }
            @if tokens.is_empty() { p.quiet { "None signed on this machine (" code { "ui agent token create" } ")." } } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Agent" } th scope="col" { "Id" } th scope="col" { "Tools" } th scope="col" { "Expires" } } }
                    tbody { @for t in &tokens { tr { th scope="row" { (t.agent) } td { code { (short(&t.id)) } } td { (t.tools.join(", ")) } td { (t.expires_at) } } } }
                } }
            }
        }
        section.card aria-labelledby="au-h" {
            h2 #au-h { "Audit log" }
            @match &verified {
                Ok(v) if v.ok => p { span.badge.ok { "chain verified" } " " (v.entries) " entries" },
                Ok(v) => p role="alert" { span.badge.bad { "chain broken" } " " (v.error.clone().unwrap_or_default()) },
                Err(e) => p { span.badge.warn { "not verified" } " " (e) },
            }
            form.filter method="get" action="/agents" {
                label for="agent" { "Agent" }
                input #agent name="agent" type="text" value=(agent.clone().unwrap_or_default()) placeholder="all agents";
                button type="submit" { "Filter" }
            }
            @match &audit {
                Err(e) => (unreachable(&dash, "the audit log", e)),
                Ok(list) => div.scroll { table {
                    thead { tr { th scope="col" { "Time" } th scope="col" { "Agent" } th scope="col" { "Action" } th scope="col" { "Decision" } th scope="col" { "Status" } } }
                    tbody { @for e in list.iter().rev().take(100) { tr {
                        td { (e.time.format("%Y-%m-%d %H:%M:%S")) }
                        td { (e.agent.clone().unwrap_or_else(|| "—".into())) }
                        td { code { (e.action) } }
                        td { (status_badge(&e.decision)) }
                        td.num { (e.status) }
                    } } }
                } },
            }
        }
    };
    page(&dash, &q, "AI agents", "/agents", body)
}

/// `GET /credits`.
pub async fn credits(State(dash): State<Shared>, q: Params) -> Response {
    let balance = call(&dash, |c| c.credit_balance().map(|r| r.data)).await;
    let history = call(&dash, |c| c.credit_history().map(|r| r.data)).await;
    let units = |m: i64| format!("{:.3}", m as f64 / 1000.0);
    let body = html! {
        h1 { "Credits" }
        @match &balance {
            Err(e) => (unreachable(&dash, "your balance", e)),
            Ok(b) => section.tiles aria-label="Balance" {
                div.tile { span.big { (units(b.balance)) } span { "balance" } }
                div.tile { span.big { (units(b.held)) } span { "held for running work" } }
                div.tile { span.big { (units(b.available)) } span { "available" } }
                div.tile { span.big { (units(b.limit)) } span { "credit limit" } }
            },
        }
        section.card aria-labelledby="hist-h" {
            h2 #hist-h { "History" }
            @match &history {
                Err(e) => (unreachable(&dash, "your history", e)),
                Ok(list) if list.is_empty() => p.quiet { "No entries yet." },
                Ok(list) => div.scroll { table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Kind" } th scope="col" { "With" } th scope="col" { "Balance" } th scope="col" { "Held" } th scope="col" { "Reference" } } }
                    tbody { @for e in list.iter().rev().take(200) { tr {
                        td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                        td { (e.kind) }
                        td { @if let Some(c) = &e.counterparty { code { (short(c)) } } @else { "—" } }
                        td.num { (units(e.balance_delta)) }
                        td.num { (units(e.held_delta)) }
                        td { (e.reference) }
                    } } }
                } },
            }
        }
    };
    page(&dash, &q, "Credits", "/credits", body)
}

/// Anything else.
pub async fn not_found(State(dash): State<Shared>, q: Params) -> Response {
    let body = html! { h1 { "Not found" } p { a href="/" { "Back to the overview" } } };
    (
        StatusCode::NOT_FOUND,
        page(&dash, &q, "Not found", "", body),
    )
        .into_response()
}

/// The stylesheet.
pub async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/app.css"),
    )
        .into_response()
}

/// The script.
pub async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/app.js"),
    )
        .into_response()
}
