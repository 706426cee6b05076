//! `ChitchatClusterManager` over real UDP on 127.0.0.1: the contract suite,
//! membership of several nodes, failure and restart, forged records, cordons,
//! record updates and garbage packets.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chitchat::transport::UdpTransport;
use chitchat::{
    spawn_chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig,
    ProtocolVersion,
};
use cluster_manager::{test_node, ChitchatClusterManager, GossipConfig};
use cluster_manager_interface::{
    testsuite, ClusterError, ClusterEvent, ClusterManager, Peer, ROLE_LABEL,
};
use ed25519_dalek::{Signer as _, SigningKey};
use orchestrator_shared_types::{Node, NodeId, NodeStatus};
use tokio::sync::broadcast;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
const GOSSIP: Duration = Duration::from_millis(50);
const GENERATION: u64 = 1_000;

/// A port nobody listens on right now.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn id_of(key: &SigningKey) -> NodeId {
    NodeId(key.verifying_key().to_bytes())
}

/// The record node `seed` publishes: a test node with the key's id, an API
/// address and a role label.
fn node_of(key: &SigningKey, seed: u8) -> Node {
    let mut node = test_node(u64::from(seed), 2000, 4 << 30);
    node.id = id_of(key);
    node.address = format!("127.0.0.1:{}", 9000 + u16::from(seed));
    node.labels
        .insert(ROLE_LABEL.to_owned(), format!("role-{seed}"));
    node
}

fn config(port: u16, seeds: &[u16], generation: u64) -> GossipConfig {
    let mut config = GossipConfig::new(addr(port), addr(port));
    config.seeds = seeds.iter().map(|p| addr(*p).to_string()).collect();
    config.gossip_interval = GOSSIP;
    config.generation = generation;
    config
}

