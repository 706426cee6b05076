//! Resolving a reference at the registry before anything is downloaded: a
//! session with the registry's credentials, the manifest through its image
//! index for this platform (each read capped while streaming), and the
//! manifest's declared sizes checked against the limits.

use oci_client::client::current_platform_resolver;
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::Reference;
use sha2::{Digest as _, Sha256};

use super::limits::{names, LimitHit};
use super::registry::{FetchError, Session};
use super::{ImageError, ImageStore, RegistryCredentials};

/// A reference resolved at the registry.
pub(super) struct Resolved {
    pub(super) manifest: OciImageManifest,
    /// Digest of the platform's image manifest.
    pub(super) manifest_digest: String,
    /// Digest of the image index the reference named, if it named one.
    pub(super) list_digest: Option<String>,
}

impl Resolved {
    /// What the reference resolved to: the index, or else the manifest.
    pub(super) fn digest(&self) -> &str {
        self.list_digest.as_deref().unwrap_or(&self.manifest_digest)
    }
}

/// Which cap applies to a blob.
#[derive(Clone, Copy)]
pub(super) enum BlobKind {
    Config,
    Layer,
}

impl ImageStore {
    pub(super) fn blob_cap(&self, kind: BlobKind) -> (&'static str, u64, &'static str) {
        match kind {
            BlobKind::Config => (names::CONFIG, self.cfg.limits.max_config_bytes, "config"),
            BlobKind::Layer => (names::LAYER, self.cfg.limits.max_layer_bytes, "layer"),
        }
    }

    pub(super) async fn session(
        &self,
        parsed: &Reference,
        key: &str,
    ) -> Result<Session, ImageError> {
        self.registry(key)?
            .session(parsed, self.credentials_for(parsed))
            .await
            .map_err(|e| fetch_error(key, "authenticating", e))
    }

    /// Fetches the reference's manifest (through its image index, for this
    /// platform), each read capped at `max_manifest_bytes` while streaming.
    pub(super) async fn resolve(
        &self,
        session: &Session,
        parsed: &Reference,
        key: &str,
    ) -> Result<Resolved, ImageError> {
        let top = parsed.digest().or_else(|| parsed.tag()).unwrap_or("latest");
        let (top_manifest, top_digest) = self
            .fetch_manifest(session, key, top, parsed.digest())
            .await?;
        match top_manifest {
            OciManifest::Image(manifest) => Ok(Resolved {
                manifest,
                manifest_digest: top_digest,
                list_digest: None,
            }),
            OciManifest::ImageIndex(index) => {
                let digest = current_platform_resolver(&index.manifests).ok_or_else(|| {
                    pull_failure(
                        key,
                        "the image index has no manifest for this platform".into(),
                    )
                })?;
                match self
                    .fetch_manifest(session, key, &digest, Some(&digest))
                    .await?
                {
                    (OciManifest::Image(manifest), manifest_digest) => Ok(Resolved {
                        manifest,
                        manifest_digest,
                        list_digest: Some(top_digest),
                    }),
                    (OciManifest::ImageIndex(_), _) => Err(pull_failure(
                        key,
                        format!("the image index points at another index ({digest})"),
                    )),
                }
            }
        }
    }

