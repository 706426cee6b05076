//! `ui node status --sort reputation`: every node with its reputation as the
//! user sees it, highest composite first.
//!
//! Reputation is personal (SPEC §17): attestations count through the
//! operators the user trusts, so each request passes the `trusted_operators`
//! of `policy/trust.toml` as `?trusted=HEX,HEX` (no parameter when there are
//! none) and the daemon computes the scores for that view, every node's in
//! one request: `GET /api/v1/reputation`.

use anyhow::Context as _;
use chrono::Utc;
use orchestrator_shared_types::PublicKey;
use serde_json::{json, Value};

use orchestrator_api::Reputation;
use orchestrator_shared_types::Node;

use super::{node_row, Context, NODE_COLUMNS};
use crate::cli::OutputFormat;
use crate::client::ApiClient;
use crate::output::{print_json, spinner, Table};
use crate::profile::TrustPolicy;
use crate::views::view;

/// Runs `ui node status --sort reputation`.
pub fn run(ctx: &Context) -> anyhow::Result<()> {
    let dir = ctx.config_dir()?;
    let trust = TrustPolicy::load(&dir)
        .with_context(|| format!("reading {}", dir.trust_file().display()))?;
    let client = ctx.client()?;
    let Value::Array(nodes) = client.list_nodes()?.raw else {
        anyhow::bail!("unexpected node list from the server: not a list");
    };
    let reading = spinner(format!("reading the reputation of {} nodes", nodes.len()));
    let items = with_reputations(&client, nodes, &trust.trusted_operators);
    reading.finish_and_clear();
    let items = items?;
    match ctx.output() {
        OutputFormat::Json => print_json(&json!({ "items": items, "next_cursor": null })),
        OutputFormat::Table => print!("{}", reputation_table(&items)?.render()),
    }
    Ok(())
}

/// The nodes, each with its reputation as `reputation`, highest composite
/// first (ties by id).
pub fn with_reputations(
    client: &ApiClient,
    nodes: Vec<Value>,
    trusted: &[PublicKey],
) -> anyhow::Result<Vec<Value>> {
    let Value::Array(scores) = client
        .reputations(trusted)
        .context("reading the nodes' reputations")?
        .raw
    else {
        anyhow::bail!("unexpected reputations from the server: not a list");
    };
    let mut by_node: std::collections::HashMap<String, Value> = scores
        .into_iter()
        .filter_map(|r| Some((r.get("node")?.as_str()?.to_owned(), r)))
        .collect();
    let mut items = Vec::with_capacity(nodes.len());
    for mut node in nodes {
        let id = id_of(&node).to_owned();
        if id.is_empty() {
            anyhow::bail!("unexpected node from the server: it has no id");
        }
        // A node that joined since the list was read has none yet: `-`.
        let reputation = by_node.remove(&id).unwrap_or(Value::Null);
        let Some(fields) = node.as_object_mut() else {
            anyhow::bail!("unexpected node from the server: not an object");
        };
        fields.insert("reputation".to_owned(), reputation);
        items.push(node);
    }
    sort_by_reputation(&mut items);
    Ok(items)
}

/// A node's id, or `""`.
fn id_of(item: &Value) -> &str {
    item.get("id").and_then(Value::as_str).unwrap_or("")
}

/// A node's composite reputation; lowest when missing or not a number.
fn composite(item: &Value) -> f64 {
    item.pointer("/reputation/composite")
        .and_then(Value::as_f64)
        .filter(|c| !c.is_nan())
        .unwrap_or(f64::NEG_INFINITY)
}

/// Highest composite first; equal ones by id, so the order is stable.
pub fn sort_by_reputation(items: &mut [Value]) {
    items.sort_by(|a, b| {
        composite(b)
            .total_cmp(&composite(a))
            .then_with(|| id_of(a).cmp(id_of(b)))
    });
}

