//! `ui node status [id] [--sort reputation] | cordon <id> | uncordon <id> |
//! drain <id>`.

mod reputation;

use chrono::Utc;
use orchestrator_shared_types::CpuQuantity;
use serde_json::{json, Value};

use super::Context;
use crate::cli::{NodeCommand, NodeSort, OutputFormat};
use crate::client::segment;
use crate::output::{age_of, emit, human_memory, print_json, short, Table};
use crate::views::{view, Node};

/// Runs `ui node ...`.
pub fn run(ctx: &Context, cmd: &NodeCommand) -> anyhow::Result<()> {
    if let NodeCommand::Status {
        id: None,
        sort: Some(NodeSort::Reputation),
    } = cmd
    {
        return reputation::run(ctx);
    }
    let client = ctx.client()?;
    let (id, action) = match cmd {
        NodeCommand::Status { id: None, .. } => {
            let items = client.get_all("/api/v1/nodes")?;
            match ctx.output() {
                OutputFormat::Json => print_json(&json!({ "items": items, "next_cursor": null })),
                OutputFormat::Table => print!("{}", node_table(&items)?.render()),
            }
            return Ok(());
        }
        NodeCommand::Status { id: Some(id), .. } => {
            let node = client.get_json(&format!("/api/v1/nodes/{}", segment(id)))?;
            emit(ctx.output(), &node, &node_details(&node)?.render());
            return Ok(());
        }
        NodeCommand::Cordon { id } => (id, "cordon"),
        NodeCommand::Uncordon { id } => (id, "uncordon"),
        NodeCommand::Drain { id } => (id, "drain"),
    };
    let node = client.post_empty(&format!("/api/v1/nodes/{}/{action}", segment(id)))?;
    let n: Node = view(&node, "node")?;
    let done = match action {
        "cordon" => "cordoned",
        "uncordon" => "uncordoned",
        _ => "drained",
    };
    emit(
        ctx.output(),
        &node,
        &format!("node {} {done} ({})", short(&n.id), status_text(&n)),
    );
    Ok(())
}

/// `Ready`, or `Ready,SchedulingDisabled` for a cordoned node.
pub fn status_text(n: &Node) -> String {
    if n.unschedulable {
        format!("{},SchedulingDisabled", n.status)
    } else {
        n.status.clone()
    }
}

/// The columns of [`node_table`].
pub const NODE_COLUMNS: [&str; 6] = ["ID", "STATUS", "CPU", "MEMORY", "ADDRESS", "AGE"];

/// ID, STATUS, CPU, MEMORY (allocatable), ADDRESS, AGE.
pub fn node_table(items: &[Value]) -> anyhow::Result<Table> {
    let now = Utc::now();
    let mut table = Table::new(NODE_COLUMNS);
    for item in items {
        let n: Node = view(item, "node")?;
        table.row(node_row(&n, now));
    }
    Ok(table)
}

/// One row of [`node_table`].
pub fn node_row(n: &Node, now: chrono::DateTime<Utc>) -> Vec<String> {
    vec![
        short(&n.id),
        status_text(n),
        CpuQuantity(n.resources_allocatable.cpu_millis).to_string(),
        human_memory(n.resources_allocatable.memory_bytes),
        n.address.clone(),
        age_of(n.joined_at.as_deref(), now),
    ]
}

/// One node as `FIELD VALUE` lines.
pub fn node_details(node: &Value) -> anyhow::Result<Table> {
    let n: Node = view(node, "node")?;
    let labels = n
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut table = Table::new(["FIELD", "VALUE"]);
    table.row(["id", n.id.as_str()]);
    table.row(["status".to_owned(), status_text(&n)]);
    table.row(["address", n.address.as_str()]);
    table.row(["operator", n.operator.as_str()]);
    table.row([
        "capacity".to_owned(),
        format!(
            "cpu {}, memory {}",
            CpuQuantity(n.resources_capacity.cpu_millis),
            human_memory(n.resources_capacity.memory_bytes)
        ),
    ]);
    table.row([
        "allocatable".to_owned(),
        format!(
            "cpu {}, memory {}",
            CpuQuantity(n.resources_allocatable.cpu_millis),
            human_memory(n.resources_allocatable.memory_bytes)
        ),
    ]);
    table.row(["labels".to_owned(), labels]);
    table.row(["joined".to_owned(), n.joined_at.clone().unwrap_or_default()]);
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_rows_show_allocatable_in_quantities() {
        let t = node_table(&[json!({
            "id": "cd".repeat(32), "address": "127.0.0.1:7000", "status": "Ready",
            "unschedulable": true,
            "resources_allocatable": {"cpu_millis": 3500, "memory_bytes": 8u64 << 30},
            "joined_at": "bad"
        })])
        .expect("table");
        assert_eq!(
            t.render(),
            "ID             STATUS                     CPU     MEMORY   ADDRESS          AGE\n\
             cdcdcdcdcdcd   Ready,SchedulingDisabled   3500m   8Gi      127.0.0.1:7000   ?\n"
        );
    }
}
