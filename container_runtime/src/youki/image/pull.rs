//! Pulling: [`ImageStore::ensure`] resolves a reference through the cache or
//! the registry (one shared pull per reference), checks the manifest against
//! the [`ImageLimits`](super::ImageLimits) and the store quota before any
//! download, downloads the config and layer blobs, each cut off at the size
//! its descriptor declares, and has them unpacked into a rootfs. A refused or
//! failed pull leaves nothing behind: its temporary files are removed and
//! the blobs it downloaded that no image uses are collected.

use std::fs;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use oci_client::manifest::{self, OciDescriptor};
use oci_client::Reference;
use serde::Deserialize;
use tracing::{debug, info, instrument, warn};

use super::blob::{digest_hex, store_verified, BlobError};
use super::index::{ImageRecord, RefRecord};
use super::limits::Reservation;
use super::registry::Session;
use super::resolve::{declared_size, fetch_error, pull_failure, BlobKind, Resolved};
use super::unpack::{unpack_rootfs, UnpackBudget};
use super::{lock, with_context, Image, ImageConfig, ImageError, ImageStore, PullPolicy, State};

impl ImageStore {
    /// Returns the unpacked image for `reference`, pulling it as the pull
    /// policy says. Concurrent calls for one reference share a single pull.
    /// Call [`ImageStore::acquire`] before the next `.await` to keep the image
    /// from being evicted.
    #[instrument(skip(self))]
    pub async fn ensure(&self, reference: &str) -> Result<Image, ImageError> {
        let parsed: Reference = reference
            .parse()
            .map_err(|e| ImageError::Reference(format!("`{reference}`: {e}")))?;
        let key = parsed.whole();
        let flight = lock(&self.flights).entry(key.clone()).or_default().clone();
        let result = flight
            .get_or_init(|| self.ensure_uncoalesced(&parsed, &key))
            .await;
        let out = match result {
            Ok(image) => Ok(image.clone()),
            Err(err) => Err(err.duplicate()),
        };
        let mut flights = lock(&self.flights);
        if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(&key);
        }
        out
    }

    async fn ensure_uncoalesced(&self, parsed: &Reference, key: &str) -> Result<Image, ImageError> {
        let cached = match self.cfg.pull_policy {
            PullPolicy::Never => Some(
                self.lookup(key, None)
                    .ok_or_else(|| ImageError::NotPresent(key.to_owned()))?,
            ),
            PullPolicy::IfNotPresent => self.lookup(key, None),
            // A digest reference names immutable content: no need to ask.
            PullPolicy::Always if parsed.digest().is_some() => self.lookup(key, None),
            PullPolicy::Always => {
                let session = self.session(parsed, key).await?;
                let resolved = self.resolve(&session, parsed, key).await?;
                match self.lookup(key, Some(resolved.digest())) {
                    Some(image) => Some(image),
                    None => return self.pull(key, &session, resolved).await,
                }
            }
        };
        match cached {
            Some(image) => {
                debug!(image = %key, config = %image.config_digest, "using cached image");
                self.persist_logged().await;
                Ok(image)
            }
            None => {
                let session = self.session(parsed, key).await?;
                let resolved = self.resolve(&session, parsed, key).await?;
                self.pull(key, &session, resolved).await
            }
        }
    }

    /// The cached image of `key` (if it resolved to `resolved`), marked used.
    pub(super) fn lookup(&self, key: &str, resolved: Option<&str>) -> Option<Image> {
        let mut st = self.lock_state();
        let rec = st.index.refs.get(key)?.clone();
        if resolved.is_some_and(|d| d != rec.resolved_digest) {
            return None;
        }
        if !self.rootfs_dir(&rec.config_hex).is_dir() {
            warn!(image = %key, config = %rec.config_hex, "rootfs vanished, pulling again");
            st.index.remove_image(&rec.config_hex);
            return None;
        }
        st.touch(&rec.config_hex);
        self.image_view(&st, key, &rec.config_hex)
    }

    /// Bytes of `descs` not yet in the cache, as declared.
    fn uncached_bytes<'a>(&self, descs: impl Iterator<Item = &'a OciDescriptor>) -> u64 {
        let st = self.lock_state();
        descs
            .filter(|d| {
                digest_hex(&d.digest).map_or(true, |hex| {
                    st.index.blobs.get(hex).copied() != u64::try_from(d.size).ok()
                })
            })
            .map(|d| u64::try_from(d.size).unwrap_or(0))
            .sum()
    }

    async fn pull(
        &self,
        key: &str,
        session: &Session,
        resolved: Resolved,
    ) -> Result<Image, ImageError> {
        let result = self.pull_resolved(key, session, resolved).await;
        if let Err(err) = &result {
            // Blobs this pull downloaded and no image uses are orphans now.
            if let Err(gc) = self.gc_keeping(None).await {
                warn!(image = %key, error = %gc, "cleaning up after a failed pull failed");
            }
            info!(image = %key, error = %err, "pull refused or failed; nothing of it was kept");
        }
        result
    }

    async fn pull_resolved(
        &self,
        key: &str,
        session: &Session,
        resolved: Resolved,
    ) -> Result<Image, ImageError> {
        let started = Instant::now();
        let resolved_digest = resolved.digest().to_owned();
        let Resolved {
            manifest,
            manifest_digest,
            ..
        } = resolved;
        let config_hex = digest_hex(&manifest.config.digest)
            .map_err(|reason| pull_failure(key, reason))?
            .to_owned();
        let mut pins = Pins::new(self);
        pins.pin(&config_hex);
        if let Some(image) = self.adopt(key, &resolved_digest, &config_hex) {
            info!(image = %key, config = %image.config_digest, "reference now points at a cached image");
            self.persist().await?;
            return Ok(image);
        }
        let declared = self.check_manifest(key, &manifest)?;
        for desc in &manifest.layers {
            check_layer_media_type(&desc.media_type).map_err(|reason| pull_failure(key, reason))?;
        }
        let mut reservation =
            Reservation::new(self.state.clone(), self.cfg.limits.store_quota_bytes);
        let needed = self.uncached_bytes(std::iter::once(&manifest.config).chain(&manifest.layers));
        reservation
            .reserve(needed)
            .map_err(|hit| ImageError::QuotaExceeded {
                image: key.to_owned(),
                hit,
            })?;

        let mut downloaded = self
            .fetch_blob(
                session,
                key,
                &manifest.config,
                BlobKind::Config,
                &mut pins,
                &mut reservation,
            )
            .await?;
        let config_blob = tokio::fs::read(self.blob_path(&config_hex)).await?;
        let (config, diff_ids) =
            parse_image_config(&config_blob).map_err(|reason| pull_failure(key, reason))?;
        if !diff_ids.is_empty() && diff_ids.len() != manifest.layers.len() {
            return Err(pull_failure(
                key,
                format!(
                    "config lists {} diff_ids for {} layers",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            ));
        }
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for desc in &manifest.layers {
            downloaded += self
                .fetch_blob(
                    session,
                    key,
                    desc,
                    BlobKind::Layer,
                    &mut pins,
                    &mut reservation,
                )
                .await?;
            layers.push(
                digest_hex(&desc.digest)
                    .map_err(|r| pull_failure(key, r))?
                    .to_owned(),
            );
        }

        let layer_paths = layers.iter().map(|h| self.blob_path(h)).collect::<Vec<_>>();
        let staging = self.tmp_path("rootfs");
        let target = self.rootfs_dir(&config_hex);
        let budget = UnpackBudget {
            max_layer_bytes: self.cfg.limits.max_layer_unpacked_bytes,
            max_layer_entries: self.cfg.limits.max_layer_entries,
            max_image_bytes: self.cfg.limits.max_image_bytes.saturating_sub(declared),
            reservation,
            unpacked: 0,
        };
        let (unpacked, mut budget) = tokio::task::spawn_blocking(move || {
            let mut budget = budget;
            let result = unpack_rootfs(&layer_paths, &diff_ids, &staging, &target, &mut budget);
            (result, budget)
        })
        .await
        .map_err(|e| ImageError::Unpack {
            image: key.to_owned(),
            reason: format!("unpack task failed: {e}"),
        })?;
        let rootfs_bytes = unpacked.map_err(|e| e.into_image_error(key))?;

        let mut image = None;
        let held = budget.reservation.held();
        budget.reservation.settle(held, |st| {
            st.index.images.insert(
                config_hex.clone(),
                ImageRecord {
                    manifest_digest: manifest_digest.clone(),
                    config_digest: manifest.config.digest.clone(),
                    config,
                    layers,
                    rootfs_bytes,
                    last_used: 0,
                },
            );
            st.index.refs.insert(
                key.to_owned(),
                RefRecord {
                    resolved_digest,
                    config_hex: config_hex.clone(),
                },
            );
            st.touch(&config_hex);
            image = self.image_view(st, key, &config_hex);
        });
        let image = image.ok_or_else(|| {
            io::Error::other("image vanished from the index right after its pull")
        })?;
        drop(pins);
        self.persist().await?;
        info!(
            image = %key,
            manifest = %manifest_digest,
            downloaded_bytes = downloaded,
            size_bytes = image.size_bytes,
            duration_ms = started.elapsed().as_millis() as u64,
            "pulled image"
        );
        if let Err(err) = self.gc_keeping(Some(&config_hex)).await {
            warn!(error = %err, "image gc after pull failed");
        }
        Ok(image)
    }

    /// Points `key` at an already unpacked image with config `config_hex`.
    fn adopt(&self, key: &str, resolved: &str, config_hex: &str) -> Option<Image> {
        let mut st = self.lock_state();
        if !st.index.images.contains_key(config_hex) || !self.rootfs_dir(config_hex).is_dir() {
            return None;
        }
        st.index.refs.insert(
            key.to_owned(),
            RefRecord {
                resolved_digest: resolved.to_owned(),
                config_hex: config_hex.to_owned(),
            },
        );
        st.touch(config_hex);
        self.image_view(&st, key, config_hex)
    }

    /// Downloads one blob into the cache unless present; returns bytes
    /// downloaded. The blob must be exactly as long as its descriptor says
    /// (checked by [`ImageStore::check_manifest`] against the caps first).
    async fn fetch_blob(
        &self,
        session: &Session,
        key: &str,
        desc: &OciDescriptor,
        kind: BlobKind,
        pins: &mut Pins<'_>,
        reservation: &mut Reservation,
    ) -> Result<u64, ImageError> {
        let hex = digest_hex(&desc.digest).map_err(|r| pull_failure(key, r))?;
        let declared = declared_size(key, desc)?;
        let path = self.blob_path(hex);
        {
            // Pin and check under one lock, so GC cannot evict it in between.
            let mut st = self.lock_state();
            pins.pin_locked(&mut st, hex);
            let known = st.index.blobs.get(hex).copied();
            let on_disk = fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            if known == Some(declared) && on_disk == Some(declared) {
                debug!(digest = %desc.digest, "blob already cached");
                return Ok(0);
            }
        }
        let (announced, stream) = self
            .registry(key)?
            .blob(session, &desc.digest)
            .await
            .map_err(|e| fetch_error(key, &format!("requesting blob {}", desc.digest), e))?;
        let (limit, max, what) = self.blob_cap(kind);
        if let Some(len) = announced.filter(|l| *l != declared) {
            return Err(pull_failure(
                key,
                format!(
                    "the registry announces {len} bytes for {what} {}, whose descriptor declares {declared}",
                    desc.digest
                ),
            ));
        }
        let bytes = store_verified(stream, hex, Some(declared), &self.tmp_path("blob"), &path)
            .await
            .map_err(|e| match e {
                BlobError::Mismatch { actual } => ImageError::DigestMismatch {
                    image: key.to_owned(),
                    expected: desc.digest.clone(),
                    actual: format!("sha256:{actual}"),
                },
                BlobError::TooLarge { limit: declared } => pull_failure(
                    key,
                    format!(
                        "{what} {} is larger than the {declared} bytes its descriptor declares (limit {limit}: {max} bytes)",
                        desc.digest
                    ),
                ),
                BlobError::Transfer(err) => {
                    pull_failure(key, format!("downloading {what} {}: {err}", desc.digest))
                }
                BlobError::Write(err) => ImageError::Io(with_context(err, "writing blob", &path)),
            })?;
        reservation.settle(bytes, |st| {
            st.index.blobs.insert(hex.to_owned(), bytes);
        });
        debug!(digest = %desc.digest, bytes, "fetched blob");
        Ok(bytes)
    }
}

