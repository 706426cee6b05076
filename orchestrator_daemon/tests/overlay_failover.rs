//! A name follows its server through a failover across nodes (issue 16
//! §5): four hosts of a lab (network namespaces, real daemons, youki) — a
//! control plane, two workers that may run the server, one that runs the
//! client. The client asks for the server by name, over and over. The
//! server's host is killed (SIGKILL, its tunnel with it); the control plane
//! moves the server to the other worker, and the client gets the new
//! server's page within 2 s of its being Ready. The killed host comes back,
//! and what it left behind is removed.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod multihost_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use multihost_common::youki::{deploy_web, manifest, namespaces, registry_forwarder, running};
use multihost_common::{eventually, Lab};
use serde_json::Value;

/// The lab's network: 10.250.`NET`.0/24 (unique among the lab tests).
const NET: u8 = 7;
const DEADLINE: Duration = Duration::from_secs(60);
/// The most a name may lag behind a moved server.
const FOLLOW: Duration = Duration::from_secs(2);

/// The pages the client got, each with when its line was printed.
async fn pages(lab: &Lab) -> Vec<(DateTime<Utc>, String)> {
    let path = orchestrator_api::routes::workload_logs("client", Some(400), false);
    let Some((200, Value::String(text))) = lab.call(0, "GET", &path, None).await else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let line = v["line"].as_str()?;
            let at = v["timestamp"].as_str()?.parse().ok()?;
            line.starts_with("page-").then(|| (at, line.to_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_name_follows_its_server_to_another_node_within_two_seconds() {
    let daemon = PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"));
    let mut lab = Lab::new("uv", NET, 4, &daemon);
    lab.runtime = "youki";
    let forwarder = format!("10.250.{NET}.1:5000");
    let image = registry_forwarder(&forwarder).await;
    for i in 0..4 {
        let mut args = vec!["--insecure-registry", forwarder.as_str()];
        if i == 1 || i == 2 {
            args.extend(["--label", "tier=server"]);
        }
        lab.set_args(i, &args);
    }
    for i in 0..4 {
        lab.start(i);
        lab.wait_up(i, DEADLINE).await;
    }
    let mut ids = Vec::new();
    for i in 0..4 {
        let v = lab.get(i, "/api/v1/network").await.unwrap();
        ids.push(v["node_id"].as_str().unwrap().to_owned());
    }
    eventually(DEADLINE, "the four members are up with subnets", || async {
        let v = lab
            .get(0, "/api/v1/cluster/members")
            .await
            .unwrap_or_default();
        v.to_string().matches("/24").count() == 4
            && lab
                .get(0, "/api/v1/nodes")
                .await
                .is_some_and(|n| n.to_string().matches("\"Ready\"").count() >= 4)
    })
    .await
    .unwrap();
    let namespaces_before = namespaces(&lab);

    // Each start of the server serves a page of its own.
    deploy_web(&lab, ("tier", "server"), &image, "page-$RANDOM$RANDOM").await;
    let client =
        "trap 'exit 0' TERM; while true; do timeout 1 wget -q -O - http://web:8088/ 2>/dev/null; \
                  sleep 0.1; done";
    let (status, body) = lab
        .call(
            0,
            "POST",
            "/api/v1/workloads",
            Some(&manifest("client", ("host", "h3"), &image, client)),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    eventually(
        DEADLINE,
        "the client gets the server's page by name",
        || async { !pages(&lab).await.is_empty() },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- host 3 log:\n{}", lab.log_tail(3, 30)));
    let (_, first_node, _) = running(&lab, "web").await.unwrap();
    let first_page = pages(&lab).await.last().unwrap().1.clone();
    let victim = ids.iter().position(|id| *id == first_node).unwrap();
    assert!(
        victim == 1 || victim == 2,
        "the server runs on a server host"
    );

    // The server's host dies.
    let killed = Instant::now();
    lab.kill(victim);
    let mut moved = None;
    while killed.elapsed() < DEADLINE {
        if let Some((_, node, true)) = running(&lab, "web").await {
            if node != first_node {
                moved = Some((Utc::now(), killed.elapsed()));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ready_at, kill_to_ready) = moved.unwrap_or_else(|| {
        panic!(
            "the server did not move off the killed host\n--- host 0 log:\n{}",
            lab.log_tail(0, 30)
        )
    });
    let mut followed = None;
    while killed.elapsed() < DEADLINE {
        followed = pages(&lab).await.into_iter().find(|(at, page)| {
            *page != first_page && *at >= ready_at - chrono::Duration::seconds(1)
        });
        if followed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some((served_at, _)) = followed else {
        let path = orchestrator_api::routes::workload_logs("client", Some(20), false);
        panic!(
            "the client never got the moved server's page: {:?}\n--- web: {:?}\n--- host 3 log:\n{}",
            lab.call(0, "GET", &path, None).await,
            running(&lab, "web").await,
            lab.log_tail(3, 20)
        );
    };
    let lag = (served_at - ready_at).to_std().unwrap_or_default();
    eprintln!(
        "failover: killed -> new server Ready {kill_to_ready:?}; Ready -> client served by name {lag:?}"
    );
    assert!(lag <= FOLLOW, "the name followed the server after {lag:?}");

    // The killed host comes back; what it left running is removed, and
    // deleting the workloads leaves no namespace.
    lab.start(victim);
    lab.wait_up(victim, DEADLINE).await;
    for name in ["client", "web"] {
        let (status, body) = lab
            .call(0, "DELETE", &format!("/api/v1/workloads/{name}"), None)
            .await
            .unwrap();
        assert!(status < 300, "{body}");
    }
    eventually(DEADLINE, "nothing is left", || async {
        namespaces(&lab) == namespaces_before
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: namespaces left {:?}", namespaces(&lab)));
}
