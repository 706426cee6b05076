//! Secrets on real containers (youki): the node opens them with its own key
//! just before start; a variable reaches the process and a file is on a
//! tmpfs, read-only, owned by the container's user; the value is written to
//! no disk (the bundle's `config.json`, the record, the logs, the state);
//! a secret not sealed to the node is refused with a reason that names it
//! and holds no value; the tmpfs goes with the container.
//!
//! Needs root, cgroups and the test registry, as `youki.rs` does.
#![cfg(target_os = "linux")]

mod youki_common;

use std::path::Path;
use std::sync::Arc;

use container_runtime::youki::SecretKey;
use container_runtime_interface::{ContainerRuntime, ContainerSpec, RuntimeError};
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::{PublicKey, SecretEnvRef, SecretFileRef};
use sha2::Digest as _;
use youki_common::*;

const VALUE: &str = "hunter2-b9d4e1c7-not-in-any-file";

fn node_key() -> SigningKey {
    SigningKey::from_bytes(&[21; 32])
}

fn public(k: &SigningKey) -> PublicKey {
    PublicKey(k.verifying_key().to_bytes())
}

/// `script` with secret `db` as `$DB_PASSWORD` and at `/run/secrets/db`,
/// sealed to `recipients`.
fn with_secret(script: &str, recipients: &[PublicKey]) -> ContainerSpec {
    let mut c = config("busybox", &["sh", "-c", script]);
    c.secret_env = vec![SecretEnvRef {
        name: "DB_PASSWORD".into(),
        secret: "db".into(),
    }];
    c.secret_files = vec![SecretFileRef {
        path: "/run/secrets/db".into(),
        secret: "db".into(),
    }];
    let mut s = spec(c);
    let sealed = orchestrator_secrets::seal(VALUE.as_bytes(), recipients).expect("sealing");
    s.secrets.insert("db".into(), sealed);
    s
}

#[path = "../../tests/support/holding.rs"]
mod search;

/// [`search::holding`] under `dir` alone.
fn holding(dir: &Path, needle: &[u8]) -> (Vec<String>, Vec<String>) {
    search::holding(&[dir], needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_the_process_and_no_disk() {
    let dir = Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let data = dir.path().to_path_buf();
    let t = open_with(dir, |c| {
        c.secret_key = Some(SecretKey::new(&node_key()).expect("key"));
    })
    .await;
    let rt = &t.rt;
    let owner = SigningKey::from_bytes(&[22; 32]);
    let recipients = [public(&owner), public(&node_key())];
    let script = "echo len=${#DB_PASSWORD}; printf %s \"$DB_PASSWORD\" | sha256sum; \
                  sha256sum < /run/secrets/db; stat -c 'mode=%a uid=%u' /run/secrets/db; \
                  echo x > /run/secrets/db 2>&1 || echo write-refused; \
                  grep ' /run/secrets/db ' /proc/mounts; sleep 3600";
    let id = create(rt, &with_secret(script, &recipients)).await;
    let want = hex::encode(sha2::Sha256::digest(VALUE.as_bytes()));
    let deadline = std::time::Instant::now() + DEADLINE;
    let out = loop {
        let out = output(rt, &id).await;
        if out.contains("/run/secrets/db ") || std::time::Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(out.contains(&format!("len={}", VALUE.len())), "{out}");
    assert_eq!(
        out.matches(&want).count(),
        2,
        "the variable and the file: {out}"
    );
    assert!(out.contains("mode=400 uid=0"), "{out}");
    assert!(out.contains("write-refused"), "{out}");
    assert!(out.contains(" ro,"), "bound read-only: {out}");
    assert!(!out.contains(VALUE), "the script printed no value: {out}");

    // While it runs: on no disk of the node; only on its secrets tmpfs.
    let (found, tmpfs) = holding(&data, VALUE.as_bytes());
    assert!(found.is_empty(), "the value is on disk in {found:?}");
    assert_eq!(tmpfs.len(), 1, "one secrets tmpfs: {tmpfs:?}");
    assert!(tmpfs[0].ends_with("/secrets"), "{tmpfs:?}");
    // The search is not vacuous: the sealed value is in no file either,
    // but the bundle and the record are found by their own content.
    let (bundle, _) = holding(&data, b"DB_PASSWORD");
    assert!(
        bundle.iter().any(|p| p.ends_with("config.json"))
            || bundle.iter().any(|p| p.ends_with("record.json")),
        "the search reads the bundle: {bundle:?}"
    );

    rt.stop_container(&id, std::time::Duration::from_secs(1))
        .await
        .expect("stop");
    rt.remove_container(&id).await.expect("remove");
    let (found, tmpfs) = holding(&data, VALUE.as_bytes());
    assert!(found.is_empty() && tmpfs.is_empty(), "{found:?} {tmpfs:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root = data.to_str().expect("utf-8");
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|mp| mp.starts_with(root) && mp.ends_with("/secrets"))
        })
        .collect();
    assert!(left.is_empty(), "the secrets tmpfs is unmounted: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_not_sealed_to_the_node_is_refused_without_its_value() {
    let dir = Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let t = open_with(dir, |c| {
        c.secret_key = Some(SecretKey::new(&node_key()).expect("key"));
    })
    .await;
    let rt = &t.rt;
    let other = SigningKey::from_bytes(&[23; 32]);
    let spec = with_secret("true", &[public(&other)]);
    match rt.create_container(NODE, &spec).await {
        Err(RuntimeError::Create { reason, .. }) => {
            assert!(reason.contains("secret \"db\""), "{reason}");
            assert!(reason.contains("rewrap"), "{reason}");
            assert!(!reason.contains(VALUE), "{reason}");
        }
        other => panic!("a secret sealed to another key: {other:?}"),
    }
    assert!(rt.list_containers(NODE).await.expect("list").is_empty());

    // A spec that names a secret without its sealed value is refused too.
    let mut missing = with_secret("true", &[public(&node_key())]);
    missing.secrets.clear();
    let err = rt
        .create_container(NODE, &missing)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("secret \"db\""), "{err}");

    // A runtime without the node's key opens nothing.
    let keyless = runtime().await;
    let err = keyless
        .rt
        .create_container(NODE, &with_secret("true", &[public(&node_key())]))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("no key"), "{err}");
}
