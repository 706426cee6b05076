//! `ui node status [id] [--sort reputation] | cordon <id> | uncordon <id> |
//! drain <id> | remove <id>`.

mod reputation;

use chrono::{DateTime, Utc};
use orchestrator_api::routes::NodeAction;
use orchestrator_shared_types::{CpuQuantity, Node};
use serde_json::json;

use super::Context;
use crate::cli::{NodeCommand, NodeSort, OutputFormat};
use crate::output::{age, emit, human_memory, print_json, Table};
use crate::views::word;

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
        NodeCommand::Remove { id } => return super::cluster::remove(ctx, &client, id),
        NodeCommand::Status { id: None, .. } => {
            let nodes = client.list_nodes()?;
            match ctx.output() {
                OutputFormat::Json => {
                    print_json(&json!({ "items": nodes.raw, "next_cursor": null }))
                }
                OutputFormat::Table => print!("{}", node_table(&nodes.data, Utc::now()).render()),
            }
            return Ok(());
        }
        NodeCommand::Status { id: Some(id), .. } => {
            let node = client.get_node(id)?;
            emit(ctx.output(), &node.raw, &node_details(&node.data).render());
            return Ok(());
        }
        NodeCommand::Cordon { id } => (id, NodeAction::Cordon),
        NodeCommand::Uncordon { id } => (id, NodeAction::Uncordon),
        NodeCommand::Drain { id } => (id, NodeAction::Drain),
    };
    let node = client.node_action(id, action)?;
    let done = match action {
        NodeAction::Cordon => "cordoned",
        NodeAction::Uncordon => "uncordoned",
        NodeAction::Drain => "drained",
    };
    emit(
        ctx.output(),
        &node.raw,
        &format!(
            "node {} {done} ({})",
            node.data.id.short(),
            status_text(&node.data)
        ),
    );
    Ok(())
}

/// `Ready`, or `Ready,SchedulingDisabled` for a cordoned node.
pub fn status_text(n: &Node) -> String {
    let status = word(&n.status);
    if n.unschedulable {
        format!("{status},SchedulingDisabled")
    } else {
        status
    }
}

/// The columns of [`node_table`].
pub const NODE_COLUMNS: [&str; 6] = ["ID", "STATUS", "CPU", "MEMORY", "ADDRESS", "AGE"];

/// ID, STATUS, CPU, MEMORY (allocatable), ADDRESS, AGE (at `now`).
pub fn node_table(items: &[Node], now: DateTime<Utc>) -> Table {
    let mut table = Table::new(NODE_COLUMNS);
    for n in items {
        table.row(node_row(n, now));
    }
    table
}

/// One row of [`node_table`].
pub fn node_row(n: &Node, now: DateTime<Utc>) -> Vec<String> {
    vec![
        n.id.short(),
        status_text(n),
        CpuQuantity(n.resources_allocatable.cpu_millis).to_string(),
        human_memory(n.resources_allocatable.memory_bytes),
        n.address.clone(),
        age(n.joined_at, now),
    ]
}

/// One node as `FIELD VALUE` lines.
pub fn node_details(n: &Node) -> Table {
    let labels = n
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut table = Table::new(["FIELD", "VALUE"]);
    table.row(["id".to_owned(), n.id.to_hex()]);
    table.row(["status".to_owned(), status_text(n)]);
    table.row(["address", n.address.as_str()]);
    table.row(["operator".to_owned(), n.operator.to_hex()]);
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
    // As the server sent it (chrono serializes with AutoSi and Z).
    let joined = n
        .joined_at
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    table.row(["joined".to_owned(), joined]);
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{fixtures, view};

    #[test]
    fn node_rows_show_allocatable_in_quantities() {
        let n: Node = view(
            &fixtures::node(json!({
                "id": "cd".repeat(32), "address": "127.0.0.1:7000", "status": "Ready",
                "unschedulable": true,
                "resources_allocatable": {"cpu_millis": 3500, "memory_bytes": 8u64 << 30},
                "joined_at": "2026-11-22T09:00:00Z"
            })),
            "node",
        )
        .expect("parses");
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            node_table(&[n], now).render(),
            "ID             STATUS                     CPU     MEMORY   ADDRESS          AGE\n\
             cdcdcdcdcdcd   Ready,SchedulingDisabled   3500m   8Gi      127.0.0.1:7000   3h\n"
        );
    }
}
