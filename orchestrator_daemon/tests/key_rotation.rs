//! Removing a member rotates the gossip key, with whole daemons on loopback:
//! the remaining members switch to a fresh key and gossip on with it (a node
//! joining afterwards, a member restarting), while the removed node, left
//! with the old key, is dropped everywhere and its packets are counted as
//! dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission_common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator_api::Peer;
use orchestrator_daemon::Daemon;
use orchestrator_shared_types::NodeId;

use admission_common::{client, eventually, issue, node_id, start};

/// A daemon that must start.
async fn started(dir: &Path, join: Option<&str>) -> Daemon {
    start(dir, join).await.unwrap()
}

/// The key ids of a node's key file, the primary first.
fn key_ids(dir: &Path) -> Vec<String> {
    orchestrator_daemon::gossip_keys::load(&dir.join("gossip.keys"))
        .unwrap()
        .iter()
        .map(|k| k.id().to_string())
        .collect()
}

async fn peers(d: &Daemon) -> Vec<Peer> {
    let c = client(d);
    tokio::task::spawn_blocking(move || c.network_peers().unwrap().data)
        .await
        .unwrap()
}

async fn live_peer(d: &Daemon, id: NodeId) -> Option<Peer> {
    peers(d)
        .await
        .into_iter()
        .find(|p| p.node_id == id && p.live)
}

