//! Hosts each run by its own operator (proven with `--operator-proof`), for
//! tests of trust rules, and where a workload's instances run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use orchestrator_shared_types::operator::prove_operator;
use orchestrator_shared_types::NodeId;
use serde_json::{json, Value};

use super::{eventually, Lab};

/// The node id of the data directory `dir` (`orchestrator_daemon node-id`).
pub fn node_id(daemon: &Path, dir: &Path) -> NodeId {
    let out = Command::new(daemon)
        .arg("node-id")
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "node-id: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The key of the operator of host `i`.
pub fn operator(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[40 + i as u8; 32])
}

/// A key in hex, as the API writes operators.
pub fn hex_key(k: &SigningKey) -> String {
    hex::encode(k.verifying_key().to_bytes())
}

/// Starts every host of `lab`, host `i` run by [`operator`]`(i)` and given
/// `args`, and waits until host 0 lists them all Ready with their
/// operators. Returns each host's node id.
pub async fn start_operated(lab: &mut Lab, daemon: &Path, args: &[&str]) -> Vec<String> {
    let n = lab.hosts.len();
    for i in 0..n {
        // Each operator proves it runs its host's node, learnt before it starts.
        let proof = prove_operator(&operator(i), &node_id(daemon, lab.data_dir(i)));
        let op = hex_key(&operator(i));
        let mut all = args.to_vec();
        all.extend(["--operator", &op, "--operator-proof", &proof]);
        lab.set_args(i, &all);
        lab.start(i);
    }
    let deadline = Duration::from_secs(30);
    for i in 0..n {
        lab.wait_up(i, deadline).await;
    }
    let mut ids = Vec::new();
    for i in 0..n {
        let v = lab.get(i, "/api/v1/network").await.unwrap();
        ids.push(v["node_id"].as_str().unwrap().to_owned());
    }
    eventually(deadline, "every node Ready with its operator", || async {
        lab.get(0, "/api/v1/nodes").await.is_some_and(|v| {
            let items = v["items"].as_array().cloned().unwrap_or_default();
            items.len() == n
                && items.iter().all(|node| {
                    let i = ids.iter().position(|id| node["id"] == id.as_str());
                    node["status"] == "Ready"
                        && i.is_some_and(|i| node["operator"] == hex_key(&operator(i)).as_str())
                })
        })
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 40)));
    ids
}

/// Running instances of workload `name` per node id, as host 0 reports them.
pub async fn running(lab: &Lab, name: &str) -> Option<BTreeMap<String, usize>> {
    let v = lab
        .get(0, &format!("/api/v1/workloads/{name}/instances?limit=1000"))
        .await?;
    let mut per_node = BTreeMap::new();
    for i in v["items"].as_array()? {
        if i["status"] == "Running" {
            *per_node
                .entry(i["node_id"].as_str()?.to_owned())
                .or_insert(0) += 1;
        }
    }
    Some(per_node)
}

/// A mock-runtime workload of `replicas` instances of 100m / 64Mi, with the
/// `trust` block `trust` unless it is `null`.
pub fn manifest(name: &str, replicas: u32, trust: Value) -> Value {
    let mut m = json!({
        "name": name,
        "replicas": replicas,
        "containers": [{
            "name": "main",
            "image": "example.org/web:1",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
        }],
    });
    if !trust.is_null() {
        m["trust"] = trust;
    }
    m
}
