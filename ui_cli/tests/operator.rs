//! End to end: an operator proves it runs a node. `orchestrator_daemon
//! node-id` prints the node's id, `ui operator prove` signs the proof, the
//! daemon refuses `--operator` without a valid proof and, with one, lists its
//! node as run by that operator with the proof in its labels.

// Shared with the other end-to-end tests; `start_daemon` is theirs.
#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::{Command, Output};

use orchestrator_shared_types::operator::{verify_operator_proof, OPERATOR_PROOF_LABEL};
use orchestrator_shared_types::{NodeId, PublicKey};
use serde_json::Value;

use common::{daemon_bin, start_daemon_with, ui, ui_ok};

fn node_id(data_dir: &Path) -> String {
    let out = Command::new(daemon_bin())
        .arg("node-id")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("running orchestrator_daemon node-id");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs the daemon with `args` until it exits (it is expected to refuse).
fn refused(data_dir: &Path, args: &[&str]) -> String {
    let out: Output = Command::new(daemon_bin())
        .args(["--runtime", "mock", "--store", "memory", "--api-addr"])
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("UNIVRS_OPERATOR_PROOF")
        .output()
        .expect("running orchestrator_daemon");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the daemon started: {stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    stderr
}

#[test]
fn an_operator_proves_it_runs_a_node() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config_dir = tmp.path().join("config");
    let data_dir = tmp.path().join("data");
    let offline = "http://127.0.0.1:9";
    ui_ok(&config_dir, offline, &["init"]);
    let key = ui_ok(&config_dir, offline, &["identity", "show"])
        .trim()
        .to_owned();

    // The node id, before the node ever ran; the same each time.
    let id = node_id(&data_dir);
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(node_id(&data_dir), id);

    // The proof on stdout, the flags on stderr; no server needed.
    let out = ui(&config_dir, offline, &["operator", "prove", &id]);
    assert!(out.status.success());
    let proof = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let hint = String::from_utf8_lossy(&out.stderr);
    assert!(
        hint.contains(&format!("--operator {key} --operator-proof {proof}")),
        "{hint}"
    );
    let node: NodeId = id.parse().expect("node id");
    let operator: PublicKey = key.parse().expect("public key");
    assert_eq!(verify_operator_proof(&node, &operator, &proof), Ok(()));
    let json: Value = serde_json::from_str(&ui_ok(
        &config_dir,
        offline,
        &["operator", "prove", &id, "-o", "json"],
    ))
    .expect("json");
    assert_eq!(json["proof"], proof.as_str());
    assert_eq!(json["operator"], key.as_str());
    assert_eq!(json["node_id"], id.as_str());

    let out = ui(&config_dir, offline, &["operator", "prove", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("orchestrator_daemon node-id"));

    // The daemon refuses the operator without its proof, or with another node's.
    let err = refused(&data_dir, &["--operator", &key]);
    assert!(
        err.contains(&format!("ui operator prove {id}")),
        "says what to run: {err}"
    );
    let other = tmp.path().join("other");
    let other_id = node_id(&other);
    let other_proof = ui_ok(&config_dir, offline, &["operator", "prove", &other_id]);
    let err = refused(
        &data_dir,
        &["--operator", &key, "--operator-proof", other_proof.trim()],
    );
    assert!(err.contains("does not verify"), "{err}");
    let err = refused(&data_dir, &["--operator-proof", &proof]);
    assert!(err.contains("needs --operator"), "{err}");

    // With its proof the node is run by the operator, the proof published.
    let daemon = start_daemon_with(
        &data_dir,
        &[
            "--runtime",
            "mock",
            "--operator",
            &key,
            "--operator-proof",
            &proof,
        ],
    );
    let nodes: Value = serde_json::from_str(&ui_ok(
        &config_dir,
        &daemon.url,
        &["node", "status", "-o", "json"],
    ))
    .expect("json");
    let items = nodes["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{nodes}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["operator"], key.as_str());
    assert_eq!(items[0]["labels"][OPERATOR_PROOF_LABEL], proof.as_str());
}