/// The columns of the node table, then OPERATOR and REPUTATION (composite, 3
/// decimals; `-` when the item has none).
pub fn reputation_table(items: &[Value]) -> anyhow::Result<Table> {
    let now = Utc::now();
    let mut table = Table::new(NODE_COLUMNS.into_iter().chain(["OPERATOR", "REPUTATION"]));
    for item in items {
        let n: Node = view(item, "node")?;
        let r: Option<Reputation> = match item.get("reputation") {
            None | Some(Value::Null) => None,
            Some(r) => Some(view(r, "reputation")?),
        };
        let operator = r.as_ref().map_or(n.operator, |r| r.operator);
        let mut row = node_row(&n, now);
        row.push(operator.short());
        row.push(r.map_or_else(|| "-".to_owned(), |r| format!("{:.3}", r.composite)));
        table.row(row);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::test_server::serve_sequence;
    use crate::views::fixtures;
    use orchestrator_api::routes::node_reputation as reputation_path;

    /// A node that joins in the future: its age is 0s.
    fn node(id: &str, operator: &str) -> Value {
        fixtures::node(json!({
            "id": id, "address": "10.0.0.1:7000", "status": "Ready",
            "operator": operator.repeat(32),
            "resources_allocatable": {"cpu_millis": 2000, "memory_bytes": 4u64 << 30},
            "joined_at": "2999-01-01T00:00:00Z"
        }))
    }

    fn reputation(node: &str, operator: &str, composite: f64) -> Value {
        json!({
            "node": node, "operator": operator, "uptime": 1.0, "reliability": 0.9,
            "honesty": 1.0, "age": 0.5, "attestation_trust": 0.25, "composite": composite,
            "active_days": 40, "qualifying_attestations": 2
        })
    }

    #[test]
    fn the_trusted_operators_travel_in_the_query() {
        let id = "ab".repeat(32);
        assert_eq!(
            reputation_path(&id, &[]),
            format!("/api/v1/nodes/{id}/reputation")
        );
        assert_eq!(
            reputation_path(&id, &[PublicKey([1; 32]), PublicKey([2; 32])]),
            format!(
                "/api/v1/nodes/{id}/reputation?trusted={},{}",
                "01".repeat(32),
                "02".repeat(32)
            )
        );
    }

    #[test]
    fn nodes_are_ordered_by_composite_descending() {
        let (a, b, c) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        let nodes = [node(&a, "01"), node(&b, "02"), node(&c, "03")];
        let reputations = [
            reputation(&a, &"0a".repeat(32), 0.4),
            reputation(&b, &"0b".repeat(32), 0.9),
            reputation(&c, &"0c".repeat(32), 0.61),
        ];
        let page = json!({ "items": nodes, "next_cursor": null }).to_string();
        let scores = json!({ "items": reputations, "next_cursor": null }).to_string();
        let (url, server) = serve_sequence(&[("200 OK", &page), ("200 OK", &scores)]);
        let client = ApiClient::new(&url, None).expect("client");
        let Value::Array(listed) = client.list_nodes().expect("nodes").raw else {
            panic!("not a list");
        };
        let trusted = [PublicKey([7; 32])];
        let items = with_reputations(&client, listed, &trusted).expect("reputations");
        let order: Vec<&str> = items.iter().map(id_of).collect();
        assert_eq!(order, [b.as_str(), c.as_str(), a.as_str()]);
        assert_eq!(items[0]["reputation"]["composite"], json!(0.9));
        assert_eq!(items[0]["reputation"]["qualifying_attestations"], json!(2));
        let requests = server.join().expect("server thread");
        // One request for every node's reputation, not one per node.
        assert_eq!(requests.len(), 2);
        let expected = format!(
            "get /api/v1/reputation?limit=1000&trusted={} http/1.1",
            "07".repeat(32)
        );
        assert!(requests[1].0.starts_with(&expected), "{}", requests[1].0);
        assert_eq!(
            reputation_table(&items).expect("table").render(),
            "ID             STATUS   CPU   MEMORY   ADDRESS         AGE   OPERATOR       REPUTATION\n\
             bbbbbbbbbbbb   Ready    2     4Gi      10.0.0.1:7000   0s    0b0b0b0b0b0b   0.900\n\
             cccccccccccc   Ready    2     4Gi      10.0.0.1:7000   0s    0c0c0c0c0c0c   0.610\n\
             aaaaaaaaaaaa   Ready    2     4Gi      10.0.0.1:7000   0s    0a0a0a0a0a0a   0.400\n"
        );
    }

    #[test]
    fn ties_go_by_id_and_missing_scores_go_last() {
        let id = |c: &str| c.repeat(64);
        let mut items = vec![
            fixtures::node(json!({"id": id("c"), "reputation": {"composite": 0.5}})),
            fixtures::node(json!({"id": id("d")})),
            fixtures::node(json!({"id": id("b"), "reputation": {"composite": 0.5}})),
            fixtures::node(json!({"id": id("a"), "reputation": {"composite": 0.2}})),
        ];
        sort_by_reputation(&mut items);
        let order: Vec<&str> = items.iter().map(id_of).collect();
        assert_eq!(order, [id("b"), id("c"), id("a"), id("d")]);
        let t = reputation_table(&items[3..]).expect("table").render();
        let cells: Vec<&str> = t.lines().nth(1).expect("row").split_whitespace().collect();
        // Every node has an operator (the node's own when no reputation
        // names one); the missing score shows as `-`.
        assert_eq!(cells[cells.len() - 2..], ["040404040404", "-"], "{t}");
    }

    #[test]
    fn a_failed_reputation_says_what_failed() {
        let id = "ab".repeat(32);
        let (url, server) = serve_sequence(&[(
            "503 Service Unavailable",
            r#"{"error":{"code":"unavailable","message":"reputation and credit are kept by the control plane"}}"#,
        )]);
        let client = ApiClient::new(&url, None).expect("client");
        let err = with_reputations(&client, vec![node(&id, "01")], &[]).expect_err("503");
        assert_eq!(
            format!("{err:#}"),
            "reading the nodes' reputations: reputation and credit are kept by the control \
             plane (unavailable, HTTP 503)"
        );
        let requests = server.join().expect("server thread");
        assert!(
            requests[0]
                .0
                .starts_with("get /api/v1/reputation?limit=1000 http/1.1"),
            "{}",
            requests[0].0
        );
    }

    #[test]
    fn a_node_without_a_reputation_shows_none() {
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        let page = json!({ "items": [reputation(&a, &"0a".repeat(32), 0.5)], "next_cursor": null });
        let (url, _server) = serve_sequence(&[("200 OK", &page.to_string())]);
        let client = ApiClient::new(&url, None).expect("client");
        let items = with_reputations(&client, vec![node(&a, "01"), node(&b, "02")], &[])
            .expect("reputations");
        assert_eq!(items[0]["reputation"]["composite"], json!(0.5));
        assert_eq!(items[1]["reputation"], Value::Null, "{}", items[1]);
    }
}
