//! The signed member list attacked over real UDP on 127.0.0.1: with a pinned
//! control-plane key, a node is a member only if it is pinned or on the
//! newest list that key signed. A stranger that speaks the gossip (it knows
//! the cluster id; the key may have leaked) is never listed and what it
//! publishes is not read; a list it signs, or an older list of the real
//! control plane replayed, changes nothing; a removed member is dropped by
//! every node within 2 s.

#![allow(clippy::unwrap_used)]

mod gossip_common;

use std::time::Duration;

use chrono::Utc;
use cluster_manager::ChitchatClusterManager;
use cluster_manager_interface::ClusterManager;
use ed25519_dalek::SigningKey;
use gossip_common::*;
use orchestrator_shared_types::admission::{JoinRole, ListedMember, MemberList, MEMBER_LIST_KEY};
use orchestrator_shared_types::NodeId;
use tokio::time::Instant;

/// Starts node `seed` on `port`, seeded on `seeds`, pinning `pinned`.
async fn start_pinned(
    seed: u8,
    port: u16,
    seeds: &[u16],
    pinned: &[NodeId],
) -> ChitchatClusterManager {
    let k = key(seed);
    let mut c = config(port, seeds, GENERATION + u64::from(seed));
    c.control_planes = pinned.to_vec();
    ChitchatClusterManager::start(c, k.clone(), node_of(&k, seed))
        .await
        .unwrap()
}

fn list(version: u64, members: &[&SigningKey]) -> MemberList {
    MemberList {
        cluster_id: "univrs".into(),
        version,
        issued_at: Utc::now(),
        members: members
            .iter()
            .map(|k| ListedMember {
                node_id: id_of(k),
                role: JoinRole::Worker,
                subnet: None,
            })
            .collect(),
    }
}

