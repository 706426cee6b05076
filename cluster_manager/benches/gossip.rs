//! Gossip benchmark: 50 `ChitchatClusterManager`s in one process on
//! 127.0.0.1, gossiping every 100 ms (the default), all seeded on the first.
//! Measures the time until every node lists all 50 as `Ready`, then the gossip
//! traffic per node (bytes on the wire, sent + received, per second) over a
//! 10 s steady window, and finally the time until a stopped node is listed
//! `Down` by the first and by every other node.
//!
//! It runs twice in the same process: plain gossip (the baseline), then
//! gossip sealed with a cluster key (every node its own keyring holding the
//! same key); figures are prefixed `gossip_plain_` and `gossip_sealed_`, and
//! `gossip_sealed_over_plain_bytes` is the ratio of the p50 traffic.
//!
//! Run: `cargo bench -p cluster_manager --bench gossip` (add `-- N` for
//! another number of nodes).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use std::sync::Arc;

use cluster_manager::{
    test_node, ChitchatClusterManager, GossipConfig, GossipKey, GossipStats, Keyring,
};
use cluster_manager_interface::{ClusterManager, ROLE_LABEL, ROLE_WORKER};
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::{NodeId, NodeStatus, PublicKey};

const DEFAULT_NODES: usize = 50;
const CONVERGENCE_DEADLINE: Duration = Duration::from_secs(120);
const STEADY_WINDOW: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

fn free_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn ready_count(cm: &ChitchatClusterManager) -> usize {
    cm.list_nodes()
        .await
        .unwrap()
        .iter()
        .filter(|n| n.status == NodeStatus::Ready)
        .count()
}

fn traffic(stats: &GossipStats) -> u64 {
    stats.bytes_sent + stats.bytes_received
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let nodes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_NODES);
    let plain = run("plain", nodes, None).await;
    let key = GossipKey::generate();
    let sealed = run("sealed", nodes, Some(&key)).await;
    println!("gossip_sealed_over_plain_bytes={:.3}", sealed / plain);
}

/// One run of `nodes` nodes, sealed with `key` if given; figures printed
/// with the prefix `gossip_{mode}_`. Returns the p50 bytes/s per node.
async fn run(mode: &str, nodes: usize, gossip_key: Option<&GossipKey>) -> f64 {
    let addrs: Vec<SocketAddr> = (0..nodes).map(|_| free_addr()).collect();
    let seed = addrs[0].to_string();

    let started = Instant::now();
    let mut managers = Vec::with_capacity(nodes);
    for (i, addr) in addrs.iter().enumerate() {
        let key = SigningKey::from_bytes(&[u8::try_from(i % 250).unwrap() + 1; 32]);
        let mut node = test_node(i as u64 + 1, 4000, 8 << 30);
        node.id = NodeId(key.verifying_key().to_bytes());
        // Run by itself: a foreign operator would need an operator proof.
        node.operator = PublicKey(node.id.0);
        node.address = format!("127.0.0.1:{}", 20_000 + i);
        node.labels.insert(ROLE_LABEL.into(), ROLE_WORKER.into());
        let mut config = GossipConfig::new(*addr, *addr);
        config.keyring =
            gossip_key.map(|k| Arc::new(Keyring::new(std::slice::from_ref(k)).unwrap()));
        if i > 0 {
            config.seeds = vec![seed.clone()];
        }
        managers.push(
            ChitchatClusterManager::start(config, key, node)
                .await
                .unwrap(),
        );
    }
    let launched = started.elapsed();

    loop {
        let mut converged = 0;
        for cm in &managers {
            if ready_count(cm).await == nodes {
                converged += 1;
            }
        }
        if converged == nodes {
            break;
        }
        assert!(
            started.elapsed() < CONVERGENCE_DEADLINE,
            "only {converged}/{nodes} nodes list every node Ready after {CONVERGENCE_DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    let converged = started.elapsed();
    println!("gossip_{mode}_nodes={nodes}");
    println!(
        "gossip_{mode}_start_all_{nodes}_nodes_ms={}",
        launched.as_millis()
    );
    println!(
        "gossip_{mode}_convergence_{nodes}_nodes_ms={}",
        converged.as_millis()
    );

    let before: Vec<GossipStats> = managers.iter().map(|cm| cm.stats()).collect();
    let window_start = Instant::now();
    // The measurement window itself: the traffic is what happens meanwhile.
    tokio::time::sleep(STEADY_WINDOW).await;
    let after: Vec<GossipStats> = managers.iter().map(|cm| cm.stats()).collect();
    let secs = window_start.elapsed().as_secs_f64();

    let mut bytes: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (traffic(a) - traffic(b)) as f64 / secs)
        .collect();
    bytes.sort_by(f64::total_cmp);
    let mut messages: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| {
            ((a.messages_sent + a.messages_received) - (b.messages_sent + b.messages_received))
                as f64
                / secs
        })
        .collect();
    messages.sort_by(f64::total_cmp);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "gossip_{mode}_bytes_per_sec_per_node_p50={:.0}",
        percentile(&bytes, 0.5)
    );
    println!(
        "gossip_{mode}_bytes_per_sec_per_node_mean={:.0}",
        mean(&bytes)
    );
    println!(
        "gossip_{mode}_bytes_per_sec_per_node_max={:.0}",
        percentile(&bytes, 1.0)
    );
    println!(
        "gossip_{mode}_messages_per_sec_per_node_p50={:.1}",
        percentile(&messages, 0.5)
    );

    let mut still_ready = 0;
    for cm in &managers {
        if ready_count(cm).await == nodes {
            still_ready += 1;
        }
    }
    let dead_seen: u64 = after.iter().map(|s| s.dead_nodes).sum();
    let rejected: u64 = after.iter().map(|s| s.rejected_records).sum();
    let dropped: u64 = after.iter().map(|s| s.packets_dropped.total()).sum();
    println!("gossip_{mode}_nodes_listing_all_ready_after_window={still_ready}");
    println!("gossip_{mode}_dead_nodes_seen_at_end={dead_seen} gossip_{mode}_rejected_records={rejected} gossip_{mode}_packets_dropped={dropped}");

    // Failure detection: stop the last node, time until the others list it Down.
    let victim = managers.pop().unwrap();
    let victim_id = victim.local_node().await.unwrap().id;
    let stopped = Instant::now();
    victim.shutdown().await;
    let mut first_down = None;
    loop {
        let mut down = 0;
        for cm in &managers {
            let status = cm.get_node(&victim_id).await.unwrap().map(|n| n.status);
            if status == Some(NodeStatus::Down) {
                down += 1;
            }
        }
        if down > 0 && first_down.is_none() {
            first_down = Some(stopped.elapsed());
        }
        if down == managers.len() {
            break;
        }
        assert!(
            stopped.elapsed() < CONVERGENCE_DEADLINE,
            "only {down}/{} nodes list the stopped node Down",
            managers.len()
        );
        tokio::time::sleep(POLL).await;
    }
    let all_down = stopped.elapsed();
    println!(
        "gossip_{mode}_dead_detection_first_node_ms={}",
        first_down.unwrap_or(all_down).as_millis()
    );
    println!(
        "gossip_{mode}_dead_detection_all_nodes_ms={}",
        all_down.as_millis()
    );

    for cm in &managers {
        cm.shutdown().await;
    }
    percentile(&bytes, 0.5)
}