/// `orchestrator_gossip_packets_dropped_total{reason="unknown_key"}` of `d`.
async fn dropped_unknown_key(d: &Daemon) -> u64 {
    let url = format!("http://{}/metrics", d.api_addr);
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| {
            l.starts_with("orchestrator_gossip_packets_dropped_total")
                && l.contains("reason=\"unknown_key\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_member_rotates_the_gossip_key_and_the_rest_gossip_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| tmp.path().join(n);
    let cp = started(&dir("cp"), None).await;
    let w1 = started(&dir("w1"), Some(&issue(&cp, 3600).await)).await;
    let w2_token = issue(&cp, 3600).await;
    let w2 = started(&dir("w2"), Some(&w2_token)).await;
    let (cp_id, w1_id, w2_id) = (
        node_id(&dir("cp")),
        node_id(&dir("w1")),
        node_id(&dir("w2")),
    );
    let wait = Duration::from_secs(15);
    eventually("every node sees the others alive", wait, || async {
        live_peer(&cp, w1_id).await.is_some()
            && live_peer(&cp, w2_id).await.is_some()
            && live_peer(&w2, w1_id).await.is_some()
            && live_peer(&w1, w2_id).await.is_some()
    })
    .await;
    let old = key_ids(&dir("cp"));
    assert_eq!(old.len(), 1);
    for w in ["w1", "w2"] {
        assert_eq!(key_ids(&dir(w)), old, "{w} joined with the cluster key");
    }
    for d in [&cp, &w2] {
        assert_eq!(dropped_unknown_key(d).await, 0, "one key, nothing dropped");
    }
    // A second key the control plane holds (say, left over from a manual
    // rotation; the removed node may hold it too): dropped as well.
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir("cp").join("gossip.keys"))
            .unwrap();
        let extra = cluster_manager::GossipKey::generate();
        writeln!(f, "{}", *extra.to_base64()).unwrap();
    }
    assert_eq!(key_ids(&dir("cp")).len(), 2);
    // Issued before the rotation: it carries the old key.
    let stale_token = issue(&cp, 3600).await;

    // w1's own mutual-TLS connection to the control plane is answered while
    // it is a member (one held open, one made afresh after the removal).
    let w1_peers = peer_tls::PeerClients::new(
        Arc::new(
            peer_tls::NodeTls::new(&orchestrator_daemon::node_key::open(&dir("w1")).unwrap())
                .unwrap(),
        ),
        Duration::from_secs(2),
    );
    let held = w1_peers.client(cp_id).unwrap();
    let info = peer_tls::url(&cp.api_addr.to_string(), "/api/v1/info");
    assert!(held.get(&info).send().await.unwrap().status().is_success());

    // Remove w1: the answer comes after the rotation, and says it completed.
    let c = client(&cp);
    let asked = Instant::now();
    let removed = tokio::task::spawn_blocking(move || c.remove_member(&w1_id.to_hex()))
        .await
        .unwrap()
        .unwrap()
        .data;
    let answered = asked.elapsed();
    assert_eq!(removed.member.node_id, w1_id);
    let rotation = removed.key_rotation.expect("the key was rotated");
    assert!(rotation.complete, "{rotation:?}");
    assert!(rotation.left_behind.is_empty(), "{rotation:?}");
    let mut rotated = rotation.rotated.clone();
    rotated.sort();
    let mut expected = vec![cp_id, w2_id];
    expected.sort();
    assert_eq!(rotated, expected, "the remaining members, not w1");
    let new = rotation.key_id.clone().unwrap();
    assert_ne!(vec![new.clone()], old);
    eprintln!("removal with rotation answered in {answered:?}");

    // Refused within 2 s of the answer: no remaining node lists w1, and the
    // control plane answers none of its requests, on its open connection or
    // a new one.
    let two = Duration::from_secs(2);
    eventually("the control plane and w2 drop w1", two, || async {
        let (a, b) = (peers(&cp).await, peers(&w2).await);
        !a.iter().chain(&b).any(|p| p.node_id == w1_id)
    })
    .await;
    eventually("the control plane refuses w1's requests", two, || async {
        let open = held.get(&info).send().await;
        let fresh = peer_tls::PeerClients::new(Arc::clone(w1_peers.tls()), two)
            .client(cp_id)
            .unwrap()
            .get(&info)
            .send()
            .await;
        match open {
            Ok(r) => r.status() == 403,
            Err(_) => fresh.is_err(),
        }
    })
    .await;
    let fresh = peer_tls::PeerClients::new(Arc::clone(w1_peers.tls()), two);
    assert!(
        fresh
            .client(cp_id)
            .unwrap()
            .get(&info)
            .send()
            .await
            .is_err(),
        "a removed member gets no new connection"
    );

    // The new key alone, on disk (what a restart reads); w1 got nothing.
    assert_eq!(key_ids(&dir("cp")), vec![new.clone()]);
    assert_eq!(key_ids(&dir("w2")), vec![new.clone()]);
    assert_eq!(
        key_ids(&dir("w1")),
        old,
        "the removed node keeps the old key"
    );

    // w1 still gossips with the old key: its packets are dropped.
    for (name, d) in [("the control plane", &cp), ("w2", &w2)] {
        let before = dropped_unknown_key(d).await;
        eventually(
            &format!("{name} drops packets sealed with the old key"),
            Duration::from_secs(10),
            || async { dropped_unknown_key(d).await > before },
        )
        .await;
    }

    // Gossip goes on under the new key: a node joining with a token issued
    // before the rotation is handed the new key and is seen by everyone ...
    let w3 = started(&dir("w3"), Some(&stale_token)).await;
    let w3_id = node_id(&dir("w3"));
    assert_eq!(key_ids(&dir("w3")), vec![new.clone()], "the current key");
    eventually(
        "w3 and the remaining members see each other",
        wait,
        || async {
            live_peer(&cp, w3_id).await.is_some()
                && live_peer(&w2, w3_id).await.is_some()
                && live_peer(&w3, w2_id).await.is_some()
        },
    )
    .await;
    // ... and a member restarted after the rotation comes back with the new
    // key from its file: the others see its new generation alive.
    let w2_generation = live_peer(&cp, w2_id).await.unwrap().generation;
    w2.stop().await;
    let w2 = started(&dir("w2"), Some(&w2_token)).await;
    eventually("the restarted w2 is seen again", wait, || async {
        let seen = |p: Option<Peer>| p.is_some_and(|p| p.generation != w2_generation);
        seen(live_peer(&cp, w2_id).await) && seen(live_peer(&w3, w2_id).await)
    })
    .await;
    eventually("the restarted w2 hears the control plane", wait, || async {
        live_peer(&w2, cp_id).await.is_some()
    })
    .await;
    assert!(
        live_peer(&w2, w1_id).await.is_none(),
        "the removed node is not brought back"
    );

    for d in [w1, w2, w3, cp] {
        tokio::time::timeout(Duration::from_secs(20), d.stop())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_away_during_the_rotation_is_reported_and_catches_up_with_the_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| tmp.path().join(n);
    let cp = started(&dir("cp"), None).await;
    let w1 = started(&dir("w1"), Some(&issue(&cp, 3600).await)).await;
    let w2_token = issue(&cp, 3600).await;
    let w2 = started(&dir("w2"), Some(&w2_token)).await;
    let (cp_id, w1_id, w2_id) = (
        node_id(&dir("cp")),
        node_id(&dir("w1")),
        node_id(&dir("w2")),
    );
    let wait = Duration::from_secs(15);
    eventually("the control plane sees both workers", wait, || async {
        live_peer(&cp, w1_id).await.is_some() && live_peer(&cp, w2_id).await.is_some()
    })
    .await;
    let old = key_ids(&dir("cp"));
    let w2_generation = live_peer(&cp, w2_id).await.unwrap().generation;

    // w2 is away while w1 is removed: the rotation goes on without it and
    // the answer names it.
    w2.stop().await;
    let c = client(&cp);
    let t0 = Instant::now();
    let removed = tokio::task::spawn_blocking(move || c.remove_member(&w1_id.to_hex()))
        .await
        .unwrap()
        .unwrap()
        .data;
    eprintln!("removal answered in {:?}", t0.elapsed());
    let rotation = removed.key_rotation.expect("the key was rotated");
    assert!(!rotation.complete, "{rotation:?}");
    assert_eq!(rotation.rotated, vec![cp_id]);
    assert_eq!(rotation.left_behind.len(), 1, "{rotation:?}");
    assert_eq!(rotation.left_behind[0].node_id, w2_id);
    let new = rotation.key_id.unwrap();
    assert_eq!(key_ids(&dir("cp")), vec![new.clone()]);
    assert_eq!(key_ids(&dir("w2")), old, "w2 was given nothing");
    w1.stop().await;

    // Back with the old key only, w2 is cut off: its packets are dropped.
    let before = dropped_unknown_key(&cp).await;
    let w2 = started(&dir("w2"), Some(&w2_token)).await;
    eventually("the control plane drops w2's packets", wait, || async {
        dropped_unknown_key(&cp).await > before
    })
    .await;
    w2.stop().await;

    // Given the control plane's key file, it is back.
    std::fs::copy(dir("cp").join("gossip.keys"), dir("w2").join("gossip.keys")).unwrap();
    let w2 = started(&dir("w2"), Some(&w2_token)).await;
    assert_eq!(key_ids(&dir("w2")), vec![new]);
    eventually("the control plane sees w2 again", wait, || async {
        live_peer(&cp, w2_id)
            .await
            .is_some_and(|p| p.generation != w2_generation)
    })
    .await;

    for d in [w2, cp] {
        tokio::time::timeout(Duration::from_secs(20), d.stop())
            .await
            .unwrap();
    }
}
