//! `ui volume list|rm` against a real daemon (mock runtime): a deployed
//! workload's volume is listed with its size and user; removing it is
//! refused while the workload mounts it, and works once it is deleted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

use common::{start_daemon, ui, ui_ok};

#[test]
fn volumes_are_listed_and_removed_only_when_unused() {
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("config");
    let daemon = start_daemon(&tmp.path().join("data"));
    let server = daemon.url.as_str();
    ui_ok(&config_dir, server, &["init"]);
    let manifest = tmp.path().join("db.yaml");
    std::fs::write(
        &manifest,
        "name: db\ncontainers:\n  - name: main\n    image: db:1\n    volumes:\n      \
         - {name: data, mount_path: /data, size: 64Mi}\n",
    )
    .unwrap();
    ui_ok(
        &config_dir,
        server,
        &["deploy", manifest.to_str().unwrap(), "--timeout", "30"],
    );

    let list: Value = serde_json::from_str(&ui_ok(
        &config_dir,
        server,
        &["volume", "list", "-o", "json"],
    ))
    .unwrap();
    let v = &list[0];
    assert_eq!(v["name"], "data", "{list}");
    assert_eq!(v["size"], "64Mi", "{list}");
    assert_eq!(v["used_by"], serde_json::json!(["db"]), "{list}");
    let table = ui_ok(&config_dir, server, &["volume", "list"]);
    assert!(
        table.contains("NAME") && table.contains("data") && table.contains("64Mi"),
        "{table}"
    );

    let refused = ui(&config_dir, server, &["volume", "rm", "data"]);
    assert!(!refused.status.success(), "removing a volume in use");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("in use by workload(s) db"), "{said}");

    ui_ok(&config_dir, server, &["delete", "db"]);
    // Its containers go first; until then the node still holds the volume.
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let out = ui(&config_dir, server, &["volume", "rm", "data"]);
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "ui volume rm: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(done.contains("volume data wiped and deleted"), "{done}");
    let empty = ui_ok(&config_dir, server, &["volume", "list"]);
    assert!(empty.contains("no volumes"), "{empty}");
    daemon.kill();
}
