//! Evidence travels by gossip (issue 7, MYCELIAL.md §3): two members over
//! real chitchat on 127.0.0.1. A worker's peer prober gossips its signed
//! heartbeat observations and the control plane keeps them; an attestation
//! handed to one member's trust service reaches the other; forged evidence —
//! a self-signed observation, a claimed score, a backdated registration, a
//! broken signature — is refused and leaves the log's state hash unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rest_common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use cluster_manager::gossip::{ChitchatClusterManager, GossipConfig};
use cluster_manager::mock::test_node;
use cluster_manager_interface::ClusterManager;
use mycelial::evidence::{
    sign_attestation, sign_observation, Attestation, Entry, NodeRegistration, Observation,
    ObservationKind,
};
use orchestrator_shared_types::{Node, NodeId, PublicKey};
use orchestrator_trust::gossip::{run_prober, PREFIX};
use orchestrator_trust::TrustService;
use rest_common::{eventually, key};
use state_store_interface::memory::InMemoryStore;
use state_store_interface::StateStore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(30);

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

fn id(seed: u8) -> NodeId {
    NodeId(key(seed).verifying_key().to_bytes())
}

/// Node `seed`, run by an operator of its own (its own key).
fn node(seed: u8) -> Node {
    let mut n = test_node(u64::from(seed), 2000, 4 << 30);
    n.id = id(seed);
    n.operator = PublicKey(n.id.0);
    n
}

async fn member(seed: u8, port: u16, seeds: &[u16]) -> Arc<ChitchatClusterManager> {
    let mut config = GossipConfig::new(addr(port), addr(port));
    config.seeds = seeds.iter().map(|p| addr(*p).to_string()).collect();
    config.gossip_interval = Duration::from_millis(50);
    config.generation = 1_000;
    Arc::new(
        ChitchatClusterManager::start(config, key(seed), node(seed))
            .await
            .unwrap(),
    )
}

async fn trust_service(seed: u8) -> TrustService {
    let store: Arc<dyn StateStore> = Arc::new(InMemoryStore::new());
    store.initialize().await.unwrap();
    let t = TrustService::new(store, key(seed), "test-ledger");
    t.load().await.unwrap();
    t
}

fn observations_by(t: &TrustService, observer: NodeId) -> usize {
    t.engine()
        .snapshot()
        .entries()
        .iter()
        .filter(|e| matches!(e, Entry::Observation(o) if o.body.observer == observer))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_and_attestations_travel_by_gossip_and_forgeries_change_nothing() {
    let (pa, pb) = (free_port(), free_port());
    let a = member(1, pa, &[]).await;
    let b = member(2, pb, &[pa]).await;
    let control = trust_service(1).await;
    eventually("the control plane registers both members", || async {
        control.observe(a.as_ref()).await;
        a.list_nodes().await.unwrap().len() == 2
            && control.engine().snapshot().registration(&id(2)).is_some()
    })
    .await;

    // The worker's prober observes the control plane's node and gossips it.
    let cancel = CancellationToken::new();
    let prober = tokio::spawn(run_prober(
        key(2),
        Arc::clone(&b) as Arc<dyn ClusterManager>,
        Duration::from_millis(100),
        cancel.clone(),
    ));
    eventually(
        "the control plane keeps the worker's observations",
        || async {
            control.receive_gossip(a.as_ref()).await;
            observations_by(&control, id(2)) > 0
        },
    )
    .await;
    cancel.cancel();
    prober.await.unwrap();
    // Gossip carries them as published: signed by node 2, about node 1.
    let gossiped = a.gossiped(PREFIX).await.unwrap();
    assert!(gossiped.iter().all(|g| g.node == id(2)), "{gossiped:?}");

    // An attestation handed to another member's trust service reaches it.
    let other = trust_service(2).await;
    other.observe(b.as_ref()).await;
    let now = Utc::now();
    let att = sign_attestation(
        &key(2),
        Attestation {
            issuer: PublicKey(id(2).0),
            subject: PublicKey(id(1).0),
            weight: 0.8,
            issued_at: now,
            expires_at: now + TimeDelta::days(30),
        },
    )
    .unwrap();
    assert!(other.append(Entry::Attestation(att.clone())).await.unwrap());
    assert!(other.publish_evidence(b.as_ref()).await >= 1);
    eventually("the attestation reaches the control plane", || async {
        control.receive_gossip(a.as_ref()).await;
        control
            .engine()
            .snapshot()
            .entries()
            .contains(&Entry::Attestation(att.clone()))
    })
    .await;

    // Forgeries published under node 2's name.
    let before = control.engine().state_hash();
    let len = control.engine().len();
    let self_signed = sign_observation(
        &key(2),
        Observation {
            observer: id(2),
            subject: id(2),
            at: Utc::now(),
            kind: ObservationKind::Heartbeat { answered: true },
        },
    )
    .unwrap();
    let mut tampered = sign_observation(
        &key(2),
        Observation {
            observer: id(2),
            subject: id(1),
            at: Utc::now(),
            kind: ObservationKind::Heartbeat { answered: true },
        },
    )
    .unwrap();
    tampered.body.kind = ObservationKind::Heartbeat { answered: false };
    let backdated = Entry::Node(NodeRegistration {
        node: id(2),
        operator: PublicKey(id(2).0),
        joined_at: Utc::now() - TimeDelta::days(400),
        asn: None,
    });
    let forged = serde_json::to_string(&vec![
        Entry::Observation(self_signed),
        Entry::Observation(tampered),
        backdated,
    ])
    .unwrap();
    b.publish("ev:forged-1", &forged).await.unwrap();
    b.publish("ev:score", r#"{"node": "me", "score": 1.0}"#)
        .await
        .unwrap();
    b.publish("ev:scores", r#"[{"score": 1.0}]"#).await.unwrap();
    let mut refused = 0;
    let deadline = Instant::now() + DEADLINE;
    while refused < 5 {
        assert!(Instant::now() < deadline, "only {refused} forgeries read");
        refused += control.receive_gossip(a.as_ref()).await.refused;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused, 5, "3 forged entries and 2 unreadable batches");
    assert_eq!(control.engine().len(), len);
    assert_eq!(control.engine().state_hash(), before);
    // Read once: the next round neither accepts nor refuses them again.
    let again = control.receive_gossip(a.as_ref()).await;
    assert_eq!((again.accepted, again.refused), (0, 0), "{again:?}");

    a.shutdown().await;
    b.shutdown().await;
}
