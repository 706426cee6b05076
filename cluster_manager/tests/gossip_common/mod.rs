//! Helpers of the gossip tests: free ports, keys and records, managers on
//! 127.0.0.1, and waiting on conditions with a deadline.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use cluster_manager::{test_node, ChitchatClusterManager, GossipConfig};
use cluster_manager_interface::{ClusterError, ClusterEvent, ClusterManager, Peer, ROLE_LABEL};
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::{Node, NodeId, NodeStatus, PublicKey};
use tokio::sync::broadcast;
use tokio::time::Instant;

pub const DEADLINE: Duration = Duration::from_secs(10);
pub const POLL: Duration = Duration::from_millis(20);
pub const GOSSIP: Duration = Duration::from_millis(50);
pub const GENERATION: u64 = 1_000;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn id_of(key: &SigningKey) -> NodeId {
    NodeId(key.verifying_key().to_bytes())
}

/// The record node `seed` publishes: a test node with the key's id, run by
/// that key (a foreign operator would need a proof), an API address and a
/// role label.
pub fn node_of(key: &SigningKey, seed: u8) -> Node {
    let mut node = test_node(u64::from(seed), 2000, 4 << 30);
    node.id = id_of(key);
    node.operator = PublicKey(node.id.0);
    node.address = format!("127.0.0.1:{}", 9000 + u16::from(seed));
    node.labels
        .insert(ROLE_LABEL.to_owned(), format!("role-{seed}"));
    node
}

pub fn config(port: u16, seeds: &[u16], generation: u64) -> GossipConfig {
    let mut config = GossipConfig::new(addr(port), addr(port));
    config.seeds = seeds.iter().map(|p| addr(*p).to_string()).collect();
    config.gossip_interval = GOSSIP;
    config.generation = generation;
    config
}

/// Starts the node of `key(seed)` on `port`, seeded on `seeds`.
pub async fn start(seed: u8, port: u16, seeds: &[u16], generation: u64) -> ChitchatClusterManager {
    let k = key(seed);
    ChitchatClusterManager::start(
        config(port, seeds, generation),
        k.clone(),
        node_of(&k, seed),
    )
    .await
    .unwrap()
}

/// Polls `check` every 20 ms until it holds; fails after the deadline.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Waits for an event matching `wanted`, skipping others.
pub async fn event(
    events: &mut broadcast::Receiver<ClusterEvent>,
    what: &str,
    wanted: impl Fn(&ClusterEvent) -> bool,
) -> ClusterEvent {
    let wait = async {
        loop {
            let e = events.recv().await.unwrap();
            if wanted(&e) {
                return e;
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("no event {what} within {DEADLINE:?}"))
}

pub async fn ready_ids(cm: &ChitchatClusterManager) -> BTreeSet<NodeId> {
    cm.list_nodes()
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.status == NodeStatus::Ready)
        .map(|n| n.id)
        .collect()
}

/// How `cm`'s membership protocol sees node `id`.
pub async fn peer(cm: &ChitchatClusterManager, id: NodeId) -> Peer {
    let peers = cm.peers().await.unwrap();
    peers.into_iter().find(|p| p.node_id == id).unwrap()
}

/// The error of starting node `node_seed` signed with key `key_seed`.
pub async fn start_err(config: GossipConfig, key_seed: u8, node_seed: u8) -> ClusterError {
    let node = node_of(&key(node_seed), node_seed);
    ChitchatClusterManager::start(config, key(key_seed), node)
        .await
        .unwrap_err()
}

pub async fn status_of(cm: &ChitchatClusterManager, id: &NodeId) -> Option<NodeStatus> {
    cm.get_node(id).await.unwrap().map(|n| n.status)
}

/// `node` with status `Ready`: for comparing records where the status is not
/// under test (on a starved machine the failure detector may flap a node).
pub fn ready(node: Node) -> Node {
    Node {
        status: NodeStatus::Ready,
        ..node
    }
}

/// Waits until every manager lists exactly `ids`, all `Ready`.
pub async fn converge(managers: &[&ChitchatClusterManager], ids: &BTreeSet<NodeId>) {
    for (i, cm) in managers.iter().enumerate() {
        eventually(
            &format!("manager {i} to list {} ready nodes", ids.len()),
            || async {
                let listed = cm.list_nodes().await.unwrap();
                listed.len() == ids.len() && ready_ids(cm).await == *ids
            },
        )
        .await;
    }
}
