//! Cluster admission with whole daemons on loopback: a control plane that
//! creates its cluster, nodes joining with tokens, and tokens that must not
//! work (used, forged secret, forged cluster, expired, malformed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission_common;

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use orchestrator_api::client::ApiClient;
use orchestrator_api::{ClusterMember, JoinTokenRequest};
use orchestrator_daemon::{Daemon, DaemonConfig, Settings};
use orchestrator_shared_types::admission::{new_secret, JoinToken};
use orchestrator_shared_types::NodeId;

use admission_common::*;

async fn members(d: &Daemon) -> Vec<NodeId> {
    let c = client(d);
    tokio::task::spawn_blocking(move || c.cluster_members().unwrap().data)
        .await
        .unwrap()
        .into_iter()
        .map(|m: ClusterMember| m.node_id)
        .collect()
}

/// The error of a start expected to fail, as text with its causes.
async fn refused(dir: &Path, token: &str) -> String {
    match start(dir, Some(token)).await {
        Ok(d) => {
            d.stop().await;
            panic!("a node joined with a token that must be refused");
        }
        Err(e) => format!("{:#}", anyhow::Error::from(e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_admits_one_node_and_bad_tokens_admit_none() {
    let tmp = tempfile::tempdir().unwrap();
    let cp_dir = tmp.path().join("cp");
    let cp = start(&cp_dir, None).await.unwrap();
    // The cluster was created: a random id, a private gossip key file.
    let identity = orchestrator_daemon::cluster_identity::load(&cp_dir)
        .unwrap()
        .unwrap();
    assert!(identity.cluster_id.starts_with("c-"), "{identity:?}");
    assert_ne!(identity.cluster_id, "univrs");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(cp_dir.join("gossip.keys"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(members(&cp).await, vec![node_id(&cp_dir)]);

    let token = issue(&cp, 3600).await;
    let parsed = JoinToken::parse(&token).unwrap();
    assert_eq!(parsed.cluster_id, identity.cluster_id);
    assert_eq!(parsed.control_planes[0].node_id, node_id(&cp_dir));

    let w1_dir = tmp.path().join("w1");
    let w1 = start(&w1_dir, Some(&token)).await.unwrap();
    let joined = orchestrator_daemon::cluster_identity::load(&w1_dir)
        .unwrap()
        .unwrap();
    assert_eq!(
        (&joined.cluster_id, &joined.control_planes),
        (&identity.cluster_id, &identity.control_planes),
        "same cluster id, the control plane pinned"
    );
    // Each has a subnet of its own in the cluster's range.
    let (cp_net, w1_net) = (identity.network.unwrap(), joined.network.unwrap());
    assert_eq!(cp_net.cidr, w1_net.cidr);
    assert_eq!(cp_net.subnet.to_string(), "10.88.0.0/24");
    assert_eq!(w1_net.subnet.to_string(), "10.88.1.0/24");

    // The same token again, by another node: refused, nothing recorded.
    let w2_dir = tmp.path().join("w2");
    let err = refused(&w2_dir, &token).await;
    assert!(err.contains("already used"), "{err}");

    // A forged secret (never issued), and a forged cluster id.
    let good = JoinToken::parse(&issue(&cp, 3600).await).unwrap();
    let mut forged = good.clone();
    forged.secret = new_secret();
    let err = refused(&w2_dir, &forged.encode()).await;
    assert!(err.contains("unknown join token"), "{err}");
    let mut other = good.clone();
    other.cluster_id = "c-someoneelse".into();
    let err = refused(&w2_dir, &other.encode()).await;
    assert!(
        err.contains("not") && err.contains("c-someoneelse"),
        "{err}"
    );

    // Expired (refused before anything is asked), and garbage.
    let mut expired = good.clone();
    expired.expires_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    let err = refused(&w2_dir, &expired.encode()).await;
    assert!(err.contains("expired"), "{err}");
    let err = refused(&w2_dir, "univrs-join-1.bm9wZQ").await;
    assert!(err.contains("malformed"), "{err}");

    let listed = members(&cp).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&node_id(&w1_dir)));
    assert!(!listed.contains(&node_id(&w2_dir)));
    assert!(
        orchestrator_daemon::cluster_identity::load(&w2_dir)
            .unwrap()
            .is_none(),
        "a refused node records no identity"
    );

    // The good token still works (refusals spent nothing).
    let w2 = start(&w2_dir, Some(&good.encode())).await.unwrap();
    assert_eq!(members(&cp).await.len(), 3);

    // A restart of a joined node with its used token reuses its identity.
    w1.stop().await;
    let w1 = start(&w1_dir, Some(&token)).await.unwrap();

    // Issuing needs an admin key (or the control plane's own).
    let stranger = ApiClient::new(
        &format!("http://{}", cp.api_addr),
        Some(SigningKey::from_bytes(&[7; 32])),
    )
    .unwrap();
    let err = tokio::task::spawn_blocking(move || {
        stranger.issue_join_token(&JoinTokenRequest::default())
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");

    for d in [w1, w2, cp] {
        tokio::time::timeout(Duration::from_secs(20), d.stop())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admitted_nodes_are_members_and_a_removed_one_is_dropped_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let cp_dir = tmp.path().join("cp");
    let cp_settings = settings(&cp_dir, None);
    let cp_gossip = cp_settings.gossip_addr.clone().unwrap();
    let cp = Daemon::start(&DaemonConfig::resolve(cp_settings, Settings::default()).unwrap())
        .await
        .unwrap();
    let (w1_dir, w2_dir) = (tmp.path().join("w1"), tmp.path().join("w2"));
    let w1 = start(&w1_dir, Some(&issue(&cp, 3600).await)).await.unwrap();
    let w2 = start(&w2_dir, Some(&issue(&cp, 3600).await)).await.unwrap();
    let (w1_id, w2_id) = (node_id(&w1_dir), node_id(&w2_dir));
    let wait = Duration::from_secs(10);
    for id in [w1_id, w2_id] {
        eventually("the control plane lists a joined node", wait, || {
            listed_by_control_plane(&cp, id)
        })
        .await;
    }
    eventually("w2 sees w1", wait, || async {
        peers_of(&w2).await.contains(&w1_id)
    })
    .await;

    // A stranger with the cluster id and a leaked gossip key, but no token.
    let s_dir = tmp.path().join("stranger");
    std::fs::create_dir_all(&s_dir).unwrap();
    let leaked = s_dir.join("leaked.keys");
    std::fs::copy(cp_dir.join("gossip.keys"), &leaked).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&leaked, std::fs::Permissions::from_mode(0o600)).unwrap();
    let identity = orchestrator_daemon::cluster_identity::load(&cp_dir)
        .unwrap()
        .unwrap();
    let mut s = settings(&s_dir, None);
    s.seeds = vec![cp_gossip];
    s.cluster_id = Some(identity.cluster_id.clone());
    s.gossip_key_file = Some(leaked);
    let stranger = Daemon::start(&DaemonConfig::resolve(s, Settings::default()).unwrap())
        .await
        .unwrap();
    let s_id = node_id(&s_dir);
    let cp_id = node_id(&cp_dir);
    eventually("the stranger hears the cluster", wait, || async {
        let p = peers_of(&stranger).await;
        p.contains(&cp_id) && p.contains(&w1_id) && p.contains(&w2_id)
    })
    .await;
    assert!(!listed_by_control_plane(&cp, s_id).await, "not a member");
    assert!(!peers_of(&w2).await.contains(&s_id), "not a peer of w2");

    // No work is placed on it: 6 replicas spread over the three members.
    let manifest =
        "name: spread\nreplicas: 6\ncontainers:\n  - name: main\n    image: busybox\n    \
                    resources:\n      requests: {cpu: 100m, memory: 32Mi}\n";
    let c = client(&cp);
    tokio::task::spawn_blocking(move || {
        c.create_workload("application/yaml", manifest.as_bytes())
            .unwrap()
    })
    .await
    .unwrap();
    let store = std::sync::Arc::clone(&cp.orchestrator.as_ref().unwrap().deps().store);
    eventually("6 instances placed", wait, || async {
        store.list_instances().await.unwrap().len() == 6
    })
    .await;
    let placed: Vec<NodeId> = store
        .list_instances()
        .await
        .unwrap()
        .iter()
        .map(|i| i.node_id)
        .collect();
    assert_eq!(placed.len(), 6, "every instance is placed");
    assert!(
        !placed.contains(&s_id),
        "nothing on the stranger: {placed:?}"
    );

    // Removing w1 drops it from every node's view within 2 s.
    let c = client(&cp);
    let removed = tokio::task::spawn_blocking(move || c.remove_member(&w1_id.to_hex()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed.data.member.node_id, w1_id);
    let two = Duration::from_secs(2);
    eventually("the control plane drops w1", two, || async {
        !listed_by_control_plane(&cp, w1_id).await
    })
    .await;
    eventually("w2 drops w1", two, || async {
        !peers_of(&w2).await.contains(&w1_id)
    })
    .await;
    assert!(listed_by_control_plane(&cp, w2_id).await, "w2 stays");

    // Only an admin removes.
    let c = ApiClient::new(
        &format!("http://{}", cp.api_addr),
        Some(SigningKey::from_bytes(&[7; 32])),
    )
    .unwrap();
    let err = tokio::task::spawn_blocking(move || c.remove_member(&w2_id.to_hex()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");

    for d in [stranger, w1, w2, cp] {
        tokio::time::timeout(Duration::from_secs(20), d.stop())
            .await
            .unwrap();
    }
}
