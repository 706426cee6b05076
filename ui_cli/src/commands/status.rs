//! `ui status [name]`: the workload list and a summary of the cluster, or one
//! workload and its instances.

use chrono::{DateTime, Utc};
use orchestrator_api::{ClusterStatus, Peer, Workload};
use orchestrator_shared_types::WorkloadInstance;
use serde_json::json;

use super::Context;
use crate::cli::{OutputFormat, StatusArgs};
use crate::output::{age, print_json, short, Table};
use crate::views::word;

use super::network::or_dash;

/// Runs `ui status`.
pub fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match &args.name {
        None => {
            let workloads = client.list_workloads()?;
            match ctx.output() {
                OutputFormat::Json => {
                    print_json(&json!({ "items": workloads.raw, "next_cursor": null }))
                }
                OutputFormat::Table => {
                    let table = workload_table(&workloads.data, Utc::now()).render();
                    let cluster = cluster_section(&client.cluster_status()?.data);
                    print!("{table}\n{cluster}");
                }
            }
        }
        Some(name) => {
            let workload = client.get_workload(name)?;
            let instances = client.list_instances(name)?;
            match ctx.output() {
                OutputFormat::Json => {
                    print_json(&json!({ "workload": workload.raw, "instances": instances.raw }))
                }
                OutputFormat::Table => {
                    let one = std::slice::from_ref(&workload.data);
                    print!("{}", workload_table(one, Utc::now()).render());
                    if let Some(line) = unscheduled_line(&workload.data) {
                        println!("{line}");
                    }
                    println!();
                    print!("{}", instance_table(&instances.data).render());
                }
            }
        }
    }
    Ok(())
}

/// `2 replicas unscheduled: REASON`, when some wait for a node.
pub fn unscheduled_line(w: &Workload) -> Option<String> {
    (w.status.unscheduled > 0).then(|| {
        format!(
            "{} replica{} unscheduled: {}",
            w.status.unscheduled,
            if w.status.unscheduled == 1 { "" } else { "s" },
            w.status.reason.as_deref().unwrap_or("no node fits")
        )
    })
}

/// NAME, REPLICAS (running/desired), UP-TO-DATE, FAILED, AGE (at `now`).
pub fn workload_table(items: &[Workload], now: DateTime<Utc>) -> Table {
    let mut table = Table::new(["NAME", "REPLICAS", "UP-TO-DATE", "FAILED", "AGE"]);
    for w in items {
        table.row([
            w.name().to_owned(),
            format!("{}/{}", w.status.running, w.replicas()),
            w.status.up_to_date.to_string(),
            w.status.failed.to_string(),
            age(w.workload.created_at, now),
        ]);
    }
    table
}

/// ID (short), NODE (short), STATUS, ADDRESS (on the node's bridge), PORTS
/// (published on the node, `HOST->CONTAINER/PROTO`), RESTARTS, REASON.
pub fn instance_table(items: &[WorkloadInstance]) -> Table {
    let mut table = Table::new([
        "ID", "NODE", "STATUS", "ADDRESS", "PORTS", "RESTARTS", "REASON",
    ]);
    for i in items {
        let ports: Vec<String> = i.ports.iter().map(ToString::to_string).collect();
        table.row([
            short(&i.id.to_string()),
            i.node_id.short(),
            word(&i.status),
            i.address.clone().unwrap_or_else(|| "-".into()),
            if ports.is_empty() {
                "-".into()
            } else {
                ports.join(",")
            },
            i.restarts.to_string(),
            i.reason.clone().unwrap_or_default(),
        ]);
    }
    table
}

/// The cluster for people: a [`cluster_line`], then a [`member_table`] when
/// the daemon lists its members (older daemons do not).
pub fn cluster_section(c: &ClusterStatus) -> String {
    let mut text = cluster_line(c);
    text.push('\n');
    if !c.members.is_empty() {
        text.push_str(&member_table(&c.members).render());
    }
    text
}

/// `Cluster: 3 nodes (2 ready, 1 down), control plane abababababab at 10.0.0.1:9090`.
pub fn cluster_line(c: &ClusterStatus) -> String {
    let mut line = format!(
        "Cluster: {} node{} ({} ready, {} down)",
        c.nodes_total,
        if c.nodes_total == 1 { "" } else { "s" },
        c.nodes_ready,
        c.nodes_down
    );
    match &c.control_plane {
        Some(id) => {
            line.push_str(&format!(", control plane {}", id.short()));
            let address = c
                .members
                .iter()
                .find(|m| m.node_id == *id)
                .map(|m| m.api_addr.as_str())
                .filter(|a| !a.is_empty());
            if let Some(address) = address {
                line.push_str(&format!(" at {address}"));
            }
        }
        // Members with roles gossip: a cluster that has lost its control plane.
        None if c.members.iter().any(|m| !m.role.is_empty()) => line.push_str(", no control plane"),
        None => {}
    }
    line
}

