//! `ui audit`: the daemon's audit log (`GET /api/v1/audit`), or a check of
//! its hash chain (`GET /api/v1/audit/verify`).

use serde_json::json;

use super::Context;
use crate::cli::{AuditArgs, OutputFormat};
use crate::output::{print_json, short, Table};

/// Runs `ui audit`.
pub fn run(ctx: &Context, args: &AuditArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    if args.verify {
        let v = client.verify_audit()?;
        let ok = v.data.ok;
        match ctx.output() {
            OutputFormat::Json => print_json(&v.raw),
            OutputFormat::Table if ok => {
                println!("audit log intact: {} entries verify", v.data.entries);
            }
            OutputFormat::Table => {}
        }
        if !ok {
            anyhow::bail!(
                "the audit log does not verify: {}",
                v.data.error.as_deref().unwrap_or("unknown reason")
            );
        }
        return Ok(());
    }
    let entries = client.audit(args.since.as_deref(), args.agent.as_deref())?;
    match ctx.output() {
        OutputFormat::Json => print_json(&json!({ "items": entries.raw })),
        OutputFormat::Table => {
            let mut t = Table::new([
                "SEQ", "TIME", "KEY", "AGENT", "ACTION", "DECISION", "STATUS",
            ]);
            for e in &entries.data {
                t.row([
                    e.seq.to_string(),
                    // As the server sent it (chrono serializes with AutoSi and Z).
                    e.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    e.key.as_deref().map_or_else(|| "-".into(), short),
                    e.agent.clone().unwrap_or_else(|| "-".into()),
                    e.action.clone(),
                    e.decision.clone(),
                    e.status.to_string(),
                ]);
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}
