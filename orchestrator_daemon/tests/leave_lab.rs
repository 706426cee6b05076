//! The right to leave on three hosts running real containers (issue 18),
//! driven with `ui` as a user would. The user runs a workload with a volume
//! and one with a secret on every host, and has an agent token. After `ui
//! export` and `ui forget --yes`, on every host: no container of theirs, no
//! volume (its data wiped: the bytes written to it are in no file), no
//! secret (nor its tmpfs), and the token is refused; the API lists none of
//! their workloads, secrets or volumes. `ui import` of the archive on a
//! fresh cluster brings the workloads back, the secret sealed again to the
//! new node, which opens it.
//!
//! Needs root and the test registry (`./scripts/test-registry start`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod multihost_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use multihost_common::operators::start_operated;
use multihost_common::search::holding;
use multihost_common::ui::User;
use multihost_common::youki::registry_forwarder;
use multihost_common::{eventually, sh, Lab};
use sha2::Digest as _;

/// The labs' networks: 10.250.`NET`.0/24 and the fresh cluster's.
const NET: u8 = 11;
const FRESH_NET: u8 = 12;
const DEADLINE: Duration = Duration::from_secs(90);
const VALUE: &str = "leave-9c1d7e55-secret-plaintext";
/// What `kept` writes to its volume; its manifest holds only `$((40+2))`,
/// so that the store and the audit log never hold these bytes.
const KEPT: &str = "kept-data-42-5e0b3a91";

fn daemon() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"))
}

fn manifests(dir: &Path, image: &str) -> (PathBuf, PathBuf) {
    let kept = format!(
        "name: kept\nnetwork: none\ncontainers:\n- name: main\n  image: {image}\n  \
         command: [sh, -c, \"echo kept-data-$((40+2))-5e0b3a91 > /data/f; sync; exec sleep 3600\"]\n  \
         resources: {{requests: {{cpu: 50m, memory: 16Mi}}}}\n  \
         volumes: [{{name: data, mount_path: /data, size: 8Mi}}]\n"
    );
    let everywhere = format!(
        "name: everywhere\nreplicas: 3\nnetwork: none\nplacement: {{max_per_node: 1}}\n\
         containers:\n- name: main\n  image: {image}\n  command: [sh, -c, \"printf %s \\\"$DB\\\" \
         | sha256sum; exec sleep 3600\"]\n  resources: {{requests: {{cpu: 50m, memory: 16Mi}}}}\n  \
         secret_env: [{{name: DB, secret: db}}]\n"
    );
    let (a, b) = (dir.join("kept.yaml"), dir.join("everywhere.yaml"));
    std::fs::write(&a, kept).unwrap();
    std::fs::write(&b, everywhere).unwrap();
    (a, b)
}

/// Running instances of `name`, as `user` sees them.
fn running(user: &User, name: &str) -> usize {
    user.status(name).1.len()
}

/// Whether `dir` holds any file, at any depth.
fn has_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