async fn listed(cm: &ChitchatClusterManager, id: NodeId) -> bool {
    cm.list_nodes().await.unwrap().iter().any(|n| n.id == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_nodes_are_members_and_removal_spreads_within_2s() {
    let (cp_k, w1_k, w2_k, s_k) = (key(1), key(2), key(3), key(4));
    let pinned = [id_of(&cp_k)];
    let (cp_p, w1_p, w2_p, s_p) = (free_port(), free_port(), free_port(), free_port());
    let cp = start_pinned(1, cp_p, &[], &pinned).await;
    cp.publish(
        MEMBER_LIST_KEY,
        &list(2, &[&cp_k, &w1_k, &w2_k]).sign(&cp_k),
    )
    .await
    .unwrap();
    let w1 = start_pinned(2, w1_p, &[cp_p], &pinned).await;
    let w2 = start_pinned(3, w2_p, &[cp_p], &pinned).await;
    // The stranger pins nothing, so it lists whoever it hears: once it lists
    // all three, its gossip has reached them.
    let stranger = start_pinned(4, s_p, &[cp_p, w1_p], &[]).await;
    stranger
        .publish("evidence:x", "from a stranger")
        .await
        .unwrap();

    for (name, cm) in [("cp", &cp), ("w1", &w1), ("w2", &w2)] {
        for other in [&cp_k, &w1_k, &w2_k] {
            let id = id_of(other);
            if id != cm.local_node().await.unwrap().id {
                eventually(&format!("{name} lists {}", id.short()), || listed(cm, id)).await;
            }
        }
    }
    let s_id = id_of(&s_k);
    eventually("the stranger hears every member", || async {
        stranger.list_nodes().await.unwrap().len() == 4
    })
    .await;

    // A list the stranger signs, naming itself, with a higher version; and
    // the control plane's older list (which named the stranger) replayed.
    stranger
        .publish(MEMBER_LIST_KEY, &list(99, &[&cp_k, &w1_k, &s_k]).sign(&s_k))
        .await
        .unwrap();
    let rejected_before = w1.stats().rejected_records;
    eventually("w1 rejects the stranger's list", || async {
        w1.stats().rejected_records > rejected_before
    })
    .await;
    stranger
        .publish(MEMBER_LIST_KEY, &list(1, &[&cp_k, &s_k]).sign(&cp_k))
        .await
        .unwrap();
    for cm in [&w1, &w2] {
        eventually("the replayed list is ignored as stale", || async {
            cm.stats().stale_member_lists > 0
        })
        .await;
        assert_eq!(cm.stats().member_list_version, 2);
    }
    for cm in [&cp, &w1, &w2] {
        assert!(!listed(cm, s_id).await, "a stranger is never a member");
        let gossiped = cm.gossiped("evidence:").await.unwrap();
        assert!(
            gossiped.iter().all(|g| g.node != s_id),
            "nothing a stranger publishes is read: {gossiped:?}"
        );
    }

    // Removing w1: a newer list without it.
    cp.publish(MEMBER_LIST_KEY, &list(3, &[&cp_k, &w2_k]).sign(&cp_k))
        .await
        .unwrap();
    let removed_at = Instant::now();
    let w1_id = id_of(&w1_k);
    for cm in [&cp, &w2] {
        eventually("w1 dropped", || async { !listed(cm, w1_id).await }).await;
    }
    let took = removed_at.elapsed();
    assert_eq!(w2.stats().member_list_version, 3);
    assert!(took < Duration::from_secs(2), "removal took {took:?}");
    assert!(listed(&cp, id_of(&w2_k)).await, "w2 stays");
    assert!(!listed(&w2, s_id).await && !listed(&cp, s_id).await);

    for cm in [stranger, w2, w1, cp] {
        cm.shutdown().await;
    }
}

/// A control-plane key pinned after the start (control planes on etcd pin
/// those that register later): the list it signed, refused until then, is
/// followed from the next round, and it counts as a control plane; a list
/// signed by a key nobody pinned still changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_pinned_later_is_followed_from_then_on() {
    let (cp1_k, cp2_k, n_k, w_k, s_k) = (key(11), key(12), key(13), key(14), key(15));
    let (cp1_p, cp2_p, n_p, w_p) = (free_port(), free_port(), free_port(), free_port());
    let both = [id_of(&cp1_k), id_of(&cp2_k)];
    // cp1 and cp2 pin each other; the node pins cp1 only (it started before
    // cp2 existed).
    let cp1 = start_pinned(11, cp1_p, &[], &both).await;
    let cp2 = start_pinned(12, cp2_p, &[cp1_p], &both).await;
    let node = start_pinned(13, n_p, &[cp1_p, cp2_p], &both[..1]).await;
    let w = start_pinned(14, w_p, &[cp1_p, cp2_p], &both).await;
    // cp2 leads and lists the worker.
    cp2.publish(
        MEMBER_LIST_KEY,
        &list(5, &[&cp1_k, &cp2_k, &n_k, &w_k]).sign(&cp2_k),
    )
    .await
    .unwrap();
    let w_id = id_of(&w_k);
    eventually("cp1 lists the worker cp2 admitted", || listed(&cp1, w_id)).await;
    // The node (its gossip reaching cp1, which lists the worker) does not
    // follow a list of a key it does not pin.
    eventually("the node lists cp1", || listed(&node, both[0])).await;
    assert!(!listed(&node, w_id).await);
    assert_eq!(node.stats().member_list_version, 0);
    assert!(!node.pinned_control_planes().contains(&both[1]));

    node.pin_control_planes(&both);
    eventually("the node follows cp2's list once cp2 is pinned", || {
        listed(&node, w_id)
    })
    .await;
    assert_eq!(node.stats().member_list_version, 5);
    assert!(node.pinned_control_planes().contains(&both[1]));
    // A key nobody pinned still signs nothing that counts.
    node.pin_control_planes(&both);
    w.publish(MEMBER_LIST_KEY, &list(9, &[&cp1_k, &s_k]).sign(&s_k))
        .await
        .unwrap();
    let rejected = node.stats().rejected_records;
    eventually("the node refuses the stranger's list", || async {
        node.stats().rejected_records > rejected
    })
    .await;
    assert_eq!(node.stats().member_list_version, 5);
    assert!(listed(&node, w_id).await);

    for cm in [w, node, cp2, cp1] {
        cm.shutdown().await;
    }
}
