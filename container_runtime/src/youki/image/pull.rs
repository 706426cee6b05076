//! Pulling: [`ImageStore::ensure`] resolves a reference through the cache or
//! the registry (one shared pull per reference), downloads the manifest's
//! config and layer blobs, and has them unpacked into a rootfs.

use std::fs;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use oci_client::errors::OciDistributionError;
use oci_client::manifest::{self, OciDescriptor};
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;
use serde::Deserialize;
use tracing::{debug, info, instrument, warn};

use super::blob::{digest_hex, store_verified, BlobError};
use super::index::{ImageRecord, RefRecord};
use super::unpack::unpack_rootfs;
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
                let digest = self
                    .client(key)?
                    .fetch_manifest_digest(parsed, &self.auth_for(parsed))
                    .await
                    .map_err(|e| pull_error(key, "resolving the manifest digest", &e))?;
                self.lookup(key, Some(&digest))
            }
        };
        match cached {
            Some(image) => {
                debug!(image = %key, config = %image.config_digest, "using cached image");
                self.persist_logged().await;
                Ok(image)
            }
            None => self.pull(parsed, key).await,
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

    async fn pull(&self, parsed: &Reference, key: &str) -> Result<Image, ImageError> {
        let started = Instant::now();
        let (manifest, manifest_digest, list_digest) = self
            .client(key)?
            .pull_image_manifest_and_list_digest(parsed, &self.auth_for(parsed))
            .await
            .map_err(|e| pull_error(key, "fetching the manifest", &e))?;
        let resolved = list_digest.unwrap_or_else(|| manifest_digest.clone());
        let config_hex = digest_hex(&manifest.config.digest)
            .map_err(|reason| pull_failure(key, reason))?
            .to_owned();
        let mut pins = Pins::new(self);
        pins.pin(&config_hex);
        if let Some(image) = self.adopt(key, &resolved, &config_hex) {
            info!(image = %key, config = %image.config_digest, "reference now points at a cached image");
            self.persist().await?;
            return Ok(image);
        }

        let mut downloaded = self
            .fetch_blob(parsed, key, &manifest.config, &mut pins)
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
            check_layer_media_type(&desc.media_type).map_err(|reason| pull_failure(key, reason))?;
            downloaded += self.fetch_blob(parsed, key, desc, &mut pins).await?;
            layers.push(
                digest_hex(&desc.digest)
                    .map_err(|r| pull_failure(key, r))?
                    .to_owned(),
            );
        }

        let layer_paths = layers.iter().map(|h| self.blob_path(h)).collect::<Vec<_>>();
        let staging = self.tmp_path("rootfs");
        let target = self.rootfs_dir(&config_hex);
        let rootfs_bytes = tokio::task::spawn_blocking(move || {
            unpack_rootfs(&layer_paths, &diff_ids, &staging, &target)
        })
        .await
        .map_err(|e| ImageError::Unpack {
            image: key.to_owned(),
            reason: format!("unpack task failed: {e}"),
        })?
        .map_err(|e| e.into_image_error(key))?;

        let image = {
            let mut st = self.lock_state();
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
                    resolved_digest: resolved,
                    config_hex: config_hex.clone(),
                },
            );
            st.touch(&config_hex);
            self.image_view(&st, key, &config_hex)
        }
        .ok_or_else(|| io::Error::other("image vanished from the index right after its pull"))?;
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

    /// Downloads one blob into the cache unless present; returns bytes downloaded.
    async fn fetch_blob(
        &self,
        parsed: &Reference,
        key: &str,
        desc: &OciDescriptor,
        pins: &mut Pins<'_>,
    ) -> Result<u64, ImageError> {
        let hex = digest_hex(&desc.digest).map_err(|r| pull_failure(key, r))?;
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
            if known.is_some()
                && known == on_disk
                && (desc.size <= 0 || on_disk == Some(desc.size as u64))
            {
                debug!(digest = %desc.digest, "blob already cached");
                return Ok(0);
            }
        }
        let stream = self
            .client(key)?
            .pull_blob_stream(parsed, desc)
            .await
            .map_err(|e| pull_error(key, &format!("requesting blob {}", desc.digest), &e))?;
        let limit = u64::try_from(desc.size).ok().filter(|s| *s > 0);
        let bytes = store_verified(stream, hex, limit, &self.tmp_path("blob"), &path)
            .await
            .map_err(|e| match e {
                BlobError::Mismatch { actual } => ImageError::DigestMismatch {
                    image: key.to_owned(),
                    expected: desc.digest.clone(),
                    actual: format!("sha256:{actual}"),
                },
                BlobError::TooLarge { limit } => pull_failure(
                    key,
                    format!(
                        "blob {} is larger than the {limit} bytes its descriptor declares",
                        desc.digest
                    ),
                ),
                BlobError::Transfer(err) => {
                    pull_failure(key, format!("downloading blob {}: {err}", desc.digest))
                }
                BlobError::Write(err) => ImageError::Io(with_context(err, "writing blob", &path)),
            })?;
        self.lock_state().index.blobs.insert(hex.to_owned(), bytes);
        debug!(digest = %desc.digest, bytes, "fetched blob");
        Ok(bytes)
    }

    fn auth_for(&self, parsed: &Reference) -> RegistryAuth {
        let creds = self
            .cfg
            .credentials
            .get(parsed.registry())
            .or_else(|| self.cfg.credentials.get(parsed.resolve_registry()));
        match creds {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        }
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

fn pull_error(image: &str, doing: &str, err: &OciDistributionError) -> ImageError {
    pull_failure(image, format!("{doing}: {err}"))
}

fn pull_failure(image: &str, reason: String) -> ImageError {
    ImageError::Pull {
        image: image.to_owned(),
        reason,
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
