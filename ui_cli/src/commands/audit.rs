//! `ui audit`: the daemon's audit log (`GET /api/v1/audit`), or a check of
//! its hash chain (`GET /api/v1/audit/verify`).

use serde_json::{json, Value};

use super::Context;
use crate::cli::{AuditArgs, OutputFormat};
use crate::client::segment;
use crate::output::{print_json, short, Table};

/// Runs `ui audit`.
pub fn run(ctx: &Context, args: &AuditArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    if args.verify {
        let v = client.get_json("/api/v1/audit/verify")?;
        let ok = v["ok"].as_bool() == Some(true);
        match ctx.output() {
            OutputFormat::Json => print_json(&v),
            OutputFormat::Table if ok => {
                println!("audit log intact: {} entries verify", v["entries"]);
            }
            OutputFormat::Table => {}
        }
        if !ok {
            anyhow::bail!(
                "the audit log does not verify: {}",
                v["error"].as_str().unwrap_or("unknown reason")
            );
        }
        return Ok(());
    }
    let mut query = Vec::new();
    if let Some(s) = &args.since {
        query.push(format!("since={}", segment(s)));
    }
    if let Some(a) = &args.agent {
        query.push(format!("agent={}", segment(a)));
    }
    let items = client.get_all_with("/api/v1/audit", &query.join("&"))?;
    match ctx.output() {
        OutputFormat::Json => print_json(&json!({ "items": items })),
        OutputFormat::Table => {
            let mut t = Table::new([
                "SEQ", "TIME", "KEY", "AGENT", "ACTION", "DECISION", "STATUS",
            ]);
            let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
            for e in &items {
                t.row([
                    e["seq"].to_string(),
                    s(&e["time"]),
                    e["key"].as_str().map_or_else(|| "-".into(), short),
                    s(&e["agent"]),
                    s(&e["action"]),
                    s(&e["decision"]),
                    e["status"].to_string(),
                ]);
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}