/// NODE (short), ROLE, API, STATUS. No `*` for the node that answered as in
/// `ui network peers`: a worker forwards this request to the control plane,
/// which would then be marked whichever node was asked.
pub fn member_table(members: &[Peer]) -> Table {
    let mut table = Table::new(["NODE", "ROLE", "API", "STATUS"]);
    for m in members {
        table.row([
            m.node_id.short(),
            or_dash(&m.role),
            or_dash(&m.api_addr),
            word(&m.status),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{fixtures, view};
    use serde_json::Value;

    #[test]
    fn unscheduled_replicas_are_explained() {
        let w: Workload = view(
            &fixtures::workload(json!({"spec": {"name": "picky", "replicas": 1},
                    "status": {"desired": 1, "unscheduled": 1,
                               "reason": "no node satisfies the owner's trust rules: 1 node excluded by trust.min_reputation (needs ≥ 0.99)"}})),
            "workload",
        )
        .unwrap();
        let line = unscheduled_line(&w).unwrap();
        assert!(
            line.starts_with("1 replica unscheduled: no node satisfies"),
            "{line}"
        );
        let ok: Workload = view(
            &fixtures::workload(json!({"spec": {"name": "ok", "replicas": 1},
                    "status": {"desired": 1, "running": 1}})),
            "workload",
        )
        .unwrap();
        assert!(unscheduled_line(&ok).is_none());
    }

    #[test]
    fn workload_rows() {
        let w: Workload = view(
            &fixtures::workload(json!({
                "spec": {"name": "hello", "replicas": 3},
                "status": {"running": 2, "up_to_date": 1, "failed": 1},
                "created_at": "2026-11-22T11:55:00Z"
            })),
            "workload",
        )
        .expect("parses");
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            workload_table(&[w], now).render(),
            "NAME    REPLICAS   UP-TO-DATE   FAILED   AGE\n\
             hello   2/3        1            1        5m\n"
        );
    }

    #[test]
    fn instance_rows() {
        let i: WorkloadInstance = view(
            &fixtures::instance(json!({
                "id": "9f1c2d3e-4b5a-4c6d-8e7f-001122334455",
                "node_id": "ab".repeat(32), "status": "Failed", "restarts": 4,
                "reason": "CrashLoop"
            })),
            "instance",
        )
        .expect("parses");
        let running: WorkloadInstance = view(
            &fixtures::instance(json!({
                "id": "0a1c2d3e-4b5a-4c6d-8e7f-001122334455",
                "node_id": "cd".repeat(32), "status": "Running", "address": "10.88.0.7",
                "ports": [{"container_port": 8088, "host_port": 30001, "protocol": "TCP"},
                          {"container_port": 53, "host_port": 30002, "protocol": "UDP"}]
            })),
            "instance",
        )
        .expect("parses");
        let t = instance_table(&[i, running]);
        assert_eq!(
            t.render(),
            "ID             NODE           STATUS    ADDRESS     PORTS                           RESTARTS   REASON\n\
             9f1c2d3e4b5a   abababababab   Failed    -           -                               4          CrashLoop\n\
             0a1c2d3e4b5a   cdcdcdcdcdcd   Running   10.88.0.7   30001->8088/tcp,30002->53/udp   0\n"
        );
    }

    fn cluster(value: Value) -> ClusterStatus {
        view(&value, "cluster status").expect("parses")
    }

    #[test]
    fn cluster_section_names_the_control_plane_and_lists_members() {
        let c = cluster(json!({
            "nodes_total": 3, "nodes_ready": 2, "nodes_down": 1, "workloads_total": 1,
            "control_plane": "ab".repeat(32),
            "members": [
                {"node_id": "ab".repeat(32), "gossip_addr": "10.0.0.1:7946",
                 "api_addr": "10.0.0.1:9090", "generation": 1, "role": "control-plane",
                 "status": "Ready", "live": true, "is_self": true},
                {"node_id": "cd".repeat(32), "gossip_addr": "10.0.0.2:7946",
                 "api_addr": "10.0.0.2:9090", "generation": 1, "role": "worker",
                 "status": "Ready", "live": true, "is_self": false},
                {"node_id": "ef".repeat(32), "gossip_addr": "10.0.0.3:7946",
                 "api_addr": "10.0.0.3:9090", "generation": 1, "role": "worker",
                 "status": "Down", "live": false, "is_self": false}
            ]
        }));
        assert_eq!(
            cluster_section(&c),
            "Cluster: 3 nodes (2 ready, 1 down), control plane abababababab at 10.0.0.1:9090\n\
             NODE           ROLE            API             STATUS\n\
             abababababab   control-plane   10.0.0.1:9090   Ready\n\
             cdcdcdcdcdcd   worker          10.0.0.2:9090   Ready\n\
             efefefefefef   worker          10.0.0.3:9090   Down\n"
        );
    }

    #[test]
    fn cluster_section_of_an_older_daemon_is_one_line() {
        let c = cluster(json!({"nodes_total": 1, "nodes_ready": 1, "workloads_total": 0}));
        assert_eq!(cluster_section(&c), "Cluster: 1 node (1 ready, 0 down)\n");
    }

    #[test]
    fn cluster_line_without_control_plane() {
        let member = |role: &str| {
            json!({"node_id": "ab".repeat(32), "api_addr": "127.0.0.1:9090",
                   "role": role, "status": "Ready", "live": true, "is_self": true})
        };
        // A standalone daemon: its member has no role, and there is no control plane.
        let c = cluster(
            json!({"nodes_total": 1, "nodes_ready": 1, "control_plane": null,
                               "members": [member("")]}),
        );
        assert_eq!(cluster_line(&c), "Cluster: 1 node (1 ready, 0 down)");
        assert!(cluster_section(&c).contains("abababababab   -      127.0.0.1:9090   Ready"));
        // Gossiping members but no control plane: say so.
        let c = cluster(json!({"nodes_total": 2, "nodes_ready": 1, "nodes_down": 1,
                               "members": [member("worker")]}));
        assert_eq!(
            cluster_line(&c),
            "Cluster: 2 nodes (1 ready, 1 down), no control plane"
        );
        // A control plane that is not among the members: no address to show.
        let c = cluster(json!({"nodes_total": 1, "nodes_ready": 1,
                               "control_plane": "12".repeat(32)}));
        assert_eq!(
            cluster_line(&c),
            "Cluster: 1 node (1 ready, 0 down), control plane 121212121212"
        );
    }
}
