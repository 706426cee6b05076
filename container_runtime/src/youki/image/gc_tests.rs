//! Unit tests of garbage collection.

use super::*;
use crate::youki::image::pull::Pins;
use crate::youki::image::test_support::{add_image, hx, TestDir};
use crate::youki::image::ImageStoreConfig;

#[tokio::test]
async fn gc_evicts_least_recently_used_images_no_container_holds() {
    let dir = TestDir::new("gc");
    let mut cfg = ImageStoreConfig::for_test(dir.path());
    cfg.max_cache_bytes = 400;
    let store = ImageStore::new(cfg.clone()).unwrap();
    let d = add_image(&store, "d", 'd', &[('4', 50)], 100);
    store.acquire(&d); // oldest, but in use
    let a = add_image(&store, "a", 'a', &[('1', 50), ('5', 50)], 100);
    let b = add_image(&store, "b", 'b', &[('6', 50)], 100);
    let c = add_image(&store, "c", 'c', &[('1', 50), ('7', 50)], 100);
    assert_eq!(a.size_bytes, 201);
    assert_eq!(store.cached_bytes(), 4 * 100 + 4 + 5 * 50);

    // a: rootfs 100 + config 1 + layer 5 (layer 1 is shared with c); b: 100 + 1 + 50.
    assert_eq!(store.gc().await.unwrap(), 151 + 151);
    assert_eq!(store.cached_bytes(), 654 - 302);
    assert!(!a.rootfs.exists() && !b.rootfs.exists());
    assert!(c.rootfs.exists() && d.rootfs.exists());
    assert!(store.blob_path(&hx('1')).exists());
    assert!(!store.blob_path(&hx('5')).exists() && !store.blob_path(&hx('a')).exists());
    assert_eq!(store.gc().await.unwrap(), 0);

    // The index on disk agrees after a restart.
    drop(store);
    let store = ImageStore::new(cfg).unwrap();
    assert_eq!(store.cached_bytes(), 352);
    assert!(store.lookup("a", None).is_none());
    assert_eq!(store.lookup("c", None).unwrap().rootfs, c.rootfs);
}

#[tokio::test]
async fn released_images_become_evictable_and_orphan_blobs_always_go() {
    let dir = TestDir::new("gc-release");
    let mut cfg = ImageStoreConfig::for_test(dir.path());
    cfg.max_cache_bytes = 1000;
    let store = ImageStore::new(cfg).unwrap();
    let img = add_image(&store, "x", 'a', &[('1', 10)], 10);
    store.lock_state().index.blobs.insert(hx('f'), 7);
    fs::write(store.blob_path(&hx('f')), [0u8; 7]).unwrap();
    // Under the limit: only the orphan blob goes.
    assert_eq!(store.gc().await.unwrap(), 7);
    assert!(img.rootfs.exists());

    store.acquire(&img);
    store.acquire(&img);
    store.release(&img);
    store
        .lock_state()
        .index
        .images
        .get_mut(&hx('a'))
        .unwrap()
        .rootfs_bytes = 5000;
    assert_eq!(store.gc().await.unwrap(), 0);
    store.release(&img);
    assert_eq!(store.gc().await.unwrap(), 5000 + 1 + 10);
    assert_eq!(store.cached_bytes(), 0);
    assert!(!img.rootfs.exists());
}

#[tokio::test]
async fn pins_of_pulls_in_progress_protect_blobs_and_rootfs() {
    let dir = TestDir::new("gc-pins");
    let mut cfg = ImageStoreConfig::for_test(dir.path());
    cfg.max_cache_bytes = 0;
    let store = ImageStore::new(cfg).unwrap();
    let img = add_image(&store, "x", 'a', &[('1', 10)], 10);
    {
        let mut pins = Pins::new(&store);
        pins.pin(&hx('a'));
        assert_eq!(store.gc().await.unwrap(), 0);
        assert!(img.rootfs.exists());
    }
    assert_eq!(store.gc().await.unwrap(), 21);
}
