//! `ChitchatClusterManager` over real UDP on 127.0.0.1: the contract suite,
//! membership of several nodes, failure and restart, cordons, record updates
//! and garbage packets (forged records: `gossip_forged.rs`).

#![allow(clippy::unwrap_used)]

mod gossip_common;

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::sync::Arc;

use cluster_manager_interface::{testsuite, ClusterError, ClusterEvent, ClusterManager};
use gossip_common::*;
use orchestrator_shared_types::{Node, NodeId, NodeStatus};
use tokio::time::Instant;

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
    changed.transition(NodeStatus::NotReady).unwrap();
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
