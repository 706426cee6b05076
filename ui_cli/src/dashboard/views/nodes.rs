//! Nodes: capacity, labels and taints, operator, admission, reputation;
//! cordon, uncordon and drain. Four calls whatever the number of nodes:
//! the nodes, what is requested of each (the cluster's status), every
//! node's reputation as the user sees it (through the operators
//! `policy/trust.toml` trusts), and the cluster's members.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};
use orchestrator_api::{ClusterMember, Reputation};
use orchestrator_shared_types::{Node, NodeId, NodeStatus, Resources};

use super::super::live::call;
use super::{gib, millis_as_cores, page, status_badge, unreachable, Params, Shared};
use crate::client::ClientError;

/// What the page shows of the cluster's admission: its members, or why
/// there are none.
enum Members {
    /// A standalone node, or a worker: no member list is kept here.
    NotKept,
    /// The members by node id.
    Listed(HashMap<NodeId, ClusterMember>),
    /// They could not be read.
    Failed(String),
}

struct NodesPage {
    nodes: Vec<Node>,
    /// What the instances on each node request.
    requested: std::collections::BTreeMap<NodeId, Resources>,
    reputations: HashMap<NodeId, Reputation>,
    members: Members,
}

/// `GET /nodes`.
pub async fn nodes(State(dash): State<Shared>, q: Params) -> Response {
    let trusted = dash
        .config_dir
        .as_ref()
        .and_then(|d| user_config::TrustPolicy::load(d).ok())
        .map(|p| p.trusted_operators)
        .unwrap_or_default();
    let read = call(&dash, move |c| {
        let nodes = c.list_nodes()?.data;
        let requested = c.cluster_status()?.data.requested;
        // A daemon without reputation (a worker) shows none, not an error.
        let reputations = c
            .reputations(&trusted)
            .map(|r| r.data.into_iter().map(|r| (r.node, r)).collect())
            .unwrap_or_default();
        let members = match c.cluster_members() {
            Ok(r) => Members::Listed(r.data.into_iter().map(|m| (m.node_id, m)).collect()),
            Err(ClientError::Api { status: 404, .. }) => Members::NotKept,
            Err(e) => Members::Failed(e.to_string()),
        };
        Ok(NodesPage {
            nodes,
            requested,
            reputations,
            members,
        })
    })
    .await;
    let body = html! {
        h1 { "Nodes" }
        @match &read {
            Err(e) => (unreachable(&dash, "the nodes", e)),
            Ok(p) => {
                (table(p))
                p.quiet { (p.nodes.iter().filter(|n| n.status == NodeStatus::Ready).count()) " of " (p.nodes.len()) " ready" }
            }
        }
    };
    page(&dash, &q, "Nodes", "/nodes", body)
}

fn table(p: &NodesPage) -> Markup {
    html! {
        div.scroll { table {
            caption.sr { "The cluster's nodes" }
            thead { tr {
                th scope="col" { "Node" } th scope="col" { "Status" } th scope="col" { "Operator" }
                th scope="col" { "Admission" } th scope="col" { "CPU" br; small { "requested / offered" } } th scope="col" { "Memory" br; small { "requested / offered" } }
                th scope="col" { "Labels and taints" } th scope="col" { "Reputation" } th scope="col" { "Actions" }
            } }
            tbody { @for n in &p.nodes {
                tr data-node=(n.id.to_string()) {
                    th scope="row" { code title=(n.id.to_string()) { (n.id.short()) } br; small { (n.address) } }
                    td { (status_badge(&format!("{:?}", n.status))) @if n.unschedulable { " " span.badge.warn { "cordoned" } } }
                    td { code title=(n.operator.to_string()) { (n.operator.short()) } }
                    td data-field="admission" { (admission(&p.members, n)) }
                    @let used = p.requested.get(&n.id).copied().unwrap_or_default();
                    td.num data-field="cpu" { (millis_as_cores(used.cpu_millis)) " / " (millis_as_cores(n.resources_allocatable.cpu_millis)) br; small { "machine " (millis_as_cores(n.resources_capacity.cpu_millis)) } }
                    td.num data-field="memory" { (gib(used.memory_bytes)) " / " (gib(n.resources_allocatable.memory_bytes)) br; small { "machine " (gib(n.resources_capacity.memory_bytes)) } }
                    td { @for (k, v) in &n.labels { span.tag { (k) "=" (v) } " " } @for t in &n.taints { span.tag.warn { (t.key) "=" (t.value) ":" (format!("{:?}", t.effect)) } " " } }
                    td data-field="reputation" { (reputation(p.reputations.get(&n.id))) }
                    td.actions { (actions(n)) }
                }
            } }
        } }
    }
}

/// How the node came into the cluster.
fn admission(members: &Members, n: &Node) -> Markup {
    html! {
        @match members {
            Members::NotKept => span.quiet { "no member list here" },
            Members::Failed(e) => span.quiet title=(e) { "unknown" },
            Members::Listed(list) => @match list.get(&n.id) {
                Some(m) => {
                    (m.role.as_str()) br;
                    small { "admitted " (m.admitted_at.format("%Y-%m-%d")) @if let Some(s) = &m.subnet { ", " (s) } }
                },
                None => span.quiet { "not admitted by token (the founding control plane)" },
            },
        }
    }
}

fn reputation(r: Option<&Reputation>) -> Markup {
    html! {
        @match r {
            Some(r) => {
                strong { (format!("{:.2}", r.composite)) } br;
                small { "uptime " (format!("{:.2}", r.uptime)) ", reliability " (format!("{:.2}", r.reliability)) ", honesty " (format!("{:.2}", r.honesty)) ", age " (format!("{:.2}", r.age)) ", attested " (format!("{:.2}", r.attestation_trust)) }
            },
            None => "—",
        }
    }
}

fn actions(n: &Node) -> Markup {
    let id = n.id.to_string();
    html! {
        @for action in ["cordon", "uncordon", "drain"] {
            @if (action == "uncordon") == n.unschedulable || action == "drain" {
                form method="post" action=(format!("/nodes/{id}/{action}")) data-confirm=(if action == "drain" { format!("Drain node {}? Its instances move elsewhere.", n.id.short()) } else { String::new() }) {
                    button type="submit" aria-label=(format!("{action} node {}", n.id.short())) { (action) }
                }
            }
        }
    }
}
