//! End to end, the way the README shows it: a control plane creates its
//! cluster, an admin prints a join token with `ui cluster join-token`, a node
//! joins with it, `ui cluster members` lists it, and `ui node remove` takes it
//! out again (rotating the gossip key), after which `ui node status` no
//! longer lists it.

// Shared with the other end-to-end tests.
#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{daemon_bin, start_daemon_with, ui_ok};

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

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

/// Polls `ui node status` on `server` until `check` holds for its output.
fn wait_for(config: &Path, server: &str, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = ui_ok(config, server, &["node", "status"]);
        if check(&out) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}; last status:\n{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_admin_lets_a_node_join_with_a_token_and_removes_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("config");
    let offline = "http://127.0.0.1:9";
    ui_ok(&config, offline, &["init"]);
    let admin = ui_ok(&config, offline, &["identity", "show"])
        .trim()
        .to_owned();

    let cp_dir = tmp.path().join("cp");
    let cp_gossip = format!("127.0.0.1:{}", free_udp_port());
    let cp = start_daemon_with(
        &cp_dir,
        &[
            "--runtime",
            "mock",
            "--gossip-addr",
            &cp_gossip,
            "--admin-key",
            &admin,
        ],
    );
    let issued = ui_ok(&config, &cp.url, &["cluster", "join-token", "--ttl", "10m"]);
    let token = issued.lines().next().expect("the token").trim().to_owned();
    assert!(issued.contains("Keep it secret"), "{issued}");

    let w_dir = tmp.path().join("w");
    let w_gossip = format!("127.0.0.1:{}", free_udp_port());
    let _w = start_daemon_with(
        &w_dir,
        &[
            "--runtime",
            "mock",
            "--gossip-addr",
            &w_gossip,
            "--join",
            &token,
        ],
    );
    let w_id = node_id(&w_dir);
    let short = &w_id[..12];
    wait_for(&config, &cp.url, "the node that joined is listed", |s| {
        s.contains(short)
    });
    let members = ui_ok(&config, &cp.url, &["cluster", "members"]);
    assert!(members.contains(&w_id), "{members}");

    let removed = ui_ok(&config, &cp.url, &["node", "remove", &w_id]);
    assert!(removed.contains(&format!("removed {w_id}")), "{removed}");
    assert!(removed.contains("gossip key rotated"), "{removed}");
    wait_for(
        &config,
        &cp.url,
        "the removed node is no longer listed",
        |s| !s.contains(short),
    );
    let members = ui_ok(&config, &cp.url, &["cluster", "members"]);
    assert!(!members.contains(&w_id), "{members}");
}