async fn token_status(server: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{server}/api/v1/workloads"))
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_leaves_nothing_on_any_host_and_import_brings_it_back() {
    let mut lab = Lab::new("ul", NET, 3, &daemon());
    lab.runtime = "youki";
    let forwarder = format!("10.250.{NET}.1:5000");
    let image = registry_forwarder(&forwarder).await;
    start_operated(&mut lab, &daemon(), &["--insecure-registry", &forwarder]).await;
    let user = User::new(&daemon(), lab.path("user"), lab.hosts[0].api());
    user.ok(&["init"]);
    let value_file = lab.path("value");
    std::fs::write(&value_file, VALUE).unwrap();
    user.ok(&[
        "secret",
        "set",
        "db",
        "--from-file",
        value_file.to_str().unwrap(),
    ]);
    std::fs::remove_file(&value_file).unwrap();
    let (kept, everywhere) = manifests(&lab.path(""), &image);
    for m in [&kept, &everywhere] {
        user.ok(&["deploy", m.to_str().unwrap(), "--no-wait"]);
    }
    user.ok(&["policy", "ai", "on"]);
    user.ok(&["policy", "automation", "list_workloads", "autonomous"]);
    let token = user.json(&[
        "agent",
        "token",
        "create",
        "--name",
        "bot",
        "--tools",
        "list_workloads",
    ]);
    let token = token["token"].as_str().unwrap().to_owned();

    let data_dirs: Vec<PathBuf> = (0..3).map(|i| lab.data_dir(i).to_path_buf()).collect();
    let roots: Vec<&Path> = data_dirs.iter().map(PathBuf::as_path).collect();
    eventually(
        DEADLINE,
        "kept runs and wrote to its volume; everywhere runs on all 3",
        || async {
            running(&user, "kept") == 1
                && running(&user, "everywhere") == 3
                && !holding(&roots, KEPT.as_bytes()).0.is_empty()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 60)));
    for i in 0..3 {
        assert_eq!(
            token_status(&lab.hosts[i].api(), &token).await,
            200,
            "host {i}"
        );
        let containers = lab.data_dir(i).join("runtime/containers");
        assert!(
            !has_files(&containers).is_empty(),
            "host {i} runs the user's containers"
        );
    }

    let archive = lab.path("me.json");
    user.ok(&["export", archive.to_str().unwrap()]);
    let forgot = user.json(&["forget", "--yes"]);
    assert_eq!(forgot["volumes"], serde_json::json!(["data"]), "{forgot}");

    // On every host: nothing of theirs.
    for i in 0..3 {
        let on = user.on(lab.hosts[i].api());
        assert_eq!(
            token_status(&on.server, &token).await,
            401,
            "host {i}: the token"
        );
        let dir = lab.data_dir(i).to_path_buf();
        eventually(
            DEADLINE,
            &format!("host {i} holds no container, volume or secret"),
            || async {
                has_files(&dir.join("runtime/containers")).is_empty()
                    && has_files(&dir.join("runtime/volumes")).is_empty()
                    && holding(&[dir.as_path()], VALUE.as_bytes()) == (vec![], vec![])
            },
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e}: containers {:?}, volumes {:?}\n--- log:\n{}",
                has_files(&dir.join("runtime/containers")),
                has_files(&dir.join("runtime/volumes")),
                lab.log_tail(i, 40)
            )
        });
        assert_eq!(
            on.json(&["status"])["items"],
            serde_json::json!([]),
            "host {i}"
        );
        assert_eq!(
            on.json(&["secret", "list"]),
            serde_json::json!([]),
            "host {i}"
        );
        assert_eq!(
            on.json(&["volume", "list"]),
            serde_json::json!([]),
            "host {i}"
        );
    }
    // The volume was wiped: what was written to it is in no file.
    let (found, _) = holding(&roots, KEPT.as_bytes());
    assert!(found.is_empty(), "the volume's data survives in {found:?}");

    // A fresh cluster: the archive brings the workloads back; the secret,
    // sealed again to its node, opens there.
    let mut fresh = Lab::new("uf", FRESH_NET, 1, &daemon());
    fresh.runtime = "youki";
    // The archived manifests name the first lab's registry forwarder, which
    // still runs: the fresh host reaches it through the test machine.
    let registry = format!("10.250.{NET}.1:5000");
    sh(&[
        "ip",
        "-n",
        "ufh0",
        "route",
        "add",
        &format!("10.250.{NET}.0/24"),
        "via",
        &format!("10.250.{FRESH_NET}.1"),
    ]);
    let ids = start_operated(&mut fresh, &daemon(), &["--insecure-registry", &registry]).await;
    let there = user.on(fresh.hosts[0].api());
    let said = there.json(&["import", archive.to_str().unwrap()]);
    assert_eq!(said["workloads"].as_array().unwrap().len(), 2, "{said}");
    let hash = hex::encode(sha2::Sha256::digest(VALUE.as_bytes()));
    eventually(
        DEADLINE,
        "both workloads run on the fresh cluster",
        || async {
            let out = there.ui(&["logs", "everywhere"]);
            running(&there, "kept") == 1
                && running(&there, "everywhere") == 1
                && String::from_utf8_lossy(&out.stdout).contains(&hash)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", fresh.log_tail(0, 60)));
    let secrets = there.json(&["secret", "list"]);
    let recipients = secrets[0]["recipients"].as_array().unwrap();
    assert!(recipients.iter().any(|k| k == ids[0].as_str()), "{secrets}");

    // Leaving the fresh cluster too leaves nothing running behind the test.
    there.ok(&["forget", "--yes"]);
    let dir = fresh.data_dir(0).to_path_buf();
    eventually(
        DEADLINE,
        "the fresh host holds no container or volume",
        || async {
            has_files(&dir.join("runtime/containers")).is_empty()
                && has_files(&dir.join("runtime/volumes")).is_empty()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", fresh.log_tail(0, 40)));
}
