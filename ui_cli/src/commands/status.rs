//! `ui status [name]`: the workload list, or one workload and its instances.

use chrono::Utc;
use serde_json::{json, Value};

use super::Context;
use crate::cli::{OutputFormat, StatusArgs};
use crate::client::segment;
use crate::output::{age_of, print_json, short, Table};
use crate::views::{view, Instance, Workload};

/// Runs `ui status`.
pub fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match &args.name {
        None => {
            let items = client.get_all("/api/v1/workloads")?;
            match ctx.output() {
                OutputFormat::Json => print_json(&json!({ "items": items, "next_cursor": null })),
                OutputFormat::Table => print!("{}", workload_table(&items)?.render()),
            }
        }
        Some(name) => {
            let path = format!("/api/v1/workloads/{}", segment(name));
            let workload = client.get_json(&path)?;
            let instances = client.get_all(&format!("{path}/instances"))?;
            match ctx.output() {
                OutputFormat::Json => {
                    print_json(&json!({ "workload": workload, "instances": instances }))
                }
                OutputFormat::Table => {
                    print!(
                        "{}",
                        workload_table(std::slice::from_ref(&workload))?.render()
                    );
                    println!();
                    print!("{}", instance_table(&instances)?.render());
                }
            }
        }
    }
    Ok(())
}

/// NAME, REPLICAS (running/desired), UP-TO-DATE, FAILED, AGE.
pub fn workload_table(items: &[Value]) -> anyhow::Result<Table> {
    let now = Utc::now();
    let mut table = Table::new(["NAME", "REPLICAS", "UP-TO-DATE", "FAILED", "AGE"]);
    for item in items {
        let w: Workload = view(item, "workload")?;
        table.row([
            w.name().to_owned(),
            format!("{}/{}", w.status.running, w.spec.replicas),
            w.status.up_to_date.to_string(),
            w.status.failed.to_string(),
            age_of(w.created_at.as_deref(), now),
        ]);
    }
    Ok(table)
}

/// ID (short), NODE (short), STATUS, RESTARTS, REASON.
pub fn instance_table(items: &[Value]) -> anyhow::Result<Table> {
    let mut table = Table::new(["ID", "NODE", "STATUS", "RESTARTS", "REASON"]);
    for item in items {
        let i: Instance = view(item, "instance")?;
        table.row([
            short(&i.id),
            short(&i.node_id),
            i.status,
            i.restarts.to_string(),
            i.reason.unwrap_or_default(),
        ]);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_rows() {
        let t = workload_table(&[json!({
            "id": "x", "spec": {"name": "hello", "replicas": 3},
            "status": {"running": 2, "up_to_date": 1, "failed": 1},
            "created_at": "not a time"
        })])
        .expect("table");
        assert_eq!(
            t.render(),
            "NAME    REPLICAS   UP-TO-DATE   FAILED   AGE\n\
             hello   2/3        1            1        ?\n"
        );
    }

    #[test]
    fn instance_rows() {
        let t = instance_table(&[json!({
            "id": "9f1c2d3e-4b5a-4c6d-8e7f-001122334455",
            "node_id": "ab".repeat(32), "status": "Failed", "restarts": 4,
            "reason": "CrashLoop"
        })])
        .expect("table");
        assert_eq!(
            t.render(),
            "ID             NODE           STATUS   RESTARTS   REASON\n\
             9f1c2d3e4b5a   abababababab   Failed   4          CrashLoop\n"
        );
    }
}
