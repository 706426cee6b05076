//! Forged node records gossiped by a bare chitchat node: ignored, logged and
//! counted, and never a change to a genuine member's record.

#![allow(clippy::unwrap_used)]

mod gossip_common;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chitchat::transport::UdpTransport;
use chitchat::{
    spawn_chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig,
    ProtocolVersion,
};
use cluster_manager_interface::{ClusterEvent, ClusterManager};
use ed25519_dalek::{Signer as _, SigningKey};
use gossip_common::*;
use orchestrator_shared_types::{Node, NodeId, NodeStatus};

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
