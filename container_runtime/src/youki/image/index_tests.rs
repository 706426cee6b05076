//! Unit tests of the on-disk index.

use super::*;
use crate::youki::image::test_support::{add_image, hx, TestDir};
use crate::youki::image::ImageStoreConfig;

#[test]
fn opening_a_store_removes_leftovers() {
    let dir = TestDir::new("leftovers");
    let cfg = ImageStoreConfig::for_test(dir.path());
    let store = ImageStore::new(cfg.clone()).unwrap();
    let kept = add_image(&store, "x", 'a', &[('1', 10)], 10);
    let bytes = serde_json::to_vec(&store.lock_state().index).unwrap();
    fs::write(dir.path().join(INDEX_FILE), bytes).unwrap();
    drop(store);
    fs::create_dir_all(dir.path().join("rootfs").join(hx('e'))).unwrap();
    fs::write(dir.path().join("blobs/sha256").join(hx('e')), b"junk").unwrap();
    fs::write(dir.path().join("tmp/blob-1-1"), b"partial").unwrap();

    let store = ImageStore::new(cfg.clone()).unwrap();
    assert!(kept.rootfs.exists());
    assert!(!dir.path().join("rootfs").join(hx('e')).exists());
    assert!(!dir.path().join("blobs/sha256").join(hx('e')).exists());
    assert!(!dir.path().join("tmp/blob-1-1").exists());
    assert_eq!(store.cached_bytes(), 10 + 1 + 10);
    drop(store);

    // A rootfs deleted behind the store's back is forgotten, not served.
    fs::remove_dir_all(&kept.rootfs).unwrap();
    let store = ImageStore::new(cfg).unwrap();
    assert!(store.lookup("x", None).is_none());
    assert_eq!(store.cached_bytes(), 11);
}

#[test]
fn a_corrupt_index_fails_loudly() {
    let dir = TestDir::new("corrupt");
    fs::write(dir.path().join(INDEX_FILE), b"{not json").unwrap();
    let err = ImageStore::new(ImageStoreConfig::for_test(dir.path())).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}
