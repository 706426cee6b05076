//! Removing a host, on the multi-host lab (network namespaces, see
//! `multihost_common`): three hosts joined by tokens, each with its own
//! gossip key file; an admin removes host 2. Within 2 s the others no longer
//! list it and refuse what it forwards, the key is rotated on hosts 0 and 1
//! (their files hold the new key alone; host 2's the old one), they gossip
//! on with it, and host 2's packets are counted as dropped.
//!
//! Needs root (CI runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod multihost_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use multihost_common::{eventually, Lab};

const DEADLINE: Duration = Duration::from_secs(30);
const UNKNOWN_KEY: &str = "orchestrator_gossip_packets_dropped_total{reason=\"unknown_key\"}";

fn daemon() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"))
}

/// The node ids host `via` lists as live peers (its own view).
async fn live_peers(lab: &Lab, via: usize) -> Option<Vec<String>> {
    let v = lab.get(via, "/api/v1/network/peers").await?;
    Some(
        v["items"]
            .as_array()?
            .iter()
            .filter(|p| p["live"] == true)
            .filter_map(|p| p["node_id"].as_str().map(str::to_owned))
            .collect(),
    )
}

fn key_ids(path: &std::path::Path) -> Vec<String> {
    orchestrator_daemon::gossip_keys::load(path)
        .unwrap()
        .iter()
        .map(|k| k.id().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_host_is_refused_within_2_s_and_the_others_gossip_on_with_a_new_key() {
    let mut lab = Lab::new("ur", 5, 3, &daemon());
    let files: Vec<PathBuf> = (0..3)
        .map(|i| lab.path(&format!("gossip{i}.keys")))
        .collect();
    for (i, f) in files.iter().enumerate() {
        std::fs::copy(&lab.key_file, f).unwrap();
        lab.set_key_file(i, f);
    }
    let old = key_ids(&files[0]);
    for i in 0..3 {
        lab.start(i);
    }
    for i in 0..3 {
        lab.wait_up(i, DEADLINE).await;
    }
    let mut ids = Vec::new();
    for i in 0..3 {
        let v = lab.get(i, "/api/v1/network").await.unwrap();
        ids.push(v["node_id"].as_str().unwrap().to_owned());
    }
    for via in 0..3 {
        eventually(DEADLINE, &format!("host {via} sees 3 live"), || async {
            live_peers(&lab, via).await.is_some_and(|p| p.len() == 3)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(via, 40)));
    }
    // Through host 2 (forwarded to the control plane): answered.
    let (status, _) = lab.call(2, "GET", "/api/v1/workloads", None).await.unwrap();
    assert_eq!(status, 200);
    let dropped_before = lab.metric(0, UNKNOWN_KEY).await.unwrap_or(0.0);

    let path = format!("/api/v1/cluster/members/{}", ids[2]);
    let (status, body) = lab.call(0, "DELETE", &path, None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let removed = Instant::now();
    assert_eq!(body["key_rotation"]["complete"], true, "{body}");

    // Within 2 s: hosts 0 and 1 no longer list it, and the control plane
    // refuses what it forwards.
    eventually(
        Duration::from_secs(2),
        "host 2 dropped and refused",
        || async {
            let gone = |p: Option<Vec<String>>| p.is_some_and(|p| !p.contains(&ids[2]));
            let refused = lab
                .call(2, "GET", "/api/v1/workloads", None)
                .await
                .is_none_or(|(s, _)| s != 200);
            gone(live_peers(&lab, 0).await) && gone(live_peers(&lab, 1).await) && refused
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- control plane log:\n{}", lab.log_tail(0, 40)));
    println!(
        "host 2 refused {:?} after the removal's answer",
        removed.elapsed()
    );

    // The key was rotated where it should be, and only there.
    let new = key_ids(&files[0]);
    assert_eq!(new.len(), 1);
    assert_ne!(new, old);
    assert_eq!(key_ids(&files[1]), new, "host 1 took the new key");
    assert_eq!(key_ids(&files[2]), old, "host 2 got nothing");

    // Hosts 0 and 1 gossip on with it: each still sees the other live for
    // longer than failure detection takes, and host 2's packets are dropped.
    let hold = Instant::now() + Duration::from_secs(3);
    while Instant::now() < hold {
        for (via, other) in [(0, 1), (1, 0)] {
            let peers = live_peers(&lab, via).await.unwrap();
            assert!(
                peers.contains(&ids[other]),
                "host {via} lost host {other}: {peers:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eventually(DEADLINE, "host 2's packets are dropped", || async {
        lab.metric(0, UNKNOWN_KEY).await.unwrap_or(0.0) > dropped_before
    })
    .await
    .unwrap();
}
