//! Many hosts: three real daemons, each in its own network namespace with
//! its own address (see `multihost_common`), form one cluster by gossip.
//! A workload spreads over them; a killed host's replicas run elsewhere; a
//! returning host and a healed partition leave exactly the desired replicas
//! running; 10 % packet loss for a minute raises no false alarm. Gossip is
//! sealed with the lab's key: a fourth host with another key is never
//! admitted, and the members rotate their key by SIGHUP without a restart.
//!
//! These need root (CI runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod multihost_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use cluster_manager::GossipKey;
use multihost_common::capture::{contains_ignoring_case, Capture};
use multihost_common::{eventually, write_key_file, Lab, API_PORT, GOSSIP_PORT};
use serde_json::{json, Value};

fn daemon() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"))
}

const DEADLINE: Duration = Duration::from_secs(30);

fn manifest(name: &str, replicas: u32) -> Value {
    json!({
        "name": name,
        "replicas": replicas,
        "containers": [{
            "name": "main",
            "image": "example.org/web:1",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
        }],
        "restart_policy": "Always"
    })
}

/// Node id of every host, from its own `/api/v1/network`.
async fn node_ids(lab: &Lab) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..lab.hosts.len() {
        let v = lab.get(i, "/api/v1/network").await.expect("network status");
        ids.push(v["node_id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Node status by id, as host `via` answers `/api/v1/nodes`.
async fn node_statuses(lab: &Lab, via: usize) -> Option<BTreeMap<String, String>> {
    let v = lab.get(via, "/api/v1/nodes").await?;
    Some(
        v["items"]
            .as_array()?
            .iter()
            .map(|n| {
                (
                    n["id"].as_str().unwrap_or_default().to_owned(),
                    n["status"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

/// Running instances per node id, and every instance id, of workload `name`.
async fn running(
    lab: &Lab,
    via: usize,
    name: &str,
) -> Option<(BTreeMap<String, usize>, BTreeSet<String>)> {
    let v = lab
        .get(
            via,
            &format!("/api/v1/workloads/{name}/instances?limit=1000"),
        )
        .await?;
    let mut per_node = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for i in v["items"].as_array()? {
        ids.insert(i["id"].as_str().unwrap_or_default().to_owned());
        if i["status"] == "Running" {
            *per_node
                .entry(i["node_id"].as_str().unwrap_or_default().to_owned())
                .or_insert(0) += 1;
        }
    }
    Some((per_node, ids))
}

/// Instance records of `name` on `allowed` nodes that are not Running (say,
/// left `Unknown` by a partition until the control plane can see them).
async fn not_running_on(lab: &Lab, name: &str, allowed: &[&String]) -> Option<usize> {
    let v = lab
        .get(0, &format!("/api/v1/workloads/{name}/instances?limit=1000"))
        .await?;
    Some(
        v["items"]
            .as_array()?
            .iter()
            .filter(|i| {
                i["status"] != "Running"
                    && allowed
                        .iter()
                        .any(|n| i["node_id"].as_str() == Some(n.as_str()))
            })
            .count(),
    )
}

/// Containers actually running on every host, each as its own runtime says.
async fn containers_on_hosts(lab: &Lab) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for i in 0..lab.hosts.len() {
        out.push(
            lab.metric(i, "orchestrator_node_containers_running")
                .await? as usize,
        );
    }
    Some(out)
}

/// How long a converged state must hold before it counts (a host exports its
/// container count every second).
const METRIC_SETTLE: Duration = Duration::from_millis(1500);

/// Waits until `name` has exactly `want` running instances, all on `allowed`
/// nodes, and the hosts — every one but those in `down`, which must answer —
/// run exactly `want` containers in all.
async fn converged(
    lab: &Lab,
    name: &str,
    want: usize,
    allowed: &[&String],
    down: &[usize],
    what: &str,
) {
    // Each host exports its container count once a second, so a sum of
    // counts read at one instant can mix old and new values (one host's
    // removals not shown yet, another's creations not shown yet) and match by
    // chance: the state must hold for longer than an export period.
    let since = std::cell::Cell::new(None::<std::time::Instant>);
    let res = eventually(DEADLINE, what, || async {
        let holds = async {
            let Some((per_node, _)) = running(lab, 0, name).await else {
                return false;
            };
            let total: usize = per_node.values().sum();
            let on_allowed = per_node.keys().all(|n| allowed.contains(&n));
            let settled = not_running_on(lab, name, allowed).await == Some(0);
            let containers = containers_on_hosts_up(lab, down).await;
            total == want && on_allowed && settled && containers == Some(want)
        }
        .await;
        if !holds {
            since.set(None);
            return false;
        }
        let first = *since.get().get_or_insert_with(std::time::Instant::now);
        since.set(Some(first));
        first.elapsed() >= METRIC_SETTLE
    })
    .await;
    if let Err(e) = res {
        panic!(
            "{e}\ninstances: {:?}\ncontainers per host: {:?}\n--- control plane log:\n{}",
            running(lab, 0, name).await,
            containers_on_hosts(lab).await,
            lab.log_tail(0, 60)
        );
    }
}

/// Like [`containers_on_hosts`] but summed, skipping the hosts in `down`;
/// `None` if any other host does not answer (a host that cannot be read must
/// not count as running nothing).
async fn containers_on_hosts_up(lab: &Lab, down: &[usize]) -> Option<usize> {
    let mut total = 0;
    for i in (0..lab.hosts.len()).filter(|i| !down.contains(i)) {
        total += lab
            .metric(i, "orchestrator_node_containers_running")
            .await? as usize;
    }
    Some(total)
}

async fn wait_status(lab: &Lab, node: &str, status: &str) {
    eventually(DEADLINE, &format!("node {node} is {status}"), || async {
        node_statuses(lab, 0)
            .await
            .is_some_and(|s| s.get(node).map(String::as_str) == Some(status))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- control plane log:\n{}", lab.log_tail(0, 60)));
}

/// The capture holds node-to-node API traffic and gossip, and none of it is
/// readable: no HTTP, no request signature, no node record.
fn no_plaintext_between_hosts(lab: &Lab, capture: &mut Capture) {
    let pcap = capture.finish();
    let api = capture.count(&format!("tcp port {API_PORT}"));
    let gossip = capture.count(&format!("udp port {GOSSIP_PORT}"));
    assert!(
        api > 20 && gossip > 20,
        "the capture saw the hosts talk: {api} API packets, {gossip} gossip packets"
    );
    let mut readable: Vec<String> = ["HTTP/1.1", "x-auth-signature", "\"labels\"", "univrs.io/"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    readable.extend(lab.hosts.iter().map(|h| format!("{}:{API_PORT}", h.ip)));
    for needle in readable {
        assert!(
            !contains_ignoring_case(&pcap, needle.as_bytes()),
            "{needle:?} crossed the network in clear ({} bytes captured)",
            pcap.len()
        );
    }
}

async fn start_cluster(lab: &mut Lab) -> Vec<String> {
    for i in 0..lab.hosts.len() {
        lab.start(i);
    }
    for i in 0..lab.hosts.len() {
        lab.wait_up(i, DEADLINE).await;
    }
    let ids = node_ids(lab).await;
    // Every node, asked directly, sees all three Ready (workers forward
    // /api/v1/nodes to the control plane; /api/v1/network/peers is local).
    for via in 0..lab.hosts.len() {
        eventually(
            DEADLINE,
            &format!("host {via} sees three Ready nodes"),
            || async {
                let nodes_ok = node_statuses(lab, via)
                    .await
                    .is_some_and(|s| s.len() == 3 && s.values().all(|v| v == "Ready"));
                let peers_ok = lab
                    .get(via, "/api/v1/network/peers")
                    .await
                    .is_some_and(|p| {
                        p["items"]
                            .as_array()
                            .is_some_and(|a| a.len() == 3 && a.iter().all(|x| x["live"] == true))
                    });
                nodes_ok && peers_ok
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(via, 40)));
    }
    ids
}

async fn deploy_spread(lab: &Lab, ids: &[String], name: &str) {
    // Any node accepts the request: this one goes through worker 1.
    let (status, body) = lab
        .call(1, "POST", "/api/v1/workloads", Some(&manifest(name, 6)))
        .await
        .expect("worker 1 answers");
    assert_eq!(status, 201, "{body}");
    let all: Vec<&String> = ids.iter().collect();
    converged(lab, name, 6, &all, &[], "6 replicas run").await;
    let (per_node, _) = running(lab, 0, name).await.unwrap();
    assert_eq!(
        per_node.len(),
        3,
        "6 replicas spread over the 3 nodes: {per_node:?}"
    );
    // The same answer whichever node is asked.
    let direct = lab
        .get(0, &format!("/api/v1/workloads/{name}"))
        .await
        .unwrap();
    let via_worker = lab
        .get(2, &format!("/api/v1/workloads/{name}"))
        .await
        .unwrap();
    assert_eq!(direct["id"], via_worker["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_spread_fail_over_come_back_and_heal_to_exactly_the_replicas() {
    let mut lab = Lab::new("ua", 1, 3, &daemon());
    let ids = start_cluster(&mut lab).await;
    // Everything between the hosts during a deploy (forwarded by worker 1)
    // and a failover is captured on the bridge.
    let mut capture = lab.capture(&lab.path("deploy-failover.pcap"));
    deploy_spread(&lab, &ids, "web").await;

    // A host dies: its replicas run on the other two.
    lab.kill(2);
    wait_status(&lab, &ids[2], "Down").await;
    converged(
        &lab,
        "web",
        6,
        &[&ids[0], &ids[1]],
        &[2],
        "6 replicas run on hosts 0 and 1",
    )
    .await;
    no_plaintext_between_hosts(&lab, &mut capture);

    // It comes back (same key, new generation): still exactly 6.
    lab.start(2);
    lab.wait_up(2, DEADLINE).await;
    wait_status(&lab, &ids[2], "Ready").await;
    let all: Vec<&String> = ids.iter().collect();
    converged(
        &lab,
        "web",
        6,
        &all,
        &[],
        "exactly 6 replicas after host 2 returned",
    )
    .await;

    // A host is cut off: the control plane moves its replicas; the host
    // itself starts nothing and keeps its two until it is reachable again.
    lab.partition(1);
    wait_status(&lab, &ids[1], "Down").await;
    eventually(DEADLINE, "6 running on hosts 0 and 2", || async {
        running(&lab, 0, "web")
            .await
            .is_some_and(|(p, _)| p.values().sum::<usize>() == 6 && !p.contains_key(&ids[1]))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- control plane log:\n{}", lab.log_tail(0, 60)));
    lab.heal(1);
    wait_status(&lab, &ids[1], "Ready").await;
    converged(
        &lab,
        "web",
        6,
        &all,
        &[],
        "exactly 6 replicas after the partition healed",
    )
    .await;
    // And it stays so.
    for _ in 0..10 {
        let (p, _) = running(&lab, 0, "web").await.unwrap();
        assert_eq!(p.values().sum::<usize>(), 6, "{p:?}");
        let on_hosts = containers_on_hosts(&lab).await;
        assert_eq!(
            on_hosts.as_ref().map(|c| c.iter().sum::<usize>()),
            Some(6),
            "containers per host: {on_hosts:?}\n--- control plane log:\n{}",
            lab.log_tail(0, 60)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The control plane dies: the workers keep what they run (static
    // stability), start nothing, and their API says the control plane is
    // unreachable instead of answering from a stale or partial view.
    let on_workers = |c: Vec<usize>| c[1] + c[2];
    let before = on_workers(containers_on_hosts(&lab).await.unwrap());
    lab.kill(0);
    eventually(DEADLINE, "worker 1 sees the control plane dead", || async {
        lab.get(1, "/api/v1/network")
            .await
            .is_some_and(|n| n["control_plane"].is_null())
    })
    .await
    .unwrap();
    let (status, body) = lab
        .call(1, "POST", "/api/v1/workloads", Some(&manifest("late", 1)))
        .await
        .unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let mut worker_containers = Vec::new();
    for i in 1..3 {
        worker_containers.push(
            lab.metric(i, "orchestrator_node_containers_running")
                .await
                .unwrap() as usize,
        );
    }
    assert_eq!(
        worker_containers.iter().sum::<usize>(),
        before,
        "workers keep their containers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_packet_loss_for_a_minute_is_no_false_alarm() {
    let mut lab = Lab::new("ub", 2, 3, &daemon());
    let ids = start_cluster(&mut lab).await;
    deploy_spread(&lab, &ids, "steady").await;
    let (_, before) = running(&lab, 0, "steady").await.unwrap();
    let rejected_before = lab
        .metric(0, "orchestrator_gossip_rejected_records_total")
        .await;

    lab.loss(10);
    let window = std::time::Instant::now();
    let mut answers = 0;
    while window.elapsed() < Duration::from_secs(60) {
        // Any answer that gets through must show every node alive.
        for via in 0..3 {
            if let Some(net) = lab.get(via, "/api/v1/network").await {
                answers += 1;
                assert_eq!(
                    net["peers_dead"], 0,
                    "host {via} declared a peer dead: {net}"
                );
            }
        }
        if let Some(s) = node_statuses(&lab, 0).await {
            assert!(
                s.values().all(|v| v == "Ready"),
                "a node was reported dead: {s:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    lab.no_loss();
    assert!(
        answers > 30,
        "too few answers got through to judge: {answers}"
    );

    let (per_node, after) = running(&lab, 0, "steady").await.unwrap();
    assert_eq!(before, after, "an instance was rescheduled");
    assert_eq!(per_node.values().sum::<usize>(), 6);
    assert_eq!(
        lab.metric(0, "orchestrator_gossip_rejected_records_total")
            .await,
        rejected_before
    );
}

/// How many times host `i`'s log says its gossip keyring was reloaded.
fn reloads(lab: &Lab, i: usize) -> usize {
    lab.log_tail(i, 100_000)
        .matches("gossip keyring reloaded")
        .count()
}

/// Whether every host of `hosts` lists exactly three nodes, all Ready, and
/// three live peers.
async fn three_members(lab: &Lab, hosts: &[usize]) -> bool {
    for &via in hosts {
        let nodes_ok = node_statuses(lab, via)
            .await
            .is_some_and(|s| s.len() == 3 && s.values().all(|v| v == "Ready"));
        let peers_ok = lab
            .get(via, "/api/v1/network/peers")
            .await
            .is_some_and(|p| {
                p["items"]
                    .as_array()
                    .is_some_and(|a| a.len() == 3 && a.iter().all(|x| x["live"] == true))
            });
        if !(nodes_ok && peers_ok) {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_another_gossip_key_is_never_admitted_and_keys_rotate_by_sighup() {
    const UNKNOWN_KEY: &str = "orchestrator_gossip_packets_dropped_total{reason=\"unknown_key\"}";
    let mut lab = Lab::new("uc", 3, 4, &daemon());
    let stranger_file = lab.path("stranger.keys");
    write_key_file(&stranger_file, &[&GossipKey::generate()]);
    lab.set_key_file(3, &stranger_file);
    for i in 0..3 {
        lab.start(i);
    }
    for i in 0..3 {
        lab.wait_up(i, DEADLINE).await;
    }
    // The stranger has no token, but knows the cluster id and a member's
    // gossip address: it gossips at host 0 under its own key.
    let cluster_id = orchestrator_daemon::cluster_identity::load(lab.data_dir(0))
        .unwrap()
        .expect("host 0 created its cluster")
        .cluster_id;
    let seed = lab.hosts[0].gossip();
    lab.set_no_token(3);
    lab.set_args(3, &["--seed", &seed, "--cluster-id", &cluster_id]);
    lab.start(3);
    lab.wait_up(3, DEADLINE).await;
    eventually(DEADLINE, "the three members see each other", || {
        three_members(&lab, &[0, 1, 2])
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 40)));
    // The stranger gossips at host 0 (its seed) all along: once host 0 has
    // dropped a good number of its packets, it must still not be listed.
    eventually(DEADLINE, "host 0 drops the stranger's packets", || async {
        lab.metric(0, UNKNOWN_KEY).await.is_some_and(|v| v >= 20.0)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 40)));
    assert!(three_members(&lab, &[0, 1, 2]).await, "the stranger got in");
    let ids = node_ids(&lab).await;
    let members: BTreeSet<String> = ids[..3].iter().cloned().collect();
    for via in 0..3 {
        let listed: BTreeSet<String> = node_statuses(&lab, via)
            .await
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(listed, members, "host {via} lists the stranger {}", ids[3]);
    }
    assert!(
        lab.log_tail(3, 200).contains("gossip is sealed"),
        "{}",
        lab.log_tail(3, 40)
    );

    // Rotation on the running members: install, make primary, remove.
    let old = std::fs::read_to_string(&lab.key_file).unwrap();
    let old = GossipKey::from_base64(old.trim(), 1).unwrap();
    let new = GossipKey::generate();
    for (step, keys) in [vec![&old, &new], vec![&new, &old], vec![&new]]
        .into_iter()
        .enumerate()
    {
        write_key_file(&lab.key_file, &keys);
        for i in 0..3 {
            lab.hup(i);
        }
        for i in 0..3 {
            eventually(
                DEADLINE,
                &format!("host {i} reloads (step {step})"),
                || async { reloads(&lab, i) > step },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(i, 40)));
        }
    }
    assert!(!lab.log_tail(0, 100_000).contains(new.to_base64().as_str()));
    assert!(!lab.log_tail(0, 100_000).contains(old.to_base64().as_str()));
    // A fresh change under the new key alone: host 2 restarts (a new
    // generation, reading the rotated file) and is Ready again everywhere.
    lab.kill(2);
    eventually(DEADLINE, "host 2 is seen dead", || async {
        lab.get(0, "/api/v1/network")
            .await
            .is_some_and(|n| n["peers_dead"] == 1)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 40)));
    lab.start(2);
    lab.wait_up(2, DEADLINE).await;
    eventually(
        DEADLINE,
        "the members see each other after rotation",
        || three_members(&lab, &[0, 1, 2]),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(2, 40)));
    let listed: BTreeSet<String> = node_statuses(&lab, 0).await.unwrap().into_keys().collect();
    assert_eq!(listed, members);
    assert_eq!(
        lab.metric(
            0,
            "orchestrator_gossip_packets_dropped_total{reason=\"auth_failed\"}"
        )
        .await,
        Some(0.0),
        "no member packet failed to open during the rotation"
    );
}
