//! Data at rest on a node (SPEC §18): the data directory and everything in
//! it belong to the daemon's user alone — directories 0700 or stricter,
//! files 0600 or stricter — on a control plane and on a worker that joined
//! it, with a workload running; and a data directory an older version left
//! 0755 with 0644 files is made private at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission_common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orchestrator_daemon::{Daemon, DaemonConfig, Settings, StoreKind};

use admission_common::*;

/// The bits that let group and others in.
const OTHERS: u32 = 0o077;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every directory and regular file under `root` (itself included), by
/// path, with its mode; symlinks are not followed.
fn walk(root: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(p) = todo.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let kind = meta.file_type();
        if kind.is_dir() {
            for entry in std::fs::read_dir(&p).unwrap() {
                todo.push(entry.unwrap().path());
            }
        } else if !kind.is_file() {
            continue;
        }
        out.push((p, kind.is_dir(), meta.permissions().mode() & 0o7777));
    }
    out
}

/// Fails naming every directory or file under `root` that group or others
/// may reach.
fn assert_private(root: &Path) {
    let entries = walk(root);
    let open: Vec<String> = entries
        .iter()
        .filter(|(_, _, mode)| mode & OTHERS != 0)
        .map(|(p, dir, mode)| {
            let kind = if *dir { "directory" } else { "file" };
            format!("{kind} {} is {mode:04o}", p.display())
        })
        .collect();
    assert!(
        open.is_empty(),
        "{} of {} entries under {} are not private to the daemon's user:\n  {}",
        open.len(),
        entries.len(),
        root.display(),
        open.join("\n  ")
    );
}

fn assert_has(root: &Path, files: &[&str]) {
    for f in files {
        assert!(root.join(f).is_file(), "{} has no {f}", root.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_a_node_writes_is_private_to_its_user() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp_dir, w_dir) = (tmp.path().join("cp"), tmp.path().join("w"));
    let mut s = settings(&cp_dir, None);
    s.store = Some(StoreKind::Sqlite);
    let cp = Daemon::start(&DaemonConfig::resolve(s, Settings::default()).unwrap())
        .await
        .unwrap();
    let w = start(&w_dir, Some(&issue(&cp, 3600).await)).await.unwrap();
    let w_id = node_id(&w_dir);
    eventually(
        "the control plane lists the worker",
        Duration::from_secs(10),
        || listed_by_control_plane(&cp, w_id),
    )
    .await;

    // A workload: its definition in the store, the call in the audit log.
    let manifest =
        "name: quiet\nreplicas: 2\ncontainers:\n  - name: main\n    image: busybox\n    \
                    env: {TOKEN: s3cret}\n    \
                    resources:\n      requests: {cpu: 100m, memory: 32Mi}\n";
    let c = client(&cp);
    tokio::task::spawn_blocking(move || {
        c.create_workload("application/yaml", manifest.as_bytes())
            .unwrap()
    })
    .await
    .unwrap();
    let store = std::sync::Arc::clone(&cp.orchestrator.as_ref().unwrap().deps().store);
    eventually("2 instances placed", Duration::from_secs(10), || async {
        store.list_instances().await.unwrap().len() == 2
    })
    .await;

    // While the daemons run (SQLite's -wal and -shm files exist then).
    assert_has(
        &cp_dir,
        &[
            "node.key",
            "cluster.json",
            "gossip.keys",
            "audit.log",
            "state.db",
            "state.db-wal",
            "state.db-shm",
        ],
    );
    assert_has(&w_dir, &["node.key", "cluster.json", "gossip.keys"]);
    assert_private(&cp_dir);
    assert_private(&w_dir);

    for d in [w, cp] {
        tokio::time::timeout(Duration::from_secs(20), d.stop())
            .await
            .unwrap();
    }
    assert_private(&cp_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_data_directory_is_made_private_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let set =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    set(&data, 0o755);
    // As an older daemon left them (an empty file is an empty database and
    // an empty audit log).
    let older: [(&str, &[u8]); 3] = [
        ("node.key", &[9; 32]),
        ("state.db", b""),
        ("audit.log", b""),
    ];
    for (f, bytes) in older {
        std::fs::write(data.join(f), bytes).unwrap();
        set(&data.join(f), 0o644);
    }
    std::fs::write(data.join("notes.txt"), b"the operator's").unwrap();
    set(&data.join("notes.txt"), 0o644);

    let mut config = DaemonConfig::for_test(data.clone());
    config.store = StoreKind::Sqlite;
    let d = Daemon::start(&config).await.unwrap();
    assert_eq!(mode(&data), 0o700, "the data directory");
    for f in ["node.key", "state.db", "state.db-wal", "audit.log"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    // Not the daemon's file: left as it was, out of reach behind 0700.
    assert_eq!(mode(&data.join("notes.txt")), 0o644);
    // The same key as before, not a new one.
    let key = orchestrator_daemon::node_key::load(&data).unwrap().unwrap();
    assert_eq!(key.to_bytes(), [9; 32]);
    tokio::time::timeout(Duration::from_secs(20), d.stop())
        .await
        .unwrap();
}
