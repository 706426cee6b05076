//! Helpers shared by the image store's unit tests: scratch directories and
//! fake images registered without a registry.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest as _, Sha256};

use super::index::{ImageRecord, RefRecord};
use super::{Image, ImageConfig, ImageStore};

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory removed on drop.
pub(super) struct TestDir(PathBuf);

impl TestDir {
    pub(super) fn new(name: &str) -> Self {
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "univrs-image-test-{}-{n}-{name}",
            std::process::id()
        ));
        if path.exists() {
            fs::remove_dir_all(&path).unwrap();
        }
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("leaving {}: {e}", self.0.display());
        }
    }
}

pub(super) fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(super) fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

pub(super) fn hx(c: char) -> String {
    c.to_string().repeat(64)
}

/// Registers a fake image: a rootfs of `rootfs_bytes`, a 1-byte config blob and `layers`.
pub(super) fn add_image(
    store: &ImageStore,
    reference: &str,
    config: char,
    layers: &[(char, u64)],
    rootfs_bytes: u64,
) -> Image {
    let config_hex = hx(config);
    let rootfs = store.rootfs_dir(&config_hex);
    fs::create_dir_all(&rootfs).unwrap();
    fs::write(rootfs.join("data"), vec![0u8; rootfs_bytes as usize]).unwrap();
    let mut st = store.lock_state();
    let mut blob = |hex: &str, size: u64| {
        fs::write(store.blob_path(hex), vec![0u8; size as usize]).unwrap();
        st.index.blobs.insert(hex.to_owned(), size);
    };
    blob(&config_hex, 1);
    for (c, size) in layers {
        blob(&hx(*c), *size);
    }
    st.index.images.insert(
        config_hex.clone(),
        ImageRecord {
            manifest_digest: format!("sha256:{}", hx('9')),
            config_digest: format!("sha256:{config_hex}"),
            config: ImageConfig {
                cmd: s(&["sh"]),
                ..ImageConfig::default()
            },
            layers: layers.iter().map(|(c, _)| hx(*c)).collect(),
            rootfs_bytes,
            last_used: 0,
        },
    );
    st.index.refs.insert(
        reference.to_owned(),
        RefRecord {
            resolved_digest: format!("sha256:{}", hx('9')),
            config_hex: config_hex.clone(),
        },
    );
    st.touch(&config_hex);
    store.image_view(&st, reference, &config_hex).unwrap()
}
