//! Your trust policy reaches the daemon (issue 18): `ui deploy` pushes
//! `policy/trust.toml` when it changed (once), the daemon enforces it on a
//! workload whose manifest says nothing about trust, and `ui policy push`
//! sends it with the automation policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{start_daemon, ui, ui_ok};

fn stderr_of(config_dir: &Path, server: &str, args: &[&str]) -> String {
    let out = ui(config_dir, server, args);
    assert!(out.status.success(), "ui {args:?} failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn deploy_pushes_a_changed_trust_policy_and_the_daemon_enforces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("config");
    let daemon = start_daemon(&tmp.path().join("data"));
    let server = daemon.url.as_str();
    ui_ok(&config_dir, server, &["init"]);

    // The one node's operator is the node's own key.
    let nodes: Value =
        serde_json::from_str(&ui_ok(&config_dir, server, &["node", "list", "-o", "json"])).unwrap();
    let operator = nodes["items"][0]["operator"].as_str().unwrap().to_owned();

    let write = |name: &str| {
        let path = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!("name: {name}\ncontainers:\n  - name: main\n    image: web:1\n"),
        )
        .unwrap();
        path.to_str().unwrap().to_owned()
    };
    let first = write("first");
    let second = write("second");

    // Nothing to push: the daemon holds no policy and trust.toml asks nothing.
    let said = stderr_of(&config_dir, server, &["deploy", &first, "--timeout", "30"]);
    assert!(!said.contains("pushed"), "{said}");

    // Deny the node's operator: the next deploy pushes it, once.
    ui_ok(&config_dir, server, &["policy", "deny", &operator]);
    let said = stderr_of(&config_dir, server, &["deploy", &second, "--no-wait"]);
    assert!(
        said.contains("pushed your trust policy: 1 denied operators"),
        "{said}"
    );
    let said = stderr_of(&config_dir, server, &["deploy", &second, "--no-wait"]);
    assert!(!said.contains("pushed"), "{said}");

    // The manifest carried no rules, yet the daemon enforces the policy.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let w: Value = serde_json::from_str(&ui_ok(
            &config_dir,
            server,
            &["status", "second", "-o", "json"],
        ))
        .unwrap();
        if w["workload"]["status"]["unscheduled"] == 1 || Instant::now() > deadline {
            break w["workload"].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status["spec"].get("trust").is_none(), "{status}");
    assert_eq!(status["status"]["unscheduled"], 1, "{status}");
    let reason = status["status"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("trust rules"), "{reason}");

    // `ui policy push` sends both policies.
    let pushed: Value = serde_json::from_str(&ui_ok(
        &config_dir,
        server,
        &["policy", "push", "-o", "json"],
    ))
    .unwrap();
    assert_eq!(pushed["trust"]["denied_operators"][0], operator.as_str());
    assert!(pushed["automation"].is_object(), "{pushed}");
}
