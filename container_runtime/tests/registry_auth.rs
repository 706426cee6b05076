//! The image store against a registry that wants HTTP basic auth.
//!
//! Needs the test registries of `./scripts/test-registry start` (which
//! `./scripts/test` runs): besides the anonymous one on 127.0.0.1:5000, a
//! second docker-registry serving the same images on 127.0.0.1:5001 to user
//! `tester`, password `s3cret`, only. The address comes from
//! `UNIVRS_TEST_AUTH_REGISTRY` (default 127.0.0.1:5001), the anonymous one's
//! from `UNIVRS_TEST_REGISTRY` (default 127.0.0.1:5000).
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;

use container_runtime::youki::image::ImageError;
use container_runtime::youki::{ImageStore, ImageStoreConfig, PullPolicy, RegistryCredentials};
use tempfile::TempDir;

const USER: &str = "tester";
const PASSWORD: &str = "s3cret";
const WRONG_PASSWORD: &str = "not-s3cret-4f9d";

fn auth_registry() -> String {
    std::env::var("UNIVRS_TEST_AUTH_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5001".into())
}

fn anonymous_registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

fn busybox() -> String {
    format!("{}/test/busybox:1", auth_registry())
}

fn creds(password: &str) -> RegistryCredentials {
    RegistryCredentials {
        username: USER.into(),
        password: password.into(),
    }
}

/// A store in a fresh directory that reaches both test registries over HTTP,
/// with `credentials`. `Always`: a pull resolves the digest (HEAD manifest),
/// then fetches the manifest and the blobs, each request authenticated.
fn store(credentials: BTreeMap<String, RegistryCredentials>) -> (ImageStore, TempDir) {
    let dir = TempDir::new().expect("tempdir");
    let mut cfg = ImageStoreConfig::for_test(dir.path().join("images"));
    cfg.insecure_registries = vec![auth_registry(), anonymous_registry()];
    cfg.pull_policy = PullPolicy::Always;
    cfg.credentials = credentials;
    let store = ImageStore::new(cfg).expect("open the image store");
    (store, dir)
}

/// Pulls `busybox()` expecting the registry's 401; checks that nothing was
/// cached and returns the error's reason.
///
/// oci-client reports any 401 as "Not authorized: url <the request's URL>";
/// the registry's JSON body (`UNAUTHORIZED`, "authentication required") is
/// not passed on.
async fn refused(store: &ImageStore) -> String {
    let reference = busybox();
    let reason = match store.ensure(&reference).await {
        Err(ImageError::Pull { image, reason }) => {
            assert!(
                image.contains("test/busybox"),
                "the error names the image: {image}"
            );
            reason
        }
        Err(other) => panic!("pulling {reference}: expected ImageError::Pull, got {other:?}"),
        Ok(image) => panic!(
            "pulling {reference} without valid credentials succeeded: {:?}",
            image.rootfs
        ),
    };
    let url = format!("http://{}/v2/test/busybox/manifests/1", auth_registry());
    assert!(
        reason.contains("Not authorized") && reason.contains(&url),
        "the pull error should report the registry's 401 on {url}: {reason}"
    );
    assert_eq!(
        store.cached_bytes(),
        0,
        "nothing cached after a refused pull"
    );
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_with_the_right_credentials() {
    let (store, _dir) = store(BTreeMap::from([(auth_registry(), creds(PASSWORD))]));
    let reference = busybox();
    let image = store.ensure(&reference).await.unwrap_or_else(|e| {
        panic!("pulling {reference} as {USER} (is `./scripts/test-registry start` running?): {e}")
    });
    let busybox = image.rootfs.join("bin/busybox");
    assert!(
        busybox.is_file(),
        "{} missing from the pulled rootfs",
        busybox.display()
    );
    assert!(store.cached_bytes() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_the_pull_is_refused() {
    let (store, _dir) = store(BTreeMap::new());
    refused(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_of_another_registry_are_not_sent() {
    let (store, _dir) = store(BTreeMap::from([(anonymous_registry(), creds(PASSWORD))]));
    refused(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_nothing_is_cached() {
    let (store, _dir) = store(BTreeMap::from([(auth_registry(), creds(WRONG_PASSWORD))]));
    let reason = refused(&store).await;
    assert!(
        !reason.contains(WRONG_PASSWORD),
        "the error must not echo the password: {reason}"
    );
}