/// Starts the node of `key(seed)` on `port`, seeded on `seeds`.
async fn start(seed: u8, port: u16, seeds: &[u16], generation: u64) -> ChitchatClusterManager {
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
async fn eventually<F, Fut>(what: &str, mut check: F)
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
async fn event(
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

async fn ready_ids(cm: &ChitchatClusterManager) -> BTreeSet<NodeId> {
    cm.list_nodes()
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.status == NodeStatus::Ready)
        .map(|n| n.id)
        .collect()
}

/// How `cm`'s membership protocol sees node `id`.
async fn peer(cm: &ChitchatClusterManager, id: NodeId) -> Peer {
    let peers = cm.peers().await.unwrap();
    peers.into_iter().find(|p| p.node_id == id).unwrap()
}

/// The error of starting node `node_seed` signed with key `key_seed`.
async fn start_err(config: GossipConfig, key_seed: u8, node_seed: u8) -> ClusterError {
    let node = node_of(&key(node_seed), node_seed);
    ChitchatClusterManager::start(config, key(key_seed), node)
        .await
        .unwrap_err()
}

async fn status_of(cm: &ChitchatClusterManager, id: &NodeId) -> Option<NodeStatus> {
    cm.get_node(id).await.unwrap().map(|n| n.status)
}

/// `node` with status `Ready`: for comparing records where the status is not
/// under test (on a starved machine the failure detector may flap a node).
fn ready(node: Node) -> Node {
    Node {
        status: NodeStatus::Ready,
        ..node
    }
}

/// Waits until every manager lists exactly `ids`, all `Ready`.
async fn converge(managers: &[&ChitchatClusterManager], ids: &BTreeSet<NodeId>) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_manager_passes_the_contract_suite() {
    testsuite::run_all(|| async {
        Arc::new(start(1, free_port(), &[], GENERATION).await) as Arc<dyn ClusterManager>
    })
    .await;
}

#[tokio::test]
async fn start_rejects_bad_config_a_foreign_key_and_a_busy_port() {
    let port = free_port();
    let mut bad = config(port, &[], GENERATION);
    bad.phi_threshold = -1.0;
    let err = start_err(bad, 1, 1).await;
    assert!(
        matches!(err, ClusterError::InvalidConfig(ref m) if m.contains("phi")),
        "{err}"
    );

    let err = start_err(config(port, &[], GENERATION), 2, 1).await;
    assert!(matches!(err, ClusterError::KeyMismatch { .. }), "{err}");

    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let err = start_err(config(busy_port, &[], GENERATION), 1, 1).await;
    assert!(
        matches!(err, ClusterError::Bind { addr, .. } if addr.port() == busy_port),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_list_each_other_ready_with_their_records() {
    let ports = [free_port(), free_port(), free_port()];
    let n1 = start(1, ports[0], &[], GENERATION).await;
    let mut events = n1.subscribe_to_events();
    let n2 = start(2, ports[1], &[ports[0]], GENERATION + 2).await;
    let n3 = start(3, ports[2], &[ports[0]], GENERATION + 3).await;
    let ids: BTreeSet<NodeId> = [1, 2, 3].map(|s| id_of(&key(s))).into();
    converge(&[&n1, &n2, &n3], &ids).await;

    for cm in [&n1, &n2, &n3] {
        for seed in [1, 2, 3] {
            let listed = cm.get_node(&id_of(&key(seed))).await.unwrap().unwrap();
            assert_eq!(
                ready(listed),
                node_of(&key(seed), seed),
                "record of node {seed}"
            );
        }
    }
    // Nodes 2 and 3 join in either order.
    let mut added = BTreeSet::new();
    while added.len() < 2 {
        let e = event(&mut events, "NodeAdded", |e| {
            matches!(e, ClusterEvent::NodeAdded(_))
        })
        .await;
        if let ClusterEvent::NodeAdded(n) = e {
            let seed = [2, 3]
                .into_iter()
                .find(|s| id_of(&key(*s)) == n.id)
                .unwrap();
            assert_eq!(ready(n.clone()), node_of(&key(seed), seed));
            added.insert(n.id);
        }
    }
    assert_eq!(added, [2, 3].map(|s| id_of(&key(s))).into());

    assert_eq!(n1.peers().await.unwrap().len(), 3);
    let me = peer(&n1, id_of(&key(1))).await;
    assert!(me.is_self && me.live && me.gossip_addr == addr(ports[0]).to_string());
    let three = peer(&n1, id_of(&key(3))).await;
    assert!(!three.is_self && three.role == "role-3" && three.generation == GENERATION + 3);
    assert_eq!(three.gossip_addr, addr(ports[2]).to_string());
    assert_eq!(three.api_addr, "127.0.0.1:9003");
    eventually("node 1 to count 3 live nodes", || async {
        let stats = n1.stats();
        (stats.live_nodes, stats.dead_nodes) == (3, 0)
    })
    .await;
    let stats = n1.stats();
    assert_eq!(stats.rejected_records, 0);
    assert!(
        stats.messages_sent > 0 && stats.messages_received > 0,
        "{stats:?}"
    );
    assert!(
        stats.bytes_sent > 0 && stats.bytes_received > 0,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_turns_down_and_a_restart_makes_it_ready_again() {
    let ports = [free_port(), free_port(), free_port()];
    let n1 = start(1, ports[0], &[], GENERATION).await;
    let n2 = start(2, ports[1], &[ports[0]], GENERATION).await;
    let n3 = start(3, ports[2], &[ports[0]], GENERATION).await;
    let ids: BTreeSet<NodeId> = [1, 2, 3].map(|s| id_of(&key(s))).into();
    converge(&[&n1, &n2, &n3], &ids).await;
    let three = id_of(&key(3));
    let mut events = n1.subscribe_to_events();

    let stopped = Instant::now();
    n3.shutdown().await;
    n3.shutdown().await; // idempotent
    let down = event(&mut events, "NodeUpdated(Down)", |e| {
        matches!(e, ClusterEvent::NodeUpdated(n) if n.id == three && n.status == NodeStatus::Down)
    })
    .await;
    eprintln!(
        "node declared Down by node 1 after {} ms (gossip every {} ms)",
        stopped.elapsed().as_millis(),
        GOSSIP.as_millis()
    );
    assert_eq!(
        down,
        ClusterEvent::NodeUpdated(Node {
            status: NodeStatus::Down,
            ..node_of(&key(3), 3)
        })
    );
    eventually("node 2 to see node 3 Down", || async {
        status_of(&n2, &three).await == Some(NodeStatus::Down)
    })
    .await;
    eventually("node 1 to count one dead node", || async {
        n1.stats().dead_nodes == 1
    })
    .await;
    assert!(!peer(&n1, three).await.live);
    // After shutdown: changes are refused, reads answer the last membership.
    assert!(matches!(
        n3.set_unschedulable(&three, true).await,
        Err(ClusterError::ShutDown)
    ));
    assert!(matches!(n3.initialize().await, Err(ClusterError::ShutDown)));
    assert_eq!(n3.list_nodes().await.unwrap().len(), 3);

    // Same key and port, a newer generation.
    let n3 = start(3, ports[2], &[ports[0]], GENERATION + 1).await;
    event(&mut events, "node 3 Ready again", |e| {
        matches!(e, ClusterEvent::NodeUpdated(n) | ClusterEvent::NodeAdded(n)
            if n.id == three && n.status == NodeStatus::Ready)
    })
    .await;
    converge(&[&n1, &n2, &n3], &ids).await;
    let listed = n1.list_nodes().await.unwrap();
    assert_eq!(
        listed.iter().filter(|n| n.id == three).count(),
        1,
        "{listed:?}"
    );
    let p3 = peer(&n1, three).await;
    assert_eq!((p3.generation, p3.live), (GENERATION + 1, true));
}

/// A record in the wire format, signed by `signer` (the genuine node's key or not).
fn record_value(signer: &SigningKey, id: &ChitchatId, node: &Node) -> String {
    let json =
        serde_json::json!({ "node": node, "generation": id.generation_id, "seq": 1 }).to_string();
    let message = format!(
        "univrs-node-record-v1\nunivrs\n{}\n{}\n{}\n{json}",
        id.node_id, id.generation_id, id.gossip_advertise_addr
    );
    let signature = signer.sign(message.as_bytes());
    format!("{}.{json}", BASE64.encode(signature.to_bytes()))
}

/// A bare chitchat node of cluster `univrs` seeded on port `seed`, gossiping
/// as node `id` (generation `generation`) the record `node` signed by `signer`.
async fn raw_chitchat(
    id: NodeId,
    generation: u64,
    signer: &SigningKey,
    node: &Node,
    seed: u16,
) -> ChitchatHandle {
    let id = ChitchatId::new(id.to_string(), generation, addr(free_port()));
    let value = record_value(signer, &id, node);
    let config = ChitchatConfig {
        listen_addr: id.gossip_advertise_addr,
        chitchat_id: id,
        cluster_id: "univrs".to_owned(),
        gossip_interval: GOSSIP,
        seed_nodes: vec![addr(seed).to_string()],
        failure_detector_config: FailureDetectorConfig {
            initial_interval: GOSSIP,
            dead_node_grace_period: Duration::from_secs(3600),
            ..FailureDetectorConfig::default()
        },
        marked_for_deletion_grace_period: Duration::from_secs(3600),
        catchup_callback: None,
        extra_liveness_predicate: None,
        protocol_version: ProtocolVersion::V0,
    };
    spawn_chitchat(config, vec![("node".to_owned(), value)], &UdpTransport)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_records_are_ignored_and_counted_once() {
    let ports = [free_port(), free_port()];
    let n1 = start(1, ports[0], &[], GENERATION).await;
    let n2 = start(2, ports[1], &[ports[0]], GENERATION).await;
    let (one, two) = (id_of(&key(1)), id_of(&key(2)));
    converge(&[&n1, &n2], &[one, two].into()).await;
    let mut events = n1.subscribe_to_events();

    // Control: a bare chitchat node with a genuine record is a member.
    let k7 = key(7);
    let genuine = raw_chitchat(id_of(&k7), 5, &k7, &node_of(&k7, 7), ports[0]).await;
    eventually("node 1 to list the genuine bare node", || async {
        status_of(&n1, &id_of(&k7)).await == Some(NodeStatus::Ready)
    })
    .await;

    // Key A's id, signed by key B.
    let (a, b) = (key(10), key(11));
    let forged_a = raw_chitchat(id_of(&a), 5, &b, &node_of(&a, 10), ports[0]).await;
    // Node 2's id with a newer generation, other labels, signed by key B.
    let mut fake_two = node_of(&key(2), 2);
    fake_two.labels.insert("zone".into(), "evil".into());
    fake_two.address = "6.6.6.6:1".into();
    let forged_two = raw_chitchat(two, GENERATION + 1_000, &b, &fake_two, ports[0]).await;

    eventually("node 1 to reject both forged records", || async {
        n1.stats().rejected_records >= 2
    })
    .await;
    // Both forged chitchat ids are alive in chitchat by now; give them more
    // rounds to (not) show up, and check each record was counted once.
    let since = n1.stats().messages_received;
    eventually("node 1 to gossip some more", || async {
        n1.stats().messages_received >= since + 40
    })
    .await;
    assert_eq!(n1.stats().rejected_records, 2);
    assert_eq!(n1.get_node(&id_of(&a)).await.unwrap(), None);
    let seen_two = n1.get_node(&two).await.unwrap().unwrap();
    assert_eq!(ready(seen_two), node_of(&key(2), 2));
    assert_eq!(peer(&n1, two).await.generation, GENERATION);
    assert_eq!(n1.list_nodes().await.unwrap().len(), 3);
    while let Ok(e) = events.try_recv() {
        assert_ne!(e.node_id(), id_of(&a), "event about the forged node: {e:?}");
        if let ClusterEvent::NodeUpdated(n) | ClusterEvent::NodeAdded(n) = &e {
            assert_ne!(
                n.address, fake_two.address,
                "forged record of node 2 applied: {e:?}"
            );
        }
    }
    drop((genuine, forged_a, forged_two));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordons_are_published_locally_and_overlaid_on_peers() {
    let ports = [free_port(), free_port()];
    let n1 = start(1, ports[0], &[], GENERATION).await;
    let n2 = start(2, ports[1], &[ports[0]], GENERATION).await;
    let two = id_of(&key(2));
    converge(&[&n1, &n2], &[id_of(&key(1)), two].into()).await;
    let mut events = n1.subscribe_to_events();

    // Node 2 cordons itself: published, node 1 sees it.
    assert!(
        n2.set_unschedulable(&two, true)
            .await
            .unwrap()
            .unschedulable
    );
    event(
        &mut events,
        "NodeUpdated(cordoned) from gossip",
        |e| matches!(e, ClusterEvent::NodeUpdated(n) if n.id == two && n.unschedulable),
    )
    .await;
    assert!(n1.get_node(&two).await.unwrap().unwrap().unschedulable);

    // Node 1 uncordons node 2 in its own view only: an overlay.
    let returned = n1.set_unschedulable(&two, false).await.unwrap();
    assert!(!returned.unschedulable && returned.id == two);
    event(
        &mut events,
        "NodeUpdated(uncordoned) from the overlay",
        |e| matches!(e, ClusterEvent::NodeUpdated(n) if n.id == two && !n.unschedulable),
    )
    .await;
    assert!(
        !n1.list_nodes()
            .await
            .unwrap()
            .iter()
            .find(|n| n.id == two)
            .unwrap()
            .unschedulable
    );
    assert!(
        n2.local_node().await.unwrap().unschedulable,
        "node 2's own record is unchanged"
    );
    n1.set_unschedulable(&two, false).await.unwrap();
    assert!(events.try_recv().is_err(), "no change, no event");

    let stranger = id_of(&key(99));
    let err = n1.set_unschedulable(&stranger, true).await.unwrap_err();
    assert!(
        matches!(err, ClusterError::UnknownNode(id) if id == stranger),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_updates_reach_peers() {
    let ports = [free_port(), free_port()];
    let n1 = start(1, ports[0], &[], GENERATION).await;
    let n2 = start(2, ports[1], &[ports[0]], GENERATION).await;
    let two = id_of(&key(2));
    converge(&[&n1, &n2], &[id_of(&key(1)), two].into()).await;
    let mut events = n1.subscribe_to_events();
    let mut local_events = n2.subscribe_to_events();

    let mut changed = node_of(&key(2), 2);
    changed.status = NodeStatus::NotReady;
    changed.labels.insert("disk".into(), "ssd".into());
    changed.resources_allocatable.cpu_millis = 1500;
    n2.update_local(changed.clone()).await.unwrap();
    assert_eq!(
        local_events.try_recv().unwrap(),
        ClusterEvent::NodeUpdated(changed.clone())
    );
    assert_eq!(n2.local_node().await.unwrap(), changed);
    event(
        &mut events,
        "NodeUpdated with the new record",
        |e| matches!(e, ClusterEvent::NodeUpdated(n) if *n == changed),
    )
    .await;
    eventually("node 1 to list the new record", || async {
        n1.get_node(&two).await.unwrap().as_ref() == Some(&changed)
    })
    .await;

    n2.update_local(changed).await.unwrap();
    assert!(
        local_events.try_recv().is_err(),
        "an unchanged record emits nothing"
    );
    let err = n2.update_local(node_of(&key(3), 3)).await.unwrap_err();
    assert!(matches!(err, ClusterError::KeyMismatch { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_packets_do_not_break_gossip() {
    let ports = [free_port(), free_port(), free_port()];
    let n1 = start(1, ports[0], &[], GENERATION).await;
    let n2 = start(2, ports[1], &[ports[0]], GENERATION).await;
    converge(&[&n1, &n2], &[id_of(&key(1)), id_of(&key(2))].into()).await;

    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let packets: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0],
        vec![0, 0],
        vec![0, 0, 0, 6, b'u', b'n'],
        vec![1, 0, 0xff, 0xff, 0xff, 0xff],
        vec![0xff; 60_000],
        b"univrs garbage".to_vec(),
        (0..=255).collect(),
    ];
    for _ in 0..5 {
        for packet in &packets {
            sender.send_to(packet, addr(ports[0])).unwrap();
        }
    }

    let n3 = start(3, ports[2], &[ports[0]], GENERATION).await;
    let ids: BTreeSet<NodeId> = [1, 2, 3].map(|s| id_of(&key(s))).into();
    converge(&[&n1, &n2, &n3], &ids).await;
    let mut changed = node_of(&key(1), 1);
    changed.labels.insert("after".into(), "garbage".into());
    n1.update_local(changed.clone()).await.unwrap();
    eventually("node 3 to see node 1's new record", || async {
        n3.get_node(&changed.id).await.unwrap().as_ref() == Some(&changed)
    })
    .await;
}
