//! Secrets against a real daemon (issue 18): `ui secret set` seals on this
//! machine to the nodes the trust policy allows and to the user's key; the
//! daemon's data directory never holds the value; another user sees none of
//! it; `rewrap` follows the trust policy; `rm` deletes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use serde_json::Value;

use common::{start_daemon, ui, ui_ok};

const VALUE: &str = "correct-horse-battery-staple-7f3a";

fn json(config_dir: &Path, server: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ui_ok(config_dir, server, &all)).unwrap()
}

#[path = "../../tests/support/holding.rs"]
mod search;

/// Every file under `dir` whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    search::holding(&[dir], needle).0
}

#[test]
fn secrets_are_sealed_on_the_users_machine_and_follow_the_trust_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("config");
    let data = tmp.path().join("data");
    let daemon = start_daemon(&data);
    let server = daemon.url.as_str();
    ui_ok(&config_dir, server, &["init"]);
    let nodes = json(&config_dir, server, &["node", "list"]);
    let node = nodes["items"][0]["id"].as_str().unwrap().to_owned();
    let operator = nodes["items"][0]["operator"].as_str().unwrap().to_owned();
    let me = ui_ok(&config_dir, server, &["identity", "show"]);
    let value_file = tmp.path().join("value");
    std::fs::write(&value_file, VALUE).unwrap();
    let file = value_file.to_str().unwrap();

    let stored = json(
        &config_dir,
        server,
        &["secret", "set", "db", "--from-file", file],
    );
    assert_eq!(stored["name"], "db");
    let recipients: Vec<&str> = stored["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(recipients.len(), 2, "the node and the user: {recipients:?}");
    assert!(recipients.contains(&node.as_str()));
    assert!(me.contains(recipients[1]), "{me} / {recipients:?}");
    let sealed = stored["sealed"].as_str().unwrap();
    assert!(sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!sealed.contains(VALUE));

    // The daemon never held the value: not in its store, logs or audit log.
    let held = files_holding(&data, VALUE.as_bytes());
    assert!(held.is_empty(), "plaintext found in {held:?}");
    assert!(
        !files_holding(&data, b"secret").is_empty(),
        "the search sees the store"
    );

    // Another user sees none of it and cannot delete it.
    let other = tmp.path().join("other");
    ui_ok(&other, server, &["init"]);
    assert_eq!(
        json(&other, server, &["secret", "list"]),
        serde_json::json!([])
    );
    let out = ui(&other, server, &["secret", "rm", "db"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json(&config_dir, server, &["secret", "list"])[0]["name"],
        "db"
    );

    // Deny the only node's operator: nothing may be sealed to it any more,
    // and the secret stays as it was.
    ui_ok(&config_dir, server, &["policy", "deny", &operator]);
    let out = ui(&config_dir, server, &["secret", "rewrap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowed by your trust policy"));
    assert_eq!(
        json(&config_dir, server, &["secret", "list"])[0]["sealed"],
        sealed
    );
    // Trust it again: rewrap seals anew (opened with the user's key).
    ui_ok(&config_dir, server, &["policy", "trust", &operator]);
    let rewrapped = json(&config_dir, server, &["secret", "rewrap"]);
    assert_eq!(rewrapped["rewrapped"], serde_json::json!(["db"]));
    assert_eq!(rewrapped["nodes"], 1);
    let after = json(&config_dir, server, &["secret", "list"]);
    assert_ne!(
        after[0]["sealed"], sealed,
        "sealed again, with a fresh file key"
    );

    ui_ok(&config_dir, server, &["secret", "rm", "db"]);
    assert_eq!(
        json(&config_dir, server, &["secret", "list"]),
        serde_json::json!([])
    );
}
