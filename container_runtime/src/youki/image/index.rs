//! The on-disk index (`index.json`): what is cached and under which
//! references, loaded at start, reconciled with the disk, and rewritten
//! atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use orchestrator_shared_types::private_fs;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::blob::digest_hex_ok;
use super::{remove_any, remove_quietly, with_context, Image, ImageConfig, ImageStore, State};

pub(super) const INDEX_FILE: &str = "index.json";
const INDEX_VERSION: u32 = 1;

/// The persisted index: what is cached and under which references.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Index {
    version: u32,
    /// Normalised reference → what it resolved to.
    #[serde(default)]
    pub(super) refs: BTreeMap<String, RefRecord>,
    /// Config digest hex → unpacked image.
    #[serde(default)]
    pub(super) images: BTreeMap<String, ImageRecord>,
    /// Blob digest hex → size in bytes.
    #[serde(default)]
    pub(super) blobs: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct RefRecord {
    /// Digest the reference resolved to at the registry (index or manifest).
    pub(super) resolved_digest: String,
    pub(super) config_hex: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct ImageRecord {
    pub(super) manifest_digest: String,
    pub(super) config_digest: String,
    pub(super) config: ImageConfig,
    /// Layer digests hex, bottom first.
    pub(super) layers: Vec<String>,
    pub(super) rootfs_bytes: u64,
    /// Logical clock of the last use; smaller is older.
    pub(super) last_used: u64,
}

impl ImageRecord {
    /// Blobs this image keeps alive: its config and its layers.
    pub(super) fn blobs<'a>(&'a self, config_hex: &'a str) -> BTreeSet<&'a str> {
        std::iter::once(config_hex)
            .chain(self.layers.iter().map(String::as_str))
            .collect()
    }
}

impl Index {
    pub(super) fn cached_bytes(&self) -> u64 {
        self.blobs.values().sum::<u64>() + self.images.values().map(|i| i.rootfs_bytes).sum::<u64>()
    }

    pub(super) fn remove_image(&mut self, config_hex: &str) {
        self.images.remove(config_hex);
        self.refs.retain(|_, r| r.config_hex != config_hex);
    }
}

impl ImageStore {
    /// Makes index and disk agree: drops records whose files are gone and
    /// deletes files no record mentions. Returns whether the index changed.
    pub(super) fn reconcile_disk(&self, index: &mut Index) -> io::Result<bool> {
        let before = (index.refs.len(), index.images.len(), index.blobs.len());
        index
            .blobs
            .retain(|hex, _| digest_hex_ok(hex) && self.blob_path(hex).is_file());
        let missing: Vec<String> = index
            .images
            .keys()
            .filter(|hex| !digest_hex_ok(hex) || !self.rootfs_dir(hex).is_dir())
            .cloned()
            .collect();
        for hex in missing {
            warn!(config = %hex, "rootfs missing on disk, forgetting image");
            index.remove_image(&hex);
        }
        let images = &index.images;
        index.refs.retain(|_, r| images.contains_key(&r.config_hex));
        for entry in fs::read_dir(self.cfg.root.join("rootfs"))? {
            let entry = entry?;
            let name = entry.file_name();
            if !index.images.contains_key(&*name.to_string_lossy()) {
                warn!(path = %entry.path().display(), "removing unindexed rootfs");
                remove_any(&entry.path())?;
            }
        }
        for entry in fs::read_dir(self.blob_dir())? {
            let entry = entry?;
            if !index
                .blobs
                .contains_key(&*entry.file_name().to_string_lossy())
            {
                debug!(path = %entry.path().display(), "removing unindexed blob");
                remove_any(&entry.path())?;
            }
        }
        Ok(before != (index.refs.len(), index.images.len(), index.blobs.len()))
    }

    pub(super) fn image_view(
        &self,
        st: &State,
        reference: &str,
        config_hex: &str,
    ) -> Option<Image> {
        let rec = st.index.images.get(config_hex)?;
        let blob_bytes: u64 = rec
            .blobs(config_hex)
            .into_iter()
            .filter_map(|b| st.index.blobs.get(b))
            .sum();
        Some(Image {
            reference: reference.to_owned(),
            manifest_digest: rec.manifest_digest.clone(),
            config_digest: rec.config_digest.clone(),
            rootfs: self.rootfs_dir(config_hex),
            config: rec.config.clone(),
            size_bytes: rec.rootfs_bytes + blob_bytes,
        })
    }

    /// Writes the index; logged rather than returned where only `last_used` changed.
    pub(super) async fn persist_logged(&self) {
        if let Err(err) = self.persist().await {
            warn!(error = %err, "saving the image index failed");
        }
    }

    pub(super) async fn persist(&self) -> io::Result<()> {
        // Held across the write on purpose: it orders snapshots, guards no state.
        let _serial = self.persist_lock.lock().await;
        let bytes =
            serde_json::to_vec_pretty(&self.lock_state().index).map_err(io::Error::other)?;
        let path = self.cfg.root.join(INDEX_FILE);
        let tmp = self.tmp_path("index");
        tokio::task::spawn_blocking(move || write_atomically(&path, &tmp, &bytes))
            .await
            .map_err(io::Error::other)?
    }
}

pub(super) fn load_index(path: &Path) -> io::Result<Index> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Index {
                version: INDEX_VERSION,
                ..Index::default()
            })
        }
        Err(e) => return Err(with_context(e, "reading image index", path)),
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("parsing image index {}: {e}", path.display()),
        )
    })?;
    if index.version != INDEX_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "image index {} has version {}, expected {INDEX_VERSION}",
                path.display(),
                index.version
            ),
        ));
    }
    Ok(index)
}

pub(super) fn write_atomically(path: &Path, tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let result = (|| {
        let mut file = private_fs::create(tmp)?;
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        fs::rename(tmp, path)
    })();
    if result.is_err() {
        remove_quietly(tmp);
    }
    result.map_err(|e| with_context(e, "writing", path))
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
