//! The `orchestrator_daemon` binary: validates its configuration before doing
//! anything, runs on its embedded default, stops cleanly on SIGTERM, and
//! refuses a foreign operator without its proof.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_orchestrator_daemon");

#[test]
fn bad_configuration_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for args in [
        vec!["--runtime", "mock", "--node-memory", "8Go"],
        vec!["--runtime", "mock", "--image-pull-policy", "Sometimes"],
        vec![
            "--runtime",
            "mock",
            "--insecure-registry",
            "http://127.0.0.1:5000",
        ],
        vec!["--runtime", "mock", "--label", "novalue"],
        vec!["--runtime", "mock", "--reconcile-concurrency", "0"],
    ] {
        let out = Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid configuration"), "{args:?}: {err}");
        assert!(!data.exists(), "{args:?} created the data dir");
    }
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, "runtime = \"mock\"\ncolour = \"blue\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&bad_file)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `colour`"));
}

/// `node-id` prints the id of the data directory's key (creating it); an
/// operator other than the node's own key needs its proof for that id.
#[test]
fn a_foreign_operator_needs_a_proof_for_this_node() {
    use orchestrator_shared_types::operator::prove_operator;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node_id = || {
        let out = Command::new(BIN)
            .args(["node-id", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let id = node_id();
    assert!(data.join("node.key").exists());
    assert_eq!(node_id(), id, "the same key next time");

    let operator = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let key = hex::encode(operator.verifying_key().to_bytes());
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["--runtime", "mock", "--store", "memory", "--api-addr"])
            .args(["127.0.0.1:0", "--operator", &key, "--data-dir"])
            .arg(&data)
            .args(extra)
            .env_remove("UNIVRS_OPERATOR_PROOF")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("ui operator prove {id}")), "{err}");
    let elsewhere = prove_operator(&operator, &orchestrator_shared_types::NodeId([1; 32]));
    let out = run(&["--operator-proof", &elsewhere]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));
}

#[test]
fn runs_with_the_example_config_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/daemon.toml");
    let mut child = Command::new(BIN)
        .args([
            "--config",
            example,
            "--api-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_line = |needle: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            break;
        }
    };
    wait_line("orchestrator_daemon running");
    assert!(dir.path().join("node.key").exists());
    assert!(dir.path().join("state.db").exists());
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    wait_line("stopped cleanly");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Without root the youki runtime cannot run: the daemon says what is
/// missing and that `--runtime mock` exists, and does not start on the mock.
#[cfg(target_os = "linux")]
#[test]
fn without_root_the_youki_runtime_refuses_to_start() {
    if Command::new("setpriv").arg("--version").output().is_err() {
        panic!("setpriv (util-linux) is needed to run the daemon as another user");
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    // The data directory is the daemon's user's (it makes it 0700).
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            BIN,
        ])
        .args([
            "--runtime",
            "youki",
            "--api-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the daemon started without root");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("root"), "{err}");
    assert!(err.contains("--runtime mock"), "{err}");
    assert!(!err.contains("listening on"), "{err}");
}
