//! Unit tests of pulling: config parsing and the cache, without a network,
//! plus one test against a real registry.

use super::*;
use crate::youki::image::test_support::{add_image, s, TestDir};
use crate::youki::image::{plan_process, ImageStoreConfig};
use std::collections::BTreeMap;

#[test]
fn image_config_fields_and_diff_ids_are_parsed() {
    let diff = "cd".repeat(32);
    let json = format!(
        r#"{{"architecture":"amd64","os":"linux",
            "config":{{"Entrypoint":null,"Cmd":["sh"],"Env":["A=1"],"WorkingDir":"","User":"app"}},
            "rootfs":{{"type":"layers","diff_ids":["sha256:{diff}"]}}}}"#
    );
    let (cfg, diff_ids) = parse_image_config(json.as_bytes()).unwrap();
    assert_eq!(
        cfg,
        ImageConfig {
            entrypoint: vec![],
            cmd: vec!["sh".into()],
            env: vec!["A=1".into()],
            working_dir: None,
            user: Some("app".into()),
        }
    );
    assert_eq!(diff_ids, vec![diff]);
    assert_eq!(
        parse_image_config(b"{}").unwrap(),
        (ImageConfig::default(), vec![])
    );
}

#[tokio::test]
async fn cached_images_are_served_without_a_registry() {
    let dir = TestDir::new("policy");
    let mut cfg = ImageStoreConfig::for_test(dir.path());
    cfg.pull_policy = PullPolicy::Never;
    // Port 9 on loopback: any attempt to reach it fails at once.
    cfg.insecure_registries = vec!["127.0.0.1:9".into()];
    let store = ImageStore::new(cfg.clone()).unwrap();
    let err = store.ensure("busybox").await.unwrap_err();
    assert!(
        matches!(&err, ImageError::NotPresent(r) if r == "docker.io/library/busybox:latest"),
        "{err}"
    );
    assert!(matches!(
        store.ensure("Not A Ref!").await,
        Err(ImageError::Reference(_))
    ));

    let added = add_image(
        &store,
        "docker.io/library/busybox:latest",
        'b',
        &[('1', 3)],
        4,
    );
    add_image(&store, "127.0.0.1:9/test/img:1", 'c', &[('1', 3)], 4);
    store.persist().await.unwrap();
    drop(store);

    // After a restart, under both policies that may use the cache.
    for policy in [PullPolicy::Never, PullPolicy::IfNotPresent] {
        cfg.pull_policy = policy;
        let store = ImageStore::new(cfg.clone()).unwrap();
        let image = store.ensure("busybox:latest").await.unwrap();
        assert_eq!(image.rootfs, added.rootfs);
        assert_eq!(image.config_digest, added.config_digest);
        assert_eq!(image.size_bytes, 4 + 1 + 3);
        assert!(store.ensure("127.0.0.1:9/test/img:1").await.is_ok());
    }

    // A miss under IfNotPresent does go to the registry.
    cfg.pull_policy = PullPolicy::IfNotPresent;
    let store = ImageStore::new(cfg).unwrap();
    let (first, second) = tokio::join!(
        store.ensure("127.0.0.1:9/test/other:1"),
        store.ensure("127.0.0.1:9/test/other:1")
    );
    for result in [first, second] {
        assert!(matches!(result, Err(ImageError::Pull { .. })), "{result:?}");
    }
}

/// Pulls from a real registry (`UNIVRS_TEST_REGISTRY`, default
/// `127.0.0.1:5000`) serving `test/busybox:1`: `./scripts/test-registry start`.
#[tokio::test]
async fn pulls_and_unpacks_from_a_registry() {
    let registry =
        std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let dir = TestDir::new("registry");
    let mut cfg = ImageStoreConfig::for_test(dir.path());
    cfg.insecure_registries = vec![registry.clone()];
    let store = ImageStore::new(cfg.clone()).unwrap();
    let reference = format!("{registry}/test/busybox:1");
    let (a, b) = tokio::join!(store.ensure(&reference), store.ensure(&reference));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.rootfs, b.rootfs);
    assert!(a.rootfs.join("bin").exists(), "{}", a.rootfs.display());
    assert!(a.size_bytes > 0 && store.cached_bytes() >= a.size_bytes);
    let plan = plan_process(&a, &s(&["/bin/sh"]), &[], &BTreeMap::new()).unwrap();
    assert_eq!(plan.args, s(&["/bin/sh"]));

    cfg.pull_policy = PullPolicy::Always;
    let store = ImageStore::new(cfg).unwrap();
    let again = store.ensure(&reference).await.unwrap();
    assert_eq!(again.rootfs, a.rootfs);
    assert_eq!(again.manifest_digest, a.manifest_digest);
}
