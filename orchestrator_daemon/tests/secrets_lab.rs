//! A secret end to end on three hosts running real containers (issue 18),
//! driven with `ui` as a user would. Each host is run by its own operator;
//! the user denies operator 2. `ui secret set` seals the value to the nodes
//! of operators 0 and 1 and to the user's key; a workload of three replicas,
//! at most one per node, takes it as a variable and as a file and prints
//! its length and hash. Two replicas run and print the right hash; the third
//! is not placed on operator 2's node, and the reason names the secret.
//! After `ui policy trust` of operator 2 and `ui secret rewrap`, it runs
//! there. Every byte of every host's data directory (the store included),
//! the hosts' logs and the user's config directory holds no plaintext, while
//! the instances run (their secrets tmpfs aside) and after they are gone.
//!
//! Needs root and the test registry (`./scripts/test-registry start`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod multihost_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use multihost_common::operators::{hex_key, operator, start_operated};
use multihost_common::search::holding;
use multihost_common::ui::User;
use multihost_common::youki::registry_forwarder;
use multihost_common::{eventually, Lab};
use serde_json::Value;
use sha2::Digest as _;

/// The lab's network: 10.250.`NET`.0/24 (unique among the lab tests).
const NET: u8 = 10;
const DEADLINE: Duration = Duration::from_secs(90);
const VALUE: &str = "tr0ub4dor-and-3-9f27c6e1-plaintext";

fn daemon() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"))
}

/// Waits until `n` instances of secret-app printed the value's length and
/// `hash` twice (the variable, the file).
async fn printed(user: &User, lab: &Lab, hash: &str, n: usize) {
    let len = format!("len={}", VALUE.len());
    eventually(
        DEADLINE,
        &format!("{n} instances print the hash"),
        || async {
            let out = user.ui(&["logs", "secret-app"]);
            let text = String::from_utf8_lossy(&out.stdout);
            text.matches(hash).count() == 2 * n && text.matches(&len).count() == n
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 40)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_only_trusted_nodes_and_no_disk() {
    let mut lab = Lab::new("us", NET, 3, &daemon());
    lab.runtime = "youki";
    let forwarder = format!("10.250.{NET}.1:5000");
    let image = registry_forwarder(&forwarder).await;
    let ids = start_operated(&mut lab, &daemon(), &["--insecure-registry", &forwarder]).await;
    let user = User::new(&daemon(), lab.path("user"), lab.hosts[0].api());
    user.ok(&["init"]);
    user.ok(&["policy", "deny", &hex_key(&operator(2))]);

    // Sealed on the user's machine to the nodes of operators 0 and 1.
    let value_file = lab.path("value");
    std::fs::write(&value_file, VALUE).unwrap();
    let set = user.json(&[
        "secret",
        "set",
        "db",
        "--from-file",
        value_file.to_str().unwrap(),
    ]);
    let sealed_to: Vec<&str> = set["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(sealed_to.contains(&ids[0].as_str()) && sealed_to.contains(&ids[1].as_str()));
    assert!(!sealed_to.contains(&ids[2].as_str()), "{set}");
    std::fs::remove_file(&value_file).unwrap();

    let manifest = format!(
        "name: secret-app\nreplicas: 3\nnetwork: none\nplacement: {{max_per_node: 1}}\n\
         containers:\n- name: main\n  image: {image}\n  command: [sh, -c, \"echo len=${{#DB}}; \
         printf %s \\\"$DB\\\" | sha256sum; sha256sum < /run/secrets/db; exec sleep 3600\"]\n  \
         resources: {{requests: {{cpu: 50m, memory: 16Mi}}}}\n  \
         secret_env: [{{name: DB, secret: db}}]\n  \
         secret_files: [{{path: /run/secrets/db, secret: db}}]\n"
    );
    let manifest_file = lab.path("secret-app.yaml");
    std::fs::write(&manifest_file, manifest).unwrap();
    user.ok(&["deploy", manifest_file.to_str().unwrap(), "--no-wait"]);

    // Two run, on the trusted nodes; the third waits, and says why.
    let wait_reason = "cannot open secret(s) \"db\"";
    eventually(
        DEADLINE,
        "2 replicas run and 1 waits for a node that can open db",
        || async {
            let (w, nodes) = user.status("secret-app");
            nodes.len() == 2
                && w["status"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(wait_reason))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 60)));
    let (w, nodes) = user.status("secret-app");
    assert!(!nodes.contains(&ids[2]), "untrusted node used: {nodes:?}");
    assert_eq!(w["status"]["unscheduled"], 1, "{w}");

    // Each prints the value's length and hash, from the variable and the file.
    let hash = hex::encode(sha2::Sha256::digest(VALUE.as_bytes()));
    printed(&user, &lab, &hash, 2).await;

    // Trusted now, and sealed to it: operator 2's node runs the third.
    user.ok(&["policy", "trust", &hex_key(&operator(2))]);
    let (w, _) = user.status("secret-app");
    assert!(
        w["status"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(wait_reason)),
        "trusting alone does not let a node open what was sealed before: {w}"
    );
    let rewrapped = user.json(&["secret", "rewrap"]);
    assert_eq!(
        rewrapped["rewrapped"],
        serde_json::json!(["db"]),
        "{rewrapped}"
    );
    eventually(
        DEADLINE,
        "the third replica runs on operator 2's node",
        || async {
            let (_, nodes) = user.status("secret-app");
            nodes.len() == 3 && nodes.contains(&ids[2])
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 60)));
    printed(&user, &lab, &hash, 3).await;

    // No plaintext anywhere: the hosts' data directories (store, bundles,
    // container logs, images), the daemons' logs, the user's config.
    let logs: Vec<PathBuf> = (0..3).map(|i| lab.path(&format!("host{i}.log"))).collect();
    let mut roots: Vec<&Path> = (0..3).map(|i| lab.data_dir(i)).collect();
    roots.extend(logs.iter().map(PathBuf::as_path));
    roots.push(&user.config);
    let (found, tmpfs) = holding(&roots, VALUE.as_bytes());
    assert!(found.is_empty(), "plaintext on disk in {found:?}");
    assert_eq!(tmpfs.len(), 3, "one secrets tmpfs per instance: {tmpfs:?}");
    assert!(tmpfs.iter().all(|p| p.ends_with("/secrets")), "{tmpfs:?}");
    // Not vacuous: the same search finds the workload in the store and the
    // hash in the instances' logs.
    let (stores, _) = holding(&roots, b"secret-app");
    assert!(stores.iter().any(|p| p.contains("state.db")), "{stores:?}");
    let (hashes, _) = holding(&roots, hash.as_bytes());
    assert!(hashes.len() >= 3, "{hashes:?}");

    user.ok(&["delete", "secret-app"]);
    eventually(DEADLINE, "the instances are gone", || async {
        holding(&roots, b"len=")
            .0
            .iter()
            .all(|p| !p.contains("/containers/"))
            && holding(&roots, VALUE.as_bytes()).1.is_empty()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 40)));
    let (found, tmpfs) = holding(&roots, VALUE.as_bytes());
    assert!(found.is_empty() && tmpfs.is_empty(), "{found:?} {tmpfs:?}");
}
