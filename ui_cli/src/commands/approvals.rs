//! `ui approvals list [--all] | approve ID | deny ID`: the agent calls that
//! wait for your approval (docs/AGENTS.md, "Approvals").

use orchestrator_api::{Approval, ApprovalFilter, ApprovalState};
use serde_json::{json, Value};

pub use orchestrator_api::routes::Verdict;

use super::Context;
use crate::cli::{ApprovalsCommand, OutputFormat};
use crate::client::ApiClient;
use crate::output::{emit, print_json, seconds, Table};
use crate::views::view;

/// Runs `ui approvals ...`.
pub fn run(ctx: &Context, cmd: &ApprovalsCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match cmd {
        ApprovalsCommand::List { all } => list(ctx.output(), &client, *all),
        ApprovalsCommand::Approve { id } => decide(ctx.output(), &client, id, Verdict::Approve),
        ApprovalsCommand::Deny { id } => decide(ctx.output(), &client, id, Verdict::Deny),
    }
}

/// `ui approvals list`: every pending approval, or every approval with `all`.
pub fn list(output: OutputFormat, client: &ApiClient, all: bool) -> anyhow::Result<()> {
    let filter = if all {
        ApprovalFilter::All
    } else {
        ApprovalFilter::Pending
    };
    let items = match client.approvals(filter)?.raw {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    match output {
        OutputFormat::Json => print_json(&json!({ "items": items })),
        OutputFormat::Table => print!("{}", approval_table(&items)?.render()),
    }
    Ok(())
}

/// ID, AGENT, TOOL, PATH (method and path of the stored call), STATE, CREATED.
pub fn approval_table(items: &[Value]) -> anyhow::Result<Table> {
    let mut table = Table::new(["ID", "AGENT", "TOOL", "PATH", "STATE", "CREATED"]);
    for item in items {
        let a: Approval = view(item, "approval")?;
        table.row([
            a.id,
            a.agent,
            a.tool,
            format!("{} {}", a.method, a.path).trim().to_owned(),
            a.state.to_string(),
            seconds(a.created_at),
        ]);
    }
    Ok(table)
}

/// `ui approvals approve|deny ID`: `POST /api/v1/approvals/{id}/approve|deny`.
pub fn decide(
    output: OutputFormat,
    client: &ApiClient,
    id: &str,
    verdict: Verdict,
) -> anyhow::Result<()> {
    let answer = client.decide_approval(id, verdict)?;
    emit(output, &answer.raw, &decided_text(&answer.data));
    Ok(())
}

/// What happened to an approval, with the call's answer once it ran.
pub fn decided_text(a: &Approval) -> String {
    let call = format!("{} {} ({} by {})", a.method, a.path, a.tool, a.agent);
    match (a.state, &a.result) {
        (ApprovalState::Approved, Some(r)) if (200..300).contains(&r.status) => {
            format!("approval {} approved: {call} ran, HTTP {}", a.id, r.status)
        }
        (ApprovalState::Approved, Some(r)) => {
            let excerpt: String = r.body.trim().chars().take(300).collect();
            format!(
                "approval {} approved: {call} ran and failed with HTTP {}: {excerpt}",
                a.id, r.status
            )
        }
        (state, _) => format!("approval {} {state}: {call}", a.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::test_server::serve_once;

    fn approval(state: &str, result: Value) -> Value {
        json!({
            "id": "0123456789abcdef0123456789abcdef", "user": "ab".repeat(32),
            "agent": "mcp-stdio", "tool": "delete_workload", "method": "DELETE",
            "path": "/api/v1/workloads/web", "body": null, "state": state,
            "created_at": "2026-11-30T10:00:00.123456789Z", "decided_at": null, "result": result
        })
    }

    #[test]
    fn approval_rows() {
        let t = approval_table(&[approval("pending", Value::Null)]).expect("table");
        assert_eq!(
            t.render(),
            "ID                                 AGENT       TOOL              \
             PATH                           STATE     CREATED\n\
             0123456789abcdef0123456789abcdef   mcp-stdio   delete_workload   \
             DELETE /api/v1/workloads/web   pending   2026-11-30T10:00:00Z\n"
        );
        assert!(approval_table(&[json!({"id": 5})]).is_err());
    }

    #[test]
    fn decided_sentences() {
        let text = |v: Value| decided_text(&view(&v, "approval").expect("view"));
        assert_eq!(
            text(approval("approved", json!({"status": 200, "body": "{}"}))),
            "approval 0123456789abcdef0123456789abcdef approved: \
             DELETE /api/v1/workloads/web (delete_workload by mcp-stdio) ran, HTTP 200"
        );
        assert!(text(approval(
            "approved",
            json!({"status": 404, "body": "no workload named web\n"})
        ))
        .ends_with("ran and failed with HTTP 404: no workload named web"));
        assert_eq!(
            text(approval("denied", Value::Null)),
            "approval 0123456789abcdef0123456789abcdef denied: \
             DELETE /api/v1/workloads/web (delete_workload by mcp-stdio)"
        );
    }

    #[test]
    fn approve_posts_to_the_approvals_path() {
        let answer = approval("approved", json!({"status": 200, "body": "{}"})).to_string();
        let (url, server) = serve_once("200 OK", &answer);
        let client = ApiClient::new(&url, None).expect("client");
        decide(OutputFormat::Json, &client, "0123abcd", Verdict::Approve).expect("approved");
        let (head, body) = server.join().expect("server thread");
        assert!(
            head.starts_with("post /api/v1/approvals/0123abcd/approve http/1.1"),
            "{head}"
        );
        assert!(body.is_empty(), "{body}");
    }

    #[test]
    fn deny_posts_and_a_conflict_surfaces() {
        let (url, server) = serve_once(
            "409 Conflict",
            r#"{"error":{"code":"conflict","message":"approval 0123abcd is already approved"}}"#,
        );
        let client = ApiClient::new(&url, None).expect("client");
        let err =
            decide(OutputFormat::Table, &client, "0123abcd", Verdict::Deny).expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "approval 0123abcd is already approved (conflict, HTTP 409)"
        );
        let (head, _) = server.join().expect("server thread");
        assert!(
            head.starts_with("post /api/v1/approvals/0123abcd/deny "),
            "{head}"
        );
    }

    #[test]
    fn list_asks_for_pending_or_all() {
        for (all, state) in [(false, "pending"), (true, "all")] {
            let (url, server) = serve_once("200 OK", r#"{"items":[],"next_cursor":null}"#);
            let client = ApiClient::new(&url, None).expect("client");
            list(OutputFormat::Json, &client, all).expect("listed");
            let (head, _) = server.join().expect("server thread");
            assert!(
                head.starts_with(&format!("get /api/v1/approvals?limit=1000&state={state} ")),
                "{head}"
            );
        }
    }
}
