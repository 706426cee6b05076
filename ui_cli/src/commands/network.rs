//! `ui network status | peers | discover`: the cluster as the node asked sees
//! it. The daemon answers these routes itself (a worker does not forward them),
//! so pointing `--server` at each node in turn shows where views differ.
//!
//! A standalone daemon (no gossip) has no `/api/v1/network` routes and answers
//! 404: `status` and `discover` then say so and succeed, and `peers` lists the
//! daemon's nodes instead.

use orchestrator_api::{NetworkStatus, Peer, Reachability};
use orchestrator_shared_types::{Node, NodeStatus};
use serde_json::{json, Value};

use super::Context;
use crate::cli::NetworkCommand;
use crate::client::{ApiClient, ClientError};
use crate::output::{emit, human_memory, spinner, Table};
use crate::views::{view, word};

/// What `ui network status` and `discover` print for a standalone daemon.
pub const STANDALONE: &str = "standalone node (no gossip): this daemon is not in cluster mode";

/// Runs `ui network ...`.
pub fn run(ctx: &Context, cmd: &NetworkCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let (value, text) = match cmd {
        NetworkCommand::Status => status_report(fetch_status(&client)?)?,
        NetworkCommand::Peers => peers_report(fetch_peers(&client)?)?,
        NetworkCommand::Discover => {
            let probing = spinner(format!("{} is probing its peers", client.server()));
            let found = fetch_discover(&client);
            probing.finish_and_clear();
            discover_report(found?)?
        }
    };
    emit(ctx.output(), &value, &text);
    Ok(())
}

/// What `ui network status` prints (JSON, text): the server's answer and
/// `key: value` lines, or a note for a standalone daemon (`None`).
pub fn status_report(answer: Option<Value>) -> anyhow::Result<(Value, String)> {
    match answer {
        None => Ok((json!({ "role": "standalone" }), STANDALONE.to_owned())),
        Some(answer) => {
            let text = status_lines(&view(&answer, "network status")?);
            Ok((answer, text))
        }
    }
}

/// What `ui network peers` prints (JSON, text): every peer as one page, and
/// the peer table.
pub fn peers_report(items: Vec<Value>) -> anyhow::Result<(Value, String)> {
    let text = peer_table(&items)?.render();
    Ok((json!({ "items": items, "next_cursor": null }), text))
}

/// What `ui network discover` prints (JSON, text): every report as one page
/// and the reachability table, or an empty page and a note for a standalone
/// daemon (`None`).
pub fn discover_report(items: Option<Vec<Value>>) -> anyhow::Result<(Value, String)> {
    let Some(items) = items else {
        return Ok((
            json!({ "items": [], "next_cursor": null }),
            STANDALONE.to_owned(),
        ));
    };
    let text = discover_table(&items)?.render();
    Ok((json!({ "items": items, "next_cursor": null }), text))
}

