//! The pages. Each is a full HTML page, or with `?fragment=1` only what its
//! `<main>` holds, which the page's script fetches to refresh itself when
//! something changed. Every value is escaped by maud.

mod agents;
mod nodes;
mod overview;
mod workloads;

pub use agents::{agents, credits};
pub use nodes::nodes;
pub use overview::overview;
pub use workloads::{logs, workload, workloads};

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::State as Shared;

type Params = Query<HashMap<String, String>>;

const NAV: [(&str, &str); 5] = [
    ("/", "Overview"),
    ("/workloads", "Workloads"),
    ("/nodes", "Nodes"),
    ("/agents", "AI agents"),
    ("/credits", "Credits"),
];

pub(super) fn short(s: &str) -> String {
    s.chars().take(12).collect()
}

pub(super) fn millis_as_cores(m: u64) -> String {
    format!("{:.2}", m as f64 / 1000.0)
}

pub(super) fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The page around `body`, or `body` alone for a refresh.
pub(super) fn page(dash: &Shared, q: &Params, title: &str, active: &str, body: Markup) -> Response {
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
pub(super) fn unreachable(dash: &Shared, what: &str, error: &str) -> Markup {
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

pub(super) fn status_badge(status: &str) -> Markup {
    let class = match status {
        "Running" | "Ready" | "Succeeded" | "allowed" | "approved" => "ok",
        "Pending" | "NotReady" | "Unknown" | "pending_approval" => "warn",
        _ => "bad",
    };
    html! { span.badge class=(class) { (status) } }
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
        include_str!("../assets/app.css"),
    )
        .into_response()
}

/// The script.
pub async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../assets/app.js"),
    )
        .into_response()
}
