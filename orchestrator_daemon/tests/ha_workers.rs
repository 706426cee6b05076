//! Three control planes on one etcd and two workers, on five lab hosts
//! (network namespaces, see `multihost_common`), with an etcd cluster of
//! the test's own on the lab's bridge:
//!
//! - the workers join with a token from the leader that names all three
//!   control planes, and run what the leader places on them;
//! - kill -9 the leader: another leads, the workers follow it (their
//!   network view names it, with its higher term), and a workload created
//!   just before the kill converges on the workers;
//! - kill one etcd member: the API answers and a new workload converges;
//! - SIGSTOP the leader past its lease, then SIGCONT: another leads
//!   meanwhile, the workloads keep exactly their replicas, the workers
//!   refuse the old term, and the stopped one rejoins as a follower.
//!
//! Needs root, iproute2 and Debian's etcd-server (where `UNIVRS_TEST_ETCD`
//! is set, as in CI); skipped without the latter.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod ha_common;
mod multihost_common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use multihost_common::{eventually, Lab};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt as _;

/// The lab's network: 10.250.8.0/24.
const NET: u8 = 8;
const DEADLINE: Duration = Duration::from_secs(60);
const CONTROL_PLANES: [usize; 3] = [0, 1, 2];
const WORKERS: [usize; 2] = [3, 4];
/// The control planes' etcd prefix (the default).
const PREFIX: &str = "/univrs";

fn daemon() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"))
}

/// `replicas` of a container placed on the workers only.
fn on_workers(name: &str, replicas: u32) -> Value {
    json!({
        "name": name,
        "replicas": replicas,
        "placement": {"node_selector": {"tier": "worker"}},
        "containers": [{
            "name": "main",
            "image": "example.org/web:1",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
        }],
        "restart_policy": "Always"
    })
}

/// Host `i`'s `GET /api/v1/network`.
async fn network(lab: &Lab, i: usize) -> Option<Value> {
    lab.get(i, "/api/v1/network").await
}

/// The leader host `i` names, as a node id, and the term it gives.
async fn leader_seen_by(lab: &Lab, i: usize) -> Option<(String, Option<u64>)> {
    let n = network(lab, i).await?;
    let l = n.get("leader")?;
    Some((l["node_id"].as_str()?.to_owned(), l["term"].as_u64()))
}