/// `None` when the error is the 404 of a daemon without the network routes.
fn unless_standalone<T>(result: Result<T, ClientError>) -> Result<Option<T>, ClientError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::Api { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The items of a list answer.
fn items(list: Value) -> Vec<Value> {
    match list {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

/// `GET /api/v1/network` as the server sent it, or `None` from a standalone daemon.
pub fn fetch_status(client: &ApiClient) -> Result<Option<Value>, ClientError> {
    Ok(unless_standalone(client.network_status())?.map(|r| r.raw))
}

/// Every page of `GET /api/v1/network/discover`, or `None` from a standalone daemon.
pub fn fetch_discover(client: &ApiClient) -> Result<Option<Vec<Value>>, ClientError> {
    Ok(unless_standalone(client.network_discover())?.map(|r| items(r.raw)))
}

/// Every page of `GET /api/v1/network/peers`; from a standalone daemon, its
/// nodes (`GET /api/v1/nodes`) in the same shape (see [`peer_from_node`]).
pub fn fetch_peers(client: &ApiClient) -> anyhow::Result<Vec<Value>> {
    match unless_standalone(client.network_peers())? {
        Some(peers) => Ok(items(peers.raw)),
        None => items(client.list_nodes()?.raw)
            .iter()
            .map(peer_from_node)
            .collect(),
    }
}

/// A node of `/api/v1/nodes` as a peer object, as a daemon without gossip
/// makes them: no gossip address, generation 0, the role from the
/// `univrs.io/role` label, live unless Down. Which node is the daemon itself
/// is not known from the node list, so `is_self` is false.
pub fn peer_from_node(node: &Value) -> anyhow::Result<Value> {
    let n: Node = view(node, "node")?;
    let peer = Peer {
        node_id: n.id,
        gossip_addr: String::new(),
        api_addr: n.address,
        generation: 0,
        role: n.labels.get("univrs.io/role").cloned().unwrap_or_default(),
        status: n.status,
        live: n.status != NodeStatus::Down,
        is_self: false,
    };
    Ok(serde_json::to_value(peer)?)
}

/// The short id of a peer, with `*` after it for the node that answered.
pub fn node_cell(p: &Peer) -> String {
    let id = p.node_id.short();
    if p.is_self {
        format!("{id}*")
    } else {
        id
    }
}

/// `-` for an empty cell.
pub fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// NODE (`*` = the node asked), ROLE, GOSSIP, API, STATUS, LIVE.
pub fn peer_table(items: &[Value]) -> anyhow::Result<Table> {
    let mut table = Table::new(["NODE", "ROLE", "GOSSIP", "API", "STATUS", "LIVE"]);
    for item in items {
        let p: Peer = view(item, "peer")?;
        table.row([
            node_cell(&p),
            or_dash(&p.role),
            or_dash(&p.gossip_addr),
            or_dash(&p.api_addr),
            word(&p.status),
            yes_no(p.live).to_owned(),
        ]);
    }
    Ok(table)
}

/// NODE (`*` = the node asked), API, REACHABLE, LATENCY, and ERROR for the
/// peers that did not answer.
pub fn discover_table(items: &[Value]) -> anyhow::Result<Table> {
    let mut table = Table::new(["NODE", "API", "REACHABLE", "LATENCY", "ERROR"]);
    for item in items {
        let r: Reachability = view(item, "reachability report")?;
        table.row([
            node_cell(&r.peer),
            or_dash(&r.peer.api_addr),
            yes_no(r.reachable).to_owned(),
            r.latency_ms
                .map(|ms| format!("{ms:.1}ms"))
                .unwrap_or_else(|| "-".to_owned()),
            r.error.unwrap_or_default(),
        ]);
    }
    Ok(table)
}

/// `key: value` lines, values aligned.
fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{:<w$} {v}\n", format!("{k}:"), w = width + 1))
        .collect()
}

/// A byte count for people (`12345` → `12.1KiB`).
fn human_bytes(n: u64) -> String {
    format!("{}B", human_memory(n))
}

/// `ui network status` for people: the node, its control plane, peer counts,
/// then the gossip settings and counters; after the standalone note when the
/// daemon answers for a node that does not gossip.
pub fn status_lines(n: &NetworkStatus) -> String {
    let control_plane = match (&n.control_plane, &n.control_plane_address) {
        (Some(id), Some(addr)) => format!("{id} at {addr}"),
        (Some(id), None) => id.to_hex(),
        (None, _) => "none live".to_owned(),
    };
    let mut pairs = vec![
        ("node", n.node_id.to_hex()),
        ("role", or_dash(&n.role)),
        ("control plane", control_plane),
        (
            "peers",
            format!("{} live, {} dead", n.peers_live, n.peers_dead),
        ),
    ];
    if let Some(l) = &n.leader {
        let this = if l.node_id == n.node_id {
            " (this node)"
        } else {
            ""
        };
        let term = l.term.map(|t| format!(", term {t}")).unwrap_or_default();
        pairs.push((
            "leader",
            format!("{} at {}{this}{term}", l.node_id, l.address),
        ));
    }
    match &n.gossip {
        None => pairs.push(("gossip", "off".to_owned())),
        Some(g) => pairs.extend([
            ("cluster id", g.cluster_id.clone()),
            ("gossip listen", g.listen_addr.clone()),
            ("gossip advertise", g.advertise_addr.clone()),
            (
                "seeds",
                if g.seeds.is_empty() {
                    "-".to_owned()
                } else {
                    g.seeds.join(", ")
                },
            ),
            ("gossip interval", format!("{}ms", g.gossip_interval_ms)),
            ("phi threshold", g.phi_threshold.to_string()),
            ("dead node grace", format!("{}s", g.dead_node_grace_seconds)),
            ("generation", g.generation.to_string()),
            ("rejected records", g.rejected_records.to_string()),
            ("bytes sent", human_bytes(g.bytes_sent)),
            ("bytes received", human_bytes(g.bytes_received)),
        ]),
    }
    let lines = key_values(&pairs);
    if n.role == "standalone" && n.gossip.is_none() {
        format!("{STANDALONE}\n{lines}")
    } else {
        lines
    }
}

#[cfg(test)]
mod tests;
