//! Sealed gossip attacked over real UDP on 127.0.0.1: nodes sharing a key
//! converge; a node with another key (or none) is never admitted and its
//! packets are counted as dropped; tampered, truncated and removed-key
//! packets are dropped; keys rotate without a restart; nothing of a node
//! record travels in clear.

#![allow(clippy::unwrap_used)]

mod gossip_common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use cluster_manager::gossip::DropReason;
use cluster_manager::{ChitchatClusterManager, GossipKey, Keyring};
use cluster_manager_interface::ClusterManager;
use gossip_common::*;
use orchestrator_shared_types::NodeId;
use tokio::net::UdpSocket;
use tokio::time::Instant;

fn ring(keys: &[&GossipKey]) -> Arc<Keyring> {
    let keys: Vec<GossipKey> = keys.iter().map(|k| (*k).clone()).collect();
    Arc::new(Keyring::new(&keys).unwrap())
}

/// Starts node `seed` on `port`, seeded on `seeds`, sealing with `keyring`.
async fn start_sealed(
    seed: u8,
    port: u16,
    seeds: &[u16],
    keyring: Option<Arc<Keyring>>,
) -> ChitchatClusterManager {
    let k = key(seed);
    let mut c = config(port, seeds, GENERATION + u64::from(seed));
    c.keyring = keyring;
    ChitchatClusterManager::start(c, k.clone(), node_of(&k, seed))
        .await
        .unwrap()
}

fn dropped(cm: &ChitchatClusterManager, reason: DropReason) -> u64 {
    cm.stats().packets_dropped.get(reason)
}

/// Receives on `s` until a packet from `from` satisfies `wanted`.
async fn recv_from(s: &UdpSocket, from: SocketAddr, wanted: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, peer) = tokio::time::timeout_at(deadline, s.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no wanted packet from {from} within {DEADLINE:?}"))
            .unwrap();
        if peer == from && wanted(&buf[..n]) {
            return buf[..n].to_vec();
        }
    }
}

