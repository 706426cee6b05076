//! Failover: from killing a host (SIGKILL of its daemon, in its own network
//! namespace) to all replicas running again on the others, over 5 trials,
//! with the default gossip settings (100 ms rounds, phi 8). The baseline in
//! the same run is detection alone: from the kill to the control plane
//! reporting the node Down. Node-to-node traffic is as in production:
//! sealed gossip, mutual TLS for agent calls and forwarding.
//!
//! Then, with all three hosts up, signed `GET /api/v1/workloads` per second
//! from 16 concurrent clients through worker 1 (forwarded to the control
//! plane over mutual TLS) against the control plane asked directly, in
//! alternating 5 s rounds. Needs root.
//!
//! `cargo bench -p orchestrator_daemon --bench failover`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/multihost_common/mod.rs"]
mod multihost_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use multihost_common::{eventually, Lab};
use orchestrator_shared_types::auth::{
    sign_request, Payload, HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use serde_json::json;

const TRIALS: usize = 5;
/// Concurrent clients of the throughput rounds.
const CLIENTS: usize = 16;
/// Length of one throughput round.
const ROUND: Duration = Duration::from_secs(5);

/// Signed `GET /api/v1/workloads` to host `via` from [`CLIENTS`] clients
/// for one [`ROUND`]: requests per second and the p99 latency in ms.
async fn signed_rate(lab: &Lab, via: usize) -> (f64, f64) {
    let audience = lab.audience(via).await.unwrap();
    let path = "/api/v1/workloads";
    let url = format!("{}{path}", lab.hosts[via].api());
    let started = Instant::now();
    let end = started + ROUND;
    let clients = (0..CLIENTS).map(|_| {
        let (url, audience) = (url.clone(), audience.clone());
        async move {
            let http = reqwest::Client::new();
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let s = sign_request(
                    &lab.key,
                    &Payload::new("GET", path, b"", &audience),
                    Utc::now(),
                );
                let sent = Instant::now();
                let r = http
                    .get(&url)
                    .header(HEADER_PUBLIC_KEY, s.public_key)
                    .header(HEADER_TIMESTAMP, s.timestamp)
                    .header(HEADER_SIGNATURE, s.signature)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                r.bytes().await.unwrap();
                latencies.push(sent.elapsed().as_secs_f64());
            }
            latencies
        }
    });
    let mut all: Vec<f64> = futures::future::join_all(clients).await.concat();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (rate, pct(&all, 0.99) * 1e3)
}
const REPLICAS: usize = 6;

async fn running_off(lab: &Lab, dead: &str) -> Option<usize> {
    let v = lab
        .get(0, "/api/v1/workloads/bench/instances?limit=1000")
        .await?;
    let items = v["items"].as_array()?;
    Some(
        items
            .iter()
            .filter(|i| i["status"] == "Running" && i["node_id"] != dead)
            .count(),
    )
}

async fn status_of(lab: &Lab, node: &str) -> Option<String> {
    let v = lab.get(0, "/api/v1/nodes").await?;
    v["items"]
        .as_array()?
        .iter()
        .find(|n| n["id"] == node)
        .and_then(|n| n["status"].as_str().map(str::to_owned))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let daemon = PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"));
    let mut lab = Lab::new("uf", 3, 3, &daemon);
    for i in 0..3 {
        lab.start(i);
    }
    for i in 0..3 {
        lab.wait_up(i, Duration::from_secs(30)).await;
    }
    let mut ids = Vec::new();
    for i in 0..3 {
        let v = lab.get(i, "/api/v1/network").await.unwrap();
        ids.push(v["node_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        eventually(Duration::from_secs(30), "every node is Ready", || async {
            status_of(&lab, id).await.as_deref() == Some("Ready")
        })
        .await
        .unwrap();
    }
    let manifest = json!({"name": "bench", "replicas": REPLICAS, "restart_policy": "Always",
        "containers": [{"name": "main", "image": "example.org/web:1",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]});
    let (status, body) = lab
        .call(0, "POST", "/api/v1/workloads", Some(&manifest))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    eventually(Duration::from_secs(30), "all replicas run", || async {
        running_off(&lab, "").await == Some(REPLICAS)
    })
    .await
    .unwrap();

    let mut failover = Vec::new();
    let mut detection = Vec::new();
    for trial in 0..TRIALS {
        let victim = if trial % 2 == 0 { 2 } else { 1 };
        let dead = ids[victim].clone();
        // The victim must be Ready and run some of the replicas.
        eventually(
            Duration::from_secs(30),
            "the victim is Ready and runs replicas",
            || async {
                status_of(&lab, &dead).await.as_deref() == Some("Ready")
                    && running_off(&lab, &dead).await.is_some_and(|n| n < REPLICAS)
                    && running_off(&lab, "").await == Some(REPLICAS)
            },
        )
        .await
        .unwrap();
        let killed = Instant::now();
        lab.kill(victim);
        let mut detected = None;
        loop {
            if detected.is_none() && status_of(&lab, &dead).await.as_deref() == Some("Down") {
                detected = Some(killed.elapsed());
            }
            if running_off(&lab, &dead).await == Some(REPLICAS) {
                break;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "no failover within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = killed.elapsed();
        let detected = detected.unwrap_or(took);
        println!(
            "trial {}: killed host {victim}; Down after {:.0} ms, all {REPLICAS} replicas running after {:.0} ms",
            trial + 1,
            detected.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3
        );
        failover.push(took.as_secs_f64());
        detection.push(detected.as_secs_f64());
        lab.start(victim);
        lab.wait_up(victim, Duration::from_secs(30)).await;
        eventually(
            Duration::from_secs(30),
            "the host is Ready again",
            || async { status_of(&lab, &dead).await.as_deref() == Some("Ready") },
        )
        .await
        .unwrap();
    }
    failover.sort_by(f64::total_cmp);
    detection.sort_by(f64::total_cmp);
    println!(
        "failover_p50_ms={:.0} failover_max_ms={:.0} (target: p50 <= 1000, max <= 3000)",
        pct(&failover, 0.5) * 1e3,
        failover[failover.len() - 1] * 1e3
    );
    println!(
        "baseline detection_p50_ms={:.0} detection_max_ms={:.0} (kill -> control plane reports Down)",
        pct(&detection, 0.5) * 1e3,
        detection[detection.len() - 1] * 1e3
    );

    // Throughput through a worker's forwarding (mutual TLS) against the
    // control plane directly, alternating.
    for id in &ids {
        eventually(Duration::from_secs(30), "every node is Ready", || async {
            status_of(&lab, id).await.as_deref() == Some("Ready")
        })
        .await
        .unwrap();
    }
    let (mut direct, mut forwarded) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        direct.push(signed_rate(&lab, 0).await);
        forwarded.push(signed_rate(&lab, 1).await);
    }
    for (name, rounds) in [("direct", &direct), ("via_worker_mtls", &forwarded)] {
        for (rate, p99) in rounds.iter() {
            println!("signed_get_{name}: {rate:.0} req/s, p99 {p99:.2} ms ({CLIENTS} clients)");
        }
    }
    let best = |r: &[(f64, f64)]| r.iter().map(|x| x.0).fold(0.0, f64::max);
    println!(
        "forwarded / direct req/s = {:.2} (best round of each)",
        best(&forwarded) / best(&direct)
    );
}
