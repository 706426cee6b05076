//! `policy/limits.toml` is enforced by `ui` before it sends: `ui deploy`, `ui
//! scale` and `ui credits send` past a limit fail naming it, exit non-zero,
//! and the daemon holds nothing new.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use common::{start_daemon, ui, ui_ok};

/// The user's workloads as `ui status -o json` lists them: (name, replicas).
fn workloads(config_dir: &Path, server: &str) -> Vec<(String, u64)> {
    let text = ui_ok(config_dir, server, &["status", "-o", "json"]);
    let v: Value = serde_json::from_str(&text).expect("status -o json prints JSON");
    let mut out: Vec<(String, u64)> = v["items"]
        .as_array()
        .expect("items is an array")
        .iter()
        .map(|w| {
            (
                w["spec"]["name"].as_str().unwrap_or_default().to_owned(),
                w["spec"]["replicas"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Asserts `out` failed with an error naming `want` and saying nothing was sent.
fn assert_refused(out: &Output, want: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal: {stderr}");
    assert!(
        stderr.contains(&format!("policy/limits.toml: {want}")),
        "the error must name the limit {want:?}: {stderr}"
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");
}

#[test]
fn deploy_scale_and_credits_send_past_a_limit_are_refused_before_sending() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config_dir = tmp.path().join("config");
    let daemon = start_daemon(&tmp.path().join("data"));
    let server = daemon.url.as_str();
    ui_ok(&config_dir, server, &["init"]);

    // hello: 3 replicas of 100m CPU, 32Mi requested.
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello.yaml");
    let hello = hello.to_str().expect("utf-8 path");

    ui_ok(
        &config_dir,
        server,
        &["policy", "limits", "--max-replicas", "2"],
    );
    let out = ui(&config_dir, server, &["deploy", hello, "--no-wait"]);
    assert_refused(&out, "max_replicas = 2: hello would have 3 replicas");
    assert_eq!(workloads(&config_dir, server), []);

    ui_ok(
        &config_dir,
        server,
        &[
            "policy",
            "limits",
            "--max-replicas",
            "5",
            "--max-cpu",
            "400m",
        ],
    );
    ui_ok(&config_dir, server, &["deploy", hello, "--no-wait"]);
    ui_ok(&config_dir, server, &["scale", "hello", "4"]);
    assert_eq!(workloads(&config_dir, server), [("hello".to_owned(), 4)]);
    // 5 × 100m = 500m: within max_replicas, past max_cpu.
    let out = ui(&config_dir, server, &["scale", "hello", "5"]);
    assert_refused(&out, "max_cpu = 400m: hello with 5 replicas");
    assert_eq!(workloads(&config_dir, server), [("hello".to_owned(), 4)]);

    ui_ok(
        &config_dir,
        server,
        &[
            "policy",
            "limits",
            "--max-cpu",
            "none",
            "--max-workloads",
            "1",
        ],
    );
    let other = tmp.path().join("other.yaml");
    let text = std::fs::read_to_string(hello).expect("reading hello.yaml");
    std::fs::write(&other, text.replace("name: hello", "name: other")).expect("writing");
    let out = ui(
        &config_dir,
        server,
        &["deploy", other.to_str().expect("utf-8"), "--no-wait"],
    );
    assert_refused(&out, "max_workloads = 1: other would be workload number 2");
    assert_eq!(workloads(&config_dir, server), [("hello".to_owned(), 4)]);

    // A fresh account has balance 0: with credit_limit 0, sending anything
    // would go below zero. The daemon would refuse too (409); the refusal
    // here names the user's own limit, so the request never reached it.
    ui_ok(
        &config_dir,
        server,
        &["policy", "limits", "--credit-limit", "0"],
    );
    let shown = ui_ok(&config_dir, server, &["policy", "show"]);
    assert!(shown.contains("credit_limit = 0"), "{shown}");
    let someone = "ab".repeat(32);
    let out = ui(&config_dir, server, &["credits", "send", &someone, "1"]);
    assert_refused(&out, "credit_limit = 0: sending 1.000");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("HTTP 409"), "{stderr}");
    let history = ui_ok(&config_dir, server, &["credits", "history", "-o", "json"]);
    let history: Value = serde_json::from_str(&history).expect("history -o json prints JSON");
    assert_eq!(history["items"], serde_json::json!([]), "{history}");
}