/// Blobs and rootfs a pull relies on; GC leaves them alone until dropped.
pub(super) struct Pins<'a> {
    store: &'a ImageStore,
    held: Vec<String>,
}

impl<'a> Pins<'a> {
    pub(super) fn new(store: &'a ImageStore) -> Self {
        Self {
            store,
            held: Vec::new(),
        }
    }

    pub(super) fn pin(&mut self, hex: &str) {
        let mut st = self.store.lock_state();
        self.pin_locked(&mut st, hex);
    }

    fn pin_locked(&mut self, st: &mut State, hex: &str) {
        *st.pins.entry(hex.to_owned()).or_default() += 1;
        self.held.push(hex.to_owned());
    }
}

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        let mut st = self.store.lock_state();
        for hex in self.held.drain(..) {
            if let Some(count) = st.pins.get_mut(&hex) {
                *count -= 1;
                if *count == 0 {
                    st.pins.remove(&hex);
                }
            }
        }
    }
}

fn check_layer_media_type(media_type: &str) -> Result<(), String> {
    const SUPPORTED: [&str; 7] = [
        manifest::IMAGE_LAYER_MEDIA_TYPE,
        manifest::IMAGE_LAYER_GZIP_MEDIA_TYPE,
        manifest::IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE,
        manifest::IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE,
        manifest::IMAGE_LAYER_NONDISTRIBUTABLE_MEDIA_TYPE,
        manifest::IMAGE_LAYER_NONDISTRIBUTABLE_GZIP_MEDIA_TYPE,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ];
    if SUPPORTED.contains(&media_type) {
        Ok(())
    } else {
        Err(format!("unsupported layer media type `{media_type}`"))
    }
}

#[derive(Deserialize)]
struct RawImageConfig {
    #[serde(default)]
    config: Option<RawProcessConfig>,
    #[serde(default)]
    rootfs: Option<RawRootFs>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawProcessConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct RawRootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The process settings and the layers' uncompressed digests (hex) of a config blob.
fn parse_image_config(bytes: &[u8]) -> Result<(ImageConfig, Vec<String>), String> {
    let raw: RawImageConfig =
        serde_json::from_slice(bytes).map_err(|e| format!("parsing the image config: {e}"))?;
    let process = raw.config.map(|c| ImageConfig {
        entrypoint: c.entrypoint.unwrap_or_default(),
        cmd: c.cmd.unwrap_or_default(),
        env: c.env.unwrap_or_default(),
        working_dir: c.working_dir.filter(|w| !w.is_empty()),
        user: c.user.filter(|u| !u.is_empty()),
    });
    let diff_ids = raw
        .rootfs
        .map(|r| r.diff_ids)
        .unwrap_or_default()
        .iter()
        .map(|d| digest_hex(d).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("image config diff_ids: {e}"))?;
    Ok((process.unwrap_or_default(), diff_ids))
}

#[cfg(test)]
#[path = "pull_tests.rs"]
mod tests;
