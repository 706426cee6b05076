//! The right to leave (issue 18) against real daemons: `ui export` writes
//! one private archive of what the user has, `ui forget` refuses without
//! `--yes` and then removes the user's workloads, policies and agent tokens
//! (the token is refused at once), and `ui import` brings the workloads and
//! policies back on a fresh daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{agent_token, start_daemon, ui, ui_ok, with_token};

fn json(config_dir: &Path, server: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ui_ok(config_dir, server, &all)).unwrap()
}

fn archive(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Waits until `ui status` on `server` lists exactly `names`, each running
/// `replicas`, or fails after 30 s.
fn wait_for(config_dir: &Path, server: &str, names: &[&str], replicas: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = json(config_dir, server, &["status"]);
        let items = items["items"].as_array().cloned().unwrap_or_default();
        let mut listed: Vec<&str> = items
            .iter()
            .filter_map(|w| w["spec"]["name"].as_str())
            .collect();
        listed.sort_unstable();
        let running = items.iter().all(|w| w["status"]["running"] == replicas);
        if listed == names && running {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {names:?}: {items:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn export_forget_and_import_on_a_fresh_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("config");
    let first = start_daemon(&tmp.path().join("data-a"));
    let a = first.url.as_str();
    ui_ok(&config_dir, a, &["init"]);

    // Two workloads, a trust policy, agents on with one token.
    for name in ["alpha", "beta"] {
        let path = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!("name: {name}\nreplicas: 2\ncontainers:\n  - name: main\n    image: web:1\n"),
        )
        .unwrap();
        ui_ok(
            &config_dir,
            a,
            &["deploy", path.to_str().unwrap(), "--timeout", "30"],
        );
    }
    let value = tmp.path().join("value");
    std::fs::write(&value, "s3cret-value").unwrap();
    ui_ok(
        &config_dir,
        a,
        &[
            "secret",
            "set",
            "db",
            "--from-file",
            value.to_str().unwrap(),
        ],
    );
    let stranger = "ab".repeat(32);
    ui_ok(&config_dir, a, &["policy", "deny", &stranger]);
    ui_ok(&config_dir, a, &["policy", "ai", "on"]);
    ui_ok(
        &config_dir,
        a,
        &["policy", "automation", "list_workloads", "autonomous"],
    );
    let token = json(&config_dir, a, &agent_token("bot", "list_workloads"));
    let secret_token = token["token"].as_str().unwrap().to_owned();
    assert_eq!(
        with_token(a, &secret_token, "GET", "/api/v1/workloads").0,
        200
    );

    // The archive: private, with every part, and never the token itself.
    let file = tmp.path().join("me.json");
    let said = json(&config_dir, a, &["export", file.to_str().unwrap()]);
    assert_eq!(said["workloads"], 2, "{said}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let saved = archive(&file);
    assert_eq!(saved["format"], "univrs-export-v1");
    let mut names: Vec<&str> = saved["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(
        saved["trust_policy"]["denied_operators"][0],
        stranger.as_str()
    );
    assert_eq!(saved["automation_policy"]["enabled"], true);
    assert!(saved["policy_files"]["trust.toml"]
        .as_str()
        .unwrap()
        .contains(&stranger));
    assert_eq!(saved["agent_tokens"][0]["id"], token["id"]);
    assert_eq!(saved["secrets"][0]["name"], "db");
    assert!(!String::from_utf8(std::fs::read(&file).unwrap())
        .unwrap()
        .contains("s3cret-value"));
    assert!(!String::from_utf8(std::fs::read(&file).unwrap())
        .unwrap()
        .contains(&secret_token));
    assert!(
        saved["audit"].as_array().unwrap().len() >= 2,
        "the deploys are audited: {}",
        saved["audit"]
    );

    // Without --yes: refused, and nothing changes.
    let out = ui(&config_dir, a, &["forget"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ui forget --yes"));
    wait_for(&config_dir, a, &["alpha", "beta"], 2);

    // With --yes: the token is refused at once, the rest is gone.
    ui_ok(&config_dir, a, &["forget", "--yes"]);
    let (status, _) = with_token(a, &secret_token, "GET", "/api/v1/workloads");
    assert_eq!(status, 401, "a forgotten user's token still works");
    wait_for(&config_dir, a, &[], 0);
    let after = tmp.path().join("after.json");
    ui_ok(&config_dir, a, &["export", after.to_str().unwrap()]);
    let left = archive(&after);
    assert_eq!(left["workloads"], serde_json::json!([]));
    assert_eq!(left["trust_policy"], serde_json::json!({}));
    assert_eq!(left["automation_policy"]["enabled"], false);
    assert_eq!(left["agent_tokens"], serde_json::json!([]));
    assert_eq!(left["secrets"], serde_json::json!([]));
    // The audit log keeps its entries, and its chain still verifies.
    assert!(left["audit"].as_array().unwrap().len() > saved["audit"].as_array().unwrap().len());
    let verified = json(&config_dir, a, &["audit", "--verify"]);
    assert_eq!(verified["ok"], true, "{verified}");

    // A fresh daemon: the archive brings the workloads and policies back.
    let second = start_daemon(&tmp.path().join("data-b"));
    let b = second.url.as_str();
    let said = json(&config_dir, b, &["import", file.to_str().unwrap()]);
    assert_eq!(said["workloads"].as_array().unwrap().len(), 2, "{said}");
    wait_for(&config_dir, b, &["alpha", "beta"], 2);
    let back = tmp.path().join("back.json");
    ui_ok(&config_dir, b, &["export", back.to_str().unwrap()]);
    let back = archive(&back);
    assert_eq!(back["trust_policy"], saved["trust_policy"]);
    assert_eq!(back["automation_policy"], saved["automation_policy"]);
    // The secret came back sealed to the new cluster's node, not the old one's.
    let node_b = json(&config_dir, b, &["node", "list"])["items"][0]["id"].clone();
    let node_a = saved["secrets"][0]["recipients"][0].clone();
    let recipients = back["secrets"][0]["recipients"].as_array().unwrap().clone();
    assert!(recipients.contains(&node_b), "{recipients:?}");
    assert!(!recipients.contains(&node_a), "{recipients:?}");

    // An archive that is not one is refused clearly.
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"format\": \"zip\"}").unwrap();
    let out = ui(&config_dir, b, &["import", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an archive of `ui export`"));
}