/// The delta's blocks of a plain chitchat message, zstd-compressed blocks
/// inflated (chitchat compresses them when it pays), concatenated.
fn delta(plain: &[u8]) -> Vec<u8> {
    const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let mut out = plain.to_vec();
    for pos in 3..plain.len().saturating_sub(4) {
        if plain[pos..pos + 4] == ZSTD_MAGIC && plain[pos - 3] == 1 {
            let len = usize::from(u16::from_le_bytes([plain[pos - 2], plain[pos - 1]]));
            if let Some(block) = plain.get(pos..pos + len) {
                if let Ok(inflated) = zstd::bulk::decompress(block, 65_535) {
                    out.extend(inflated);
                }
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_the_key_converge_and_strangers_are_never_admitted() {
    let k1 = GossipKey::generate();
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let n1 = start_sealed(1, ports[0], &[], Some(ring(&[&k1]))).await;
    let n2 = start_sealed(2, ports[1], &[ports[0]], Some(ring(&[&k1]))).await;
    // Another cluster's key, and no key at all, both seeded on n1.
    let stranger = start_sealed(
        3,
        ports[2],
        &[ports[0]],
        Some(ring(&[&GossipKey::generate()])),
    )
    .await;
    let plain = start_sealed(4, ports[3], &[ports[0]], None).await;

    let members: BTreeSet<NodeId> = [1, 2].map(|s| id_of(&key(s))).into();
    converge(&[&n1, &n2], &members).await;
    // Both outsiders keep gossiping at n1: wait until it has dropped several
    // packets of each, then check that neither was ever let in.
    eventually(
        "n1 to drop the stranger's and the plain node's packets",
        || async {
            dropped(&n1, DropReason::UnknownKey) >= 5 && dropped(&n1, DropReason::Unsealed) >= 5
        },
    )
    .await;
    for cm in [&n1, &n2] {
        assert_eq!(ready_ids(cm).await, members);
        let listed: BTreeSet<NodeId> = cm
            .list_nodes()
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(listed, members, "an outsider is listed");
        let peers: Vec<NodeId> = cm
            .peers()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.node_id)
            .collect();
        assert!(!peers.contains(&id_of(&key(3))) && !peers.contains(&id_of(&key(4))));
    }
    assert_eq!(
        ready_ids(&stranger).await,
        [id_of(&key(3))].into(),
        "the stranger learnt nothing"
    );
    assert_eq!(ready_ids(&plain).await, [id_of(&key(4))].into());
    assert_eq!(n2.stats().packets_dropped.auth_failed, 0);
    for cm in [&n1, &n2, &stranger, &plain] {
        cm.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_truncated_and_removed_key_packets_are_dropped_and_records_never_travel_in_clear()
{
    let k1 = GossipKey::generate();
    let k2 = GossipKey::generate();
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let probe_port = probe.local_addr().unwrap().port();
    let (pa, pb) = (free_port(), free_port());
    let a_ring = ring(&[&k1]);
    let test_ring = ring(&[&k1]);
    let cluster = "univrs";
    // Both nodes know only the probe: it sees their sealed Syns.
    let a = start_sealed(1, pa, &[probe_port], Some(Arc::clone(&a_ring))).await;
    let b = start_sealed(2, pb, &[probe_port], Some(ring(&[&k1]))).await;
    let a_id = id_of(&key(1)).to_string();
    let syn_b = recv_from(&probe, addr(pb), |_| true).await;
    let syn_plain = test_ring.open(cluster, &syn_b).unwrap();
    let b_id = id_of(&key(2)).to_string();
    for needle in [b_id.as_bytes(), cluster.as_bytes()] {
        assert!(contains(&syn_plain, needle), "B's Syn carries {needle:?}");
        assert!(
            !contains(&syn_b, needle),
            "B's Syn carries {needle:?} in clear"
        );
    }

    // B's Syn replayed to A: A answers with a SynAck carrying its record.
    probe.send_to(&syn_b, addr(pa)).await.unwrap();
    let plain_has_record = |p: &[u8]| {
        test_ring
            .open(cluster, p)
            .is_ok_and(|plain| contains(&delta(&plain), b"\"address\":\"127.0.0.1:9001\""))
    };
    let reply = recv_from(&probe, addr(pa), plain_has_record).await;
    let mut plain = test_ring.open(cluster, &reply).unwrap();
    plain.extend(delta(&plain));
    for needle in [
        a_id.as_bytes(),
        b"\"address\"",
        b"127.0.0.1:9001",
        b"role-1",
        b"univrs.io/role",
    ] {
        assert!(contains(&plain, needle), "the plaintext carries {needle:?}");
        assert!(
            !contains(&reply, needle),
            "the wire carries {:?} in clear",
            String::from_utf8_lossy(needle)
        );
    }

    // A flipped byte anywhere past the header, and two truncations.
    let mut tampered = syn_b.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x40;
    probe.send_to(&tampered, addr(pa)).await.unwrap();
    let mut tampered = syn_b.clone();
    tampered[40] ^= 0x01;
    probe.send_to(&tampered, addr(pa)).await.unwrap();
    probe.send_to(&syn_b[..20], addr(pa)).await.unwrap();
    probe
        .send_to(&syn_b[..syn_b.len() - 1], addr(pa))
        .await
        .unwrap();
    eventually("A to drop the tampered and truncated packets", || async {
        dropped(&a, DropReason::AuthFailed) >= 3 && dropped(&a, DropReason::Truncated) >= 1
    })
    .await;

    // Rotate A to k2; B's packet sealed under the removed k1 is dropped.
    a_ring.install(&k2).unwrap();
    a_ring.set_primary(k2.id()).unwrap();
    a_ring.remove(k1.id()).unwrap();
    let before = dropped(&a, DropReason::UnknownKey);
    probe.send_to(&syn_b, addr(pa)).await.unwrap();
    eventually(
        "A to drop the packet sealed under the removed key",
        || async { dropped(&a, DropReason::UnknownKey) > before },
    )
    .await;
    // A's own packets are now sealed under k2, which the test ring lacks.
    let k2_ring = ring(&[&k2]);
    let after = recv_from(&probe, addr(pa), |p| k2_ring.open(cluster, p).is_ok()).await;
    assert_eq!(test_ring.open(cluster, &after), Err(DropReason::UnknownKey));
    // The same packet opened for another cluster id fails.
    assert_eq!(
        ring(&[&k2]).open("other", &after),
        Err(DropReason::AuthFailed)
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_on_every_node_without_a_restart() {
    let old = GossipKey::generate();
    let new = GossipKey::generate();
    let ports = [free_port(), free_port(), free_port()];
    let rings = [ring(&[&old]), ring(&[&old]), ring(&[&old])];
    let n1 = start_sealed(1, ports[0], &[], Some(Arc::clone(&rings[0]))).await;
    let n2 = start_sealed(2, ports[1], &[ports[0]], Some(Arc::clone(&rings[1]))).await;
    let n3 = start_sealed(3, ports[2], &[ports[0]], Some(Arc::clone(&rings[2]))).await;
    let ids: BTreeSet<NodeId> = [1, 2, 3].map(|s| id_of(&key(s))).into();
    converge(&[&n1, &n2, &n3], &ids).await;

    for r in &rings {
        r.install(&new).unwrap();
    }
    for r in &rings {
        r.set_primary(new.id()).unwrap();
    }
    for r in &rings {
        r.remove(old.id()).unwrap();
        assert_eq!(r.key_ids(), vec![new.id()]);
    }
    // A fresh change of n1 reaches the others under the new key alone.
    let mut node = n1.local_node().await.unwrap();
    node.labels.insert("rotated".into(), "yes".into());
    n1.update_local(node).await.unwrap();
    for cm in [&n2, &n3] {
        eventually("the change to propagate after rotation", || async {
            cm.get_node(&id_of(&key(1)))
                .await
                .unwrap()
                .is_some_and(|n| n.labels.get("rotated").map(String::as_str) == Some("yes"))
        })
        .await;
    }
    converge(&[&n1, &n2, &n3], &ids).await;
    for cm in [&n1, &n2, &n3] {
        cm.shutdown().await;
    }
}

#[test]
fn debug_of_a_config_with_a_keyring_shows_no_key() {
    let key = GossipKey::from_bytes([0x5a; 32]);
    let mut c = config(free_port(), &[], GENERATION);
    c.keyring = Some(ring(&[&key]));
    let text = format!("{c:?}");
    assert!(text.contains(&key.id().to_string()), "{text}");
    assert!(!text.contains(key.to_base64().as_str()), "{text}");
    assert!(!text.contains("5a5a") && !text.contains("90, 90"), "{text}");
}
