//! Limits on what a registry can make the node download, hold in memory and
//! write to disk ([`ImageLimits`]), and the image store's quota, charged by
//! [`Reservation`]s before bytes land on disk.
//!
//! A registry is not trusted: its descriptors' sizes are checked against the
//! caps before a download starts, every download is cut off at the size its
//! descriptor declares, and unpacking stops at the uncompressed caps.

use std::sync::{Arc, Mutex};

use super::{lock, State};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Caps on one image pull, and the quota of the whole store. Every field is
/// finite; a value of 0 refuses everything of that kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest manifest or image index, in bytes; read while streaming and
    /// refused past this size.
    pub max_manifest_bytes: u64,
    /// Largest image config blob, in bytes.
    pub max_config_bytes: u64,
    /// Largest layer blob as downloaded (compressed), in bytes.
    pub max_layer_bytes: u64,
    /// Largest layer once decompressed (the tar stream, or the files a sparse
    /// entry would fill), in bytes.
    pub max_layer_unpacked_bytes: u64,
    /// Most tar entries in one layer.
    pub max_layer_entries: u64,
    /// Most layers in one image.
    pub max_layers: u64,
    /// Largest image: its blobs as declared plus its layers decompressed, in bytes.
    pub max_image_bytes: u64,
    /// Quota of the image store: blobs, unpacked root filesystems and pulls
    /// in progress together, in bytes. A pull that would go above it is refused.
    pub store_quota_bytes: u64,
}

impl Default for ImageLimits {
    /// Manifest and config 4 MiB, layers 4 GiB compressed and 8 GiB
    /// unpacked, a million entries per layer, 128 layers, 16 GiB per image
    /// and a 32 GiB store.
    fn default() -> Self {
        Self {
            max_manifest_bytes: 4 * MIB,
            max_config_bytes: 4 * MIB,
            max_layer_bytes: 4 * GIB,
            max_layer_unpacked_bytes: 8 * GIB,
            max_layer_entries: 1_000_000,
            max_layers: 128,
            max_image_bytes: 16 * GIB,
            store_quota_bytes: 32 * GIB,
        }
    }
}

/// Names of the limits, as errors and the daemon's configuration spell them.
pub mod names {
    /// [`super::ImageLimits::max_manifest_bytes`].
    pub const MANIFEST: &str = "image_limits.max_manifest_size";
    /// [`super::ImageLimits::max_config_bytes`].
    pub const CONFIG: &str = "image_limits.max_config_size";
    /// [`super::ImageLimits::max_layer_bytes`].
    pub const LAYER: &str = "image_limits.max_layer_size";
    /// [`super::ImageLimits::max_layer_unpacked_bytes`].
    pub const LAYER_UNPACKED: &str = "image_limits.max_layer_unpacked_size";
    /// [`super::ImageLimits::max_layer_entries`].
    pub const LAYER_ENTRIES: &str = "image_limits.max_layer_entries";
    /// [`super::ImageLimits::max_layers`].
    pub const LAYERS: &str = "image_limits.max_layers";
    /// [`super::ImageLimits::max_image_bytes`].
    pub const IMAGE: &str = "image_limits.max_image_size";
    /// [`super::ImageLimits::store_quota_bytes`].
    pub const STORE_QUOTA: &str = "image_store_quota";
}

/// One limit that something went above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitHit {
    /// The limit's name (see [`names`]).
    pub limit: &'static str,
    /// Its value.
    pub max: u64,
    /// What it counts: `bytes`, `entries` or `layers`.
    pub unit: &'static str,
    /// What went above it, e.g. `layer sha256:… declares 9000000000 bytes`.
    pub what: String,
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is above the limit {} of {} {}",
            self.what, self.limit, self.max, self.unit
        )
    }
}

/// A refusal by the store quota: `used` bytes are held (cache and pulls in
/// progress) and `needed` more would go above `quota`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaHit {
    /// [`ImageLimits::store_quota_bytes`].
    pub quota: u64,
    /// Bytes of the store in use or reserved.
    pub used: u64,
    /// Bytes this pull asked for.
    pub needed: u64,
}

impl std::fmt::Display for QuotaHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the image store would hold {} bytes ({} in use or reserved, {} more for this pull), above the quota {} of {} bytes",
            self.used.saturating_add(self.needed),
            self.used,
            self.needed,
            names::STORE_QUOTA,
            self.quota
        )
    }
}

/// Bytes of the store quota held by one pull until dropped: charged before
/// they are written, so that concurrent pulls cannot together go above it.
pub(super) struct Reservation {
    state: Arc<Mutex<State>>,
    quota: u64,
    held: u64,
}

impl Reservation {
    pub(super) fn new(state: Arc<Mutex<State>>, quota: u64) -> Self {
        Self {
            state,
            quota,
            held: 0,
        }
    }

    /// Reserves `n` more bytes, or refuses if the store would go above its quota.
    pub(super) fn reserve(&mut self, n: u64) -> Result<(), QuotaHit> {
        let mut st = lock(&self.state);
        let used = st.index.cached_bytes().saturating_add(st.reserved);
        if used.saturating_add(n) > self.quota {
            return Err(QuotaHit {
                quota: self.quota,
                used,
                needed: n,
            });
        }
        st.reserved += n;
        self.held += n;
        Ok(())
    }

    /// Runs `f` on the store's state and gives back `n` reserved bytes, under
    /// one lock: what `f` records (a blob, an image) now counts as cached instead.
    pub(super) fn settle(&mut self, n: u64, f: impl FnOnce(&mut State)) {
        let mut st = lock(&self.state);
        f(&mut st);
        let n = n.min(self.held);
        st.reserved = st.reserved.saturating_sub(n);
        self.held -= n;
    }

    /// Bytes held.
    pub(super) fn held(&self) -> u64 {
        self.held
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        st.reserved = st.reserved.saturating_sub(self.held);
    }
}
