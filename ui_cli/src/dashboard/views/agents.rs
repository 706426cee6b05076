//! AI agents (approvals, tokens, the audit log) and credits.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use orchestrator_api::ApprovalFilter;

use super::super::live::call;
use super::{page, short, status_badge, unreachable, Params, Shared};

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