    /// One manifest, refused past `max_manifest_bytes`, checked against the
    /// digest asked for and the one the registry announced.
    pub(super) async fn fetch_manifest(
        &self,
        session: &Session,
        key: &str,
        reference: &str,
        expected: Option<&str>,
    ) -> Result<(OciManifest, String), ImageError> {
        let max = self.cfg.limits.max_manifest_bytes;
        let (body, announced) = self
            .registry(key)?
            .manifest(session, reference, max)
            .await
            .map_err(|e| match e {
                FetchError::TooLarge { seen } => ImageError::LimitExceeded {
                    image: key.to_owned(),
                    hit: LimitHit {
                        limit: names::MANIFEST,
                        max,
                        unit: "bytes",
                        what: format!("manifest {reference} (at least {seen} bytes)"),
                    },
                },
                other => fetch_error(key, &format!("fetching manifest {reference}"), other),
            })?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        for claimed in expected.into_iter().chain(announced.as_deref()) {
            // Another algorithm than sha256 in a header cannot be checked here.
            if claimed.starts_with("sha256:") && claimed != actual {
                return Err(ImageError::DigestMismatch {
                    image: key.to_owned(),
                    expected: claimed.to_owned(),
                    actual,
                });
            }
        }
        if let Some(claimed) = expected.filter(|c| !c.starts_with("sha256:")) {
            return Err(pull_failure(
                key,
                format!("unsupported digest `{claimed}`: only sha256 is supported"),
            ));
        }
        let parsed: OciManifest = serde_json::from_slice(&body)
            .map_err(|e| pull_failure(key, format!("parsing manifest {reference}: {e}")))?;
        let version = match &parsed {
            OciManifest::Image(m) => m.schema_version,
            OciManifest::ImageIndex(i) => i.schema_version,
        };
        if version != 2 {
            return Err(pull_failure(
                key,
                format!("manifest {reference} has schema version {version}, not 2"),
            ));
        }
        Ok((parsed, actual))
    }

    /// Refuses a manifest whose declared sizes are above the limits, before
    /// anything is downloaded. Returns the bytes its blobs declare.
    pub(super) fn check_manifest(
        &self,
        key: &str,
        manifest: &OciImageManifest,
    ) -> Result<u64, ImageError> {
        let limits = &self.cfg.limits;
        let refuse = |limit, max, unit, what: String| ImageError::LimitExceeded {
            image: key.to_owned(),
            hit: LimitHit {
                limit,
                max,
                unit,
                what,
            },
        };
        let layers = manifest.layers.len() as u64;
        if layers > limits.max_layers {
            return Err(refuse(
                names::LAYERS,
                limits.max_layers,
                "layers",
                format!("the manifest's {layers} layers"),
            ));
        }
        let mut total = 0u64;
        for (desc, kind) in std::iter::once((&manifest.config, BlobKind::Config))
            .chain(manifest.layers.iter().map(|d| (d, BlobKind::Layer)))
        {
            let size = declared_size(key, desc)?;
            let (limit, max, what) = self.blob_cap(kind);
            if size > max {
                return Err(refuse(
                    limit,
                    max,
                    "bytes",
                    format!("{what} {} declaring {size} bytes", desc.digest),
                ));
            }
            total = total.saturating_add(size);
        }
        if total > limits.max_image_bytes {
            return Err(refuse(
                names::IMAGE,
                limits.max_image_bytes,
                "bytes",
                format!("the image's blobs declaring {total} bytes"),
            ));
        }
        Ok(total)
    }

    pub(super) fn credentials_for(&self, parsed: &Reference) -> Option<&RegistryCredentials> {
        self.cfg
            .credentials
            .get(parsed.registry())
            .or_else(|| self.cfg.credentials.get(parsed.resolve_registry()))
    }
}

pub(super) fn fetch_error(image: &str, doing: &str, err: FetchError) -> ImageError {
    match err {
        FetchError::Failed(reason) => pull_failure(image, format!("{doing}: {reason}")),
        FetchError::TooLarge { seen } => {
            pull_failure(image, format!("{doing}: response too large ({seen} bytes)"))
        }
    }
}

/// A descriptor's size, which must not be negative.
pub(super) fn declared_size(image: &str, desc: &OciDescriptor) -> Result<u64, ImageError> {
    u64::try_from(desc.size).map_err(|_| {
        pull_failure(
            image,
            format!(
                "descriptor of {} declares a negative size {}",
                desc.digest, desc.size
            ),
        )
    })
}

pub(super) fn pull_failure(image: &str, reason: String) -> ImageError {
    ImageError::Pull {
        image: image.to_owned(),
        reason,
    }
}
