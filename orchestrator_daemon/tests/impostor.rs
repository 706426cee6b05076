//! Admitted members that lie, with whole daemons on loopback: one whose
//! record claims the control-plane role (and whose key sorts first), one
//! whose record gives a worker's API address as its own. Neither gets the
//! control plane's or a worker's obedience: workers pin the real control
//! plane's key, and the control plane's calls go over mutual TLS to the node
//! id it means, so the worker behind the borrowed address never answers
//! them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use admission_common::*;
use ed25519_dalek::SigningKey;
use orchestrator_daemon::{Daemon, DaemonConfig, Settings};
use orchestrator_shared_types::admission::JoinToken;
use orchestrator_shared_types::{InstanceStatus, NodeId, PublicKey, WorkloadInstance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_claiming_the_control_plane_role_is_obeyed_by_nobody() {
    use cluster_manager_interface::{ClusterManager, ROLE_CONTROL_PLANE, ROLE_LABEL};

    let tmp = tempfile::tempdir().unwrap();
    let cp_dir = tmp.path().join("cp");
    let cp_settings = settings(&cp_dir, None);
    let cp_gossip = cp_settings.gossip_addr.clone().unwrap();
    let cp = Daemon::start(&DaemonConfig::resolve(cp_settings, Settings::default()).unwrap())
        .await
        .unwrap();
    let w_dir = tmp.path().join("w");
    let w = start(&w_dir, Some(&issue(&cp, 3600).await)).await.unwrap();
    let (cp_id, w_id) = (node_id(&cp_dir), node_id(&w_dir));

    // An admitted member whose key sorts first and whose record claims the
    // control-plane role; its API address counts whoever calls it.
    let att_key = (0u64..)
        .map(|i| {
            let mut seed = [9u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .find(|k| k.verifying_key().to_bytes()[0] == 0)
        .unwrap();
    let att_id = NodeId(att_key.verifying_key().to_bytes());
    assert!(att_id < cp_id && att_id < w_id);
    let token = JoinToken::parse(&issue(&cp, 3600).await).unwrap();
    join_as(&cp, &att_key, &token).await;
    let (att_api, called) = counting_listener().await;
    let mut record = cluster_manager::test_node(77, 4000, 8 << 30);
    record.id = att_id;
    record.operator = PublicKey(att_id.0);
    record.address = att_api.to_string();
    record
        .labels
        .insert(ROLE_LABEL.into(), ROLE_CONTROL_PLANE.into());
    let attacker = gossip_member(&cp_dir, &cp_gossip, &token, &att_key, record).await;
    let wait = Duration::from_secs(10);
    eventually(
        "the worker lists the claimant as a member",
        wait,
        || async { peers_of(&w).await.contains(&att_id) },
    )
    .await;
    eventually("the claimant hears the worker", wait, || async {
        attacker
            .list_nodes()
            .await
            .unwrap()
            .iter()
            .any(|n| n.id == w_id)
    })
    .await;

    // Its signed agent call to the worker is refused.
    let w_node = attacker.get_node(&w_id).await.unwrap().unwrap();
    // Signed for the cluster's own audience, which the attacker knows: the
    // refusal below is the pinning's, not the audience's.
    let audience: std::sync::Arc<str> = std::sync::Arc::from(token.cluster_id.as_str());
    let agent = node_agent::client::AgentClient::new(att_key, audience).unwrap();
    let create: node_agent::wire::CreateContainer = serde_json::from_value(serde_json::json!({
        "instance_id": uuid_like(1),
        "workload_id": uuid_like(2),
        "config": {"name": "evil", "image": "busybox"},
    }))
    .unwrap();
    let err = agent.create(&w_node, &create).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("403") || text.contains("not a live control-plane"),
        "{text}"
    );

    // The worker still forwards to the real control plane, never to it.
    let c = client(&w);
    let status = tokio::task::spawn_blocking(move || c.cluster_status().unwrap().data)
        .await
        .unwrap();
    assert_eq!(status.control_plane, Some(cp_id));
    let c = client(&w);
    let own = tokio::task::spawn_blocking(move || c.network_status().unwrap().data)
        .await
        .unwrap();
    assert_eq!(own.control_plane, Some(cp_id), "the worker's own view");
    assert_eq!(
        called.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was forwarded to the claimant"
    );

    attacker.shutdown().await;
    for d in [w, cp] {
        tokio::time::timeout(Duration::from_secs(20), d.stop())
            .await
            .unwrap();
    }
}

/// Instances of workload `name`, as the control plane records them.
async fn instances(cp: &Daemon, name: &str) -> Vec<WorkloadInstance> {
    let c = client(cp);
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || c.list_instances(&name).unwrap().data)
        .await
        .unwrap()
}

fn running_on(instances: &[WorkloadInstance]) -> BTreeMap<NodeId, usize> {
    let mut out = BTreeMap::new();
    for i in instances {
        if i.status == InstanceStatus::Running {
            *out.entry(i.node_id).or_insert(0) += 1;
        }
    }
    out
}

/// The containers `d`'s own runtime runs, from its metrics.
async fn containers_of(d: &Daemon) -> Option<usize> {
    let text = reqwest::get(format!("http://{}/metrics", d.api_addr))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("orchestrator_node_containers_running "))?;
    line.rsplit(' ')
        .next()?
        .parse::<f64>()
        .ok()
        .map(|v| v as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_advertising_a_workers_address_makes_the_control_plane_start_or_delete_nothing_there(
) {
    let tmp = tempfile::tempdir().unwrap();
    let cp_dir = tmp.path().join("cp");
    let cp_settings = settings(&cp_dir, None);
    let cp_gossip = cp_settings.gossip_addr.clone().unwrap();
    let cp = Daemon::start(&DaemonConfig::resolve(cp_settings, Settings::default()).unwrap())
        .await
        .unwrap();
    let w_dir = tmp.path().join("w");
    let w = start(&w_dir, Some(&issue(&cp, 3600).await)).await.unwrap();
    let w_id = node_id(&w_dir);

    // An admitted member whose record gives the worker's API address.
    let imp_key = SigningKey::from_bytes(&[77; 32]);
    let imp_id = NodeId(imp_key.verifying_key().to_bytes());
    let token = JoinToken::parse(&issue(&cp, 3600).await).unwrap();
    join_as(&cp, &imp_key, &token).await;
    let mut record = cluster_manager::test_node(78, 4000, 8 << 30);
    record.id = imp_id;
    record.operator = PublicKey(imp_id.0);
    record.address = w.api_addr.to_string();
    let impostor = gossip_member(&cp_dir, &cp_gossip, &token, &imp_key, record).await;
    let wait = Duration::from_secs(10);
    eventually("the control plane lists both members", wait, || async {
        listed_by_control_plane(&cp, imp_id).await && listed_by_control_plane(&cp, w_id).await
    })
    .await;

    // Six replicas, spread by the scheduler over the three nodes.
    let manifest = serde_json::json!({
        "name": "spread", "replicas": 6,
        "containers": [{"name": "main", "image": "example.org/web:1",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
        "restart_policy": "Always"
    });
    let c = client(&cp);
    let body = serde_json::to_vec(&manifest).unwrap();
    tokio::task::spawn_blocking(move || c.create_workload("application/json", &body).unwrap())
        .await
        .unwrap();
    // (An instance placed on the impostor fails and is replaced elsewhere:
    // it has to be seen once, not at the end.)
    let placed_on_impostor = std::cell::Cell::new(false);
    eventually(
        "instances placed on the impostor and running on the worker",
        Duration::from_secs(20),
        || async {
            let all = instances(&cp, "spread").await;
            if all.iter().any(|i| i.node_id == imp_id) {
                placed_on_impostor.set(true);
            }
            placed_on_impostor.get() && running_on(&all).get(&w_id).copied().unwrap_or(0) > 0
        },
    )
    .await;

    // Through many reconcile passes and sweeps: nothing runs under the
    // impostor's name, and the worker runs exactly the containers of its
    // own instances — none started for the impostor, none of its own
    // deleted as the impostor's orphans.
    let hold = Instant::now() + Duration::from_secs(4);
    while Instant::now() < hold {
        let all = instances(&cp, "spread").await;
        assert_eq!(
            running_on(&all).get(&imp_id),
            None,
            "an instance on the impostor runs: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually(
        "the worker runs exactly its own instances' containers",
        wait,
        || async {
            let on_w = running_on(&instances(&cp, "spread").await)
                .get(&w_id)
                .copied()
                .unwrap_or(0);
            on_w > 0 && containers_of(&w).await == Some(on_w)
        },
    )
    .await;

    impostor.shutdown().await;
    for d in [w, cp] {
        tokio::time::timeout(Duration::from_secs(20), d.stop())
            .await
            .unwrap();
    }
}

fn uuid_like(n: u8) -> String {
    format!("00000000-0000-4000-8000-0000000000{n:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_sent_in_clear_is_refused_and_admits_nobody() {
    use orchestrator_shared_types::admission::JoinRequest;
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(&tmp.path().join("cp"), None).await.unwrap();
    let key = SigningKey::from_bytes(&[79; 32]);
    let token = JoinToken::parse(&issue(&cp, 3600).await).unwrap();
    let join = JoinRequest::new(
        &key,
        &token,
        PublicKey(key.verifying_key().to_bytes()),
        None,
    );
    let answer = reqwest::Client::new()
        .post(format!("http://{}/api/v1/cluster/join", cp.api_addr))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&join).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains("TLS") && !text.contains(&token.gossip_key),
        "{text}"
    );
    let c = client(&cp);
    let members = tokio::task::spawn_blocking(move || c.cluster_members().unwrap().data)
        .await
        .unwrap();
    assert!(
        members
            .iter()
            .all(|m| m.node_id.0 != key.verifying_key().to_bytes()),
        "nobody was admitted"
    );
    cp.stop().await;
}