/// The control plane every one of `live` names as the leader, once they agree.
async fn agreed_leader(lab: &Lab, ids: &[String], live: &[usize]) -> usize {
    let start = Instant::now();
    loop {
        let mut seen = Vec::new();
        for &i in live {
            seen.push(leader_seen_by(lab, i).await.map(|(n, _)| n));
        }
        let first = seen.first().cloned().flatten();
        let found = first
            .filter(|f| seen.iter().all(|s| s.as_ref() == Some(f)))
            .and_then(|f| ids.iter().position(|id| *id == f))
            .filter(|at| live.contains(at));
        if let Some(at) = found {
            return at;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the control planes {live:?} agree on no leader: {seen:?}\n{}",
            logs(lab)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Running instances of `name` per node id, as host `via` answers.
async fn running(lab: &Lab, via: usize, name: &str) -> Option<BTreeMap<String, usize>> {
    let v = lab
        .get(
            via,
            &format!("/api/v1/workloads/{name}/instances?limit=100"),
        )
        .await?;
    let mut out = BTreeMap::new();
    for i in v["items"].as_array()? {
        if i["status"] == "Running" {
            *out.entry(i["node_id"].as_str()?.to_owned()).or_insert(0) += 1;
        }
    }
    Some(out)
}

/// Waits until `name` runs exactly `want` instances, all on the workers.
async fn converged(lab: &Lab, via: usize, ids: &[String], name: &str, want: usize) {
    let workers: Vec<&String> = WORKERS.iter().map(|&w| &ids[w]).collect();
    eventually(
        DEADLINE,
        &format!("{want} instances of {name} on the workers"),
        || async {
            running(lab, via, name).await.is_some_and(|r| {
                r.values().sum::<usize>() == want && r.keys().all(|n| workers.contains(&n))
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(lab)));
}

/// One replica on each control plane in turn (`host=hN`): whichever leads,
/// every other one runs what it is given.
async fn on_each_control_plane(lab: &Lab, via: usize, ids: &[String], tag: &str) {
    for i in CONTROL_PLANES {
        let name = format!("{tag}-h{i}");
        let mut m = on_workers(&name, 1);
        m["placement"]["node_selector"] = json!({"host": format!("h{i}")});
        create(lab, via, &m).await;
    }
    for i in CONTROL_PLANES {
        let name = format!("{tag}-h{i}");
        eventually(
            DEADLINE,
            &format!("{name} running on control plane {i}"),
            || async {
                running(lab, via, &name)
                    .await
                    .is_some_and(|r| r.len() == 1 && r.get(&ids[i]) == Some(&1))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(lab)));
    }
}

/// Containers running on the worker hosts, each as its own runtime says.
async fn on_worker_hosts(lab: &Lab) -> Option<usize> {
    let mut total = 0;
    for w in WORKERS {
        total += lab
            .metric(w, "orchestrator_node_containers_running")
            .await? as usize;
    }
    Some(total)
}

fn logs(lab: &Lab) -> String {
    (0..lab.hosts.len())
        .map(|i| format!("--- host {i}:\n{}", lab.log_tail(i, 30)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until host `via` lists exactly `n` nodes, all ready.
async fn ready_nodes(lab: &Lab, via: usize, n: usize) {
    eventually(DEADLINE, &format!("{n} ready nodes"), || async {
        lab.get(via, "/api/v1/nodes").await.is_some_and(|v| {
            v["items"]
                .as_array()
                .is_some_and(|a| a.len() == n && a.iter().all(|x| x["status"] == "Ready"))
        })
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(lab)));
}

/// A signed `POST /api/v1/workloads` of `body`, written whole to host
/// `i`'s socket (the kernel queues it while the daemon is stopped); the
/// stream to read the answer from.
async fn raw_request(lab: &Lab, i: usize, audience: &str, body: &[u8]) -> tokio::net::TcpStream {
    use orchestrator_shared_types::auth::{
        sign_request, Payload, HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    };
    use tokio::io::AsyncWriteExt as _;
    let path = "/api/v1/workloads";
    let s = sign_request(
        &lab.key,
        &Payload::new("POST", path, body, audience),
        chrono::Utc::now(),
    );
    let addr = format!("{}:{}", lab.hosts[i].ip, multihost_common::API_PORT);
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n{HEADER_PUBLIC_KEY}: {}\r\n{HEADER_TIMESTAMP}: {}\r\n\
         {HEADER_SIGNATURE}: {}\r\nconnection: close\r\n\r\n",
        body.len(),
        s.public_key,
        s.timestamp,
        s.signature
    )
    .into_bytes();
    head.extend_from_slice(body);
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connecting to the paused leader (the kernel accepts)");
    stream.write_all(&head).await.expect("queueing the request");
    stream
}

/// Creates `manifest` through host `via`, as a client would: a 503 (an
/// election under way, a leader taking over) is asked again once the
/// workload is known not to exist; any other refusal fails the test.
async fn create(lab: &Lab, via: usize, manifest: &Value) {
    let name = manifest["name"].as_str().unwrap();
    let start = Instant::now();
    loop {
        let (status, body) = lab
            .call(via, "POST", "/api/v1/workloads", Some(manifest))
            .await
            .expect("the API answers");
        if status == 201 {
            return;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            start.elapsed() < DEADLINE,
            "still 503 after {DEADLINE:?}: {body}"
        );
        if lab
            .get(via, &format!("/api/v1/workloads/{name}"))
            .await
            .is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_control_planes_and_two_workers_survive_the_leader_an_etcd_member_and_a_pause() {
    if ha_common::endpoints().is_none() {
        return;
    }
    let mut lab = Lab::new("uh", NET, 5, &daemon());
    let etcd_dir = lab.path("etcd");
    std::fs::create_dir_all(&etcd_dir).unwrap();
    let mut members = ha_common::etcd_cluster(&etcd_dir, &format!("10.250.{NET}.1"));
    let urls: Vec<String> = members.iter().map(|m| m.client_url.clone()).collect();
    let endpoints = urls.join(",");
    ha_common::etcd_leader(&urls, DEADLINE).await;

    for i in CONTROL_PLANES {
        lab.set_store(
            i,
            &[
                "--store",
                "etcd",
                "--etcd-endpoints",
                &endpoints,
                "--lease-ttl",
                "1s",
            ],
        );
        lab.set_args(i, &["--label", "tier=control"]);
        lab.start(i);
        lab.wait_up(i, DEADLINE).await;
    }
    let mut ids = Vec::new();
    for i in CONTROL_PLANES {
        ids.push(
            network(&lab, i).await.unwrap()["node_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let leader = agreed_leader(&lab, &ids, &CONTROL_PLANES).await;
    ready_nodes(&lab, leader, 3).await;

    // A worker token from the leader names every control plane.
    let (status, issued) = lab
        .call(
            leader,
            "POST",
            "/api/v1/cluster/join-tokens",
            Some(&json!({"role": "worker"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{issued}");
    for w in WORKERS {
        let (status, issued) = lab
            .call(
                (leader + 1) % 3,
                "POST",
                "/api/v1/cluster/join-tokens",
                Some(&json!({"role": "worker"})),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "a token through a follower: {issued}");
        let token = issued["token"].as_str().unwrap().to_owned();
        lab.set_no_token(w);
        lab.set_args(w, &["--join", &token, "--label", "tier=worker"]);
        lab.start(w);
        lab.wait_up(w, DEADLINE).await;
        ids.push(
            network(&lab, w).await.unwrap()["node_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ready_nodes(&lab, leader, 5).await;
    create(&lab, leader, &on_workers("first", 2)).await;
    converged(&lab, leader, &ids, "first", 2).await;
    eventually(
        DEADLINE,
        "the workers to name the leader and its term",
        || async {
            let mut all = true;
            for w in WORKERS {
                all &= leader_seen_by(&lab, w)
                    .await
                    .is_some_and(|(n, t)| n == ids[leader] && t.is_some_and(|t| t > 0));
            }
            all
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&lab)));
    let first_term = leader_seen_by(&lab, 3).await.unwrap().1.unwrap();

    // kill -9 the leader, a workload created just before.
    let follower = (leader + 1) % 3;
    create(&lab, follower, &on_workers("just-before", 2)).await;
    let killed = Instant::now();
    lab.kill(leader);
    let survivors: Vec<usize> = CONTROL_PLANES
        .into_iter()
        .filter(|i| *i != leader)
        .collect();
    let second = agreed_leader(&lab, &ids, &survivors).await;
    assert_ne!(second, leader);
    converged(&lab, second, &ids, "just-before", 2).await;
    converged(&lab, second, &ids, "first", 2).await;
    eprintln!(
        "kill -9 of the leader → the workload created just before runs on the workers: {:?}",
        killed.elapsed()
    );
    eventually(DEADLINE, "the workers to follow the new leader", || async {
        let mut all = true;
        for w in WORKERS {
            all &= leader_seen_by(&lab, w)
                .await
                .is_some_and(|(n, t)| n == ids[second] && t.is_some_and(|t| t > first_term));
        }
        all
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&lab)));
    // The killed one comes back, as a follower.
    lab.start(leader);
    lab.wait_up(leader, DEADLINE).await;
    assert_eq!(agreed_leader(&lab, &ids, &CONTROL_PLANES).await, second);
    on_each_control_plane(&lab, second, &ids, "cp-after-kill").await;

    // Kill one etcd member (one that does not lead etcd's raft: losing the
    // raft leader is `ha_etcd_member.rs`): nothing stops, not even the
    // control plane's leadership.
    let raft_leader = ha_common::etcd_leader(&urls, DEADLINE).await;
    let lost_member = (raft_leader + 1) % members.len();
    members.remove(lost_member);
    let live_urls: Vec<String> = members.iter().map(|m| m.client_url.clone()).collect();
    let mut etcd = etcd_client::Client::connect(&live_urls, None)
        .await
        .expect("an etcd client");
    create(&lab, leader, &on_workers("after-etcd-loss", 2)).await;
    converged(&lab, second, &ids, "after-etcd-loss", 2).await;
    for i in CONTROL_PLANES {
        assert!(
            lab.get(i, "/api/v1/workloads").await.is_some(),
            "control plane {i} answers with an etcd member gone"
        );
    }
    assert_eq!(
        agreed_leader(&lab, &ids, &CONTROL_PLANES).await,
        second,
        "losing an etcd member changed the leader"
    );

    // SIGSTOP the leader past its lease, then SIGCONT.
    let paused = second;
    let term_before = leader_seen_by(&lab, 3).await.unwrap().1.unwrap();
    lab.signal(paused, nix::sys::signal::Signal::SIGSTOP);
    let others: Vec<usize> = CONTROL_PLANES
        .into_iter()
        .filter(|i| *i != paused)
        .collect();
    let third = agreed_leader(&lab, &ids, &others).await;
    assert_ne!(third, paused);
    let deposed_at = ha_common::revision(&mut etcd).await;
    create(&lab, third, &on_workers("while-paused", 2)).await;
    converged(&lab, third, &ids, "while-paused", 2).await;
    eventually(
        DEADLINE,
        "the workers to follow the third leader",
        || async {
            let mut all = true;
            for w in WORKERS {
                all &= leader_seen_by(&lab, w)
                    .await
                    .is_some_and(|(n, t)| n == ids[third] && t.is_some_and(|t| t > term_before));
            }
            all
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&lab)));
    // A write sent to the paused leader while it sleeps, handled when it
    // wakes: whatever it answers, etcd's history must agree (a 2xx and the
    // workload written once, or no 2xx and it written never).
    let audience = lab.audience(third).await.expect("the cluster's audience");
    let mut zombie = raw_request(
        &lab,
        paused,
        &audience,
        &serde_json::to_vec(&on_workers("zombie", 1)).unwrap(),
    )
    .await;
    lab.signal(paused, nix::sys::signal::Signal::SIGCONT);
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, zombie.read_to_string(&mut answer))
        .await
        .expect("the woken leader answers")
        .expect("reading its answer");
    let acknowledged = answer.starts_with("HTTP/1.1 2");
    eventually(DEADLINE, "the paused leader to step down", || async {
        lab.log_tail(paused, 400)
            .contains("lost its lease and stopped acting")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&lab)));
    assert_eq!(agreed_leader(&lab, &ids, &CONTROL_PLANES).await, third);
    // The workers kept the newer term: the woken one's calls, if any, were
    // refused; every workload still runs exactly its replicas.
    for w in WORKERS {
        let (n, t) = leader_seen_by(&lab, w).await.unwrap();
        assert_eq!(n, ids[third], "worker {w} went back to the paused leader");
        assert!(t.unwrap() > term_before);
    }
    for name in ["first", "just-before", "after-etcd-loss", "while-paused"] {
        converged(&lab, third, &ids, name, 2).await;
    }
    eventually(DEADLINE, "8 containers on the worker hosts", || async {
        on_worker_hosts(&lab).await == Some(8)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&lab)));
    let puts = ha_common::puts_since(&mut etcd, PREFIX, deposed_at).await;
    let named = |name: &str| {
        puts.iter()
            .filter(|v| v.pointer("/spec/name").and_then(Value::as_str) == Some(name))
            .count()
    };
    // The history is read right: the new leader's write is in it.
    assert!(
        named("while-paused") > 0,
        "the history misses the new leader's write"
    );
    let written = named("zombie");
    eprintln!(
        "a write sent to the paused leader: {} ({}); workload records written since: {written}",
        answer.lines().next().unwrap_or_default(),
        answer.lines().last().unwrap_or_default()
    );
    assert_eq!(
        written > 0,
        acknowledged,
        "the paused leader's answer ({}) and etcd's history disagree",
        answer.lines().next().unwrap_or_default()
    );
    on_each_control_plane(&lab, third, &ids, "cp-after-pause").await;
    // Through the old leader, now a follower, the API reaches the new one.
    let (status, _) = lab
        .call(
            paused,
            "POST",
            "/api/v1/workloads/first/scale",
            Some(&json!({"replicas": 3})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    converged(&lab, third, &ids, "first", 3).await;
}
