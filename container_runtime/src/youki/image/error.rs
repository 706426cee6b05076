//! [`ImageError`]: why an image could not be provided.

use std::io;

use super::limits::{LimitHit, QuotaHit};

/// Failures of [`ImageStore::ensure`](super::ImageStore::ensure).
#[derive(Debug)]
pub enum ImageError {
    /// The reference does not parse (the message names it).
    Reference(String),
    /// Talking to the registry failed.
    Pull {
        /// The image being pulled.
        image: String,
        /// What was being done and what went wrong.
        reason: String,
    },
    /// A blob or an uncompressed layer does not match its digest; nothing was kept.
    DigestMismatch {
        /// The image being pulled.
        image: String,
        /// Digest from the manifest or config.
        expected: String,
        /// Digest of the bytes received.
        actual: String,
    },
    /// The image is not cached and the pull policy is `Never`.
    NotPresent(String),
    /// A layer could not be unpacked (bad archive, path escaping the rootfs...).
    Unpack {
        /// The image being unpacked.
        image: String,
        /// What went wrong, with the entry concerned.
        reason: String,
    },
    /// The registry offered more than one of the [`ImageLimits`](super::ImageLimits)
    /// allows; nothing of the pull was kept.
    LimitExceeded {
        /// The image being pulled.
        image: String,
        /// The limit and what went above it.
        hit: LimitHit,
    },
    /// The pull would take the image store above its quota; nothing of the
    /// pull was kept.
    QuotaExceeded {
        /// The image being pulled.
        image: String,
        /// The quota and the usage it refused.
        hit: QuotaHit,
    },
    /// Local storage failed.
    Io(io::Error),
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reference(msg) => write!(f, "invalid image reference {msg}"),
            Self::Pull { image, reason } => write!(f, "pulling image {image}: {reason}"),
            Self::DigestMismatch {
                image,
                expected,
                actual,
            } => write!(
                f,
                "digest mismatch in image {image}: expected {expected}, got {actual}"
            ),
            Self::NotPresent(image) => write!(
                f,
                "image {image} is not present locally and the pull policy is Never"
            ),
            Self::Unpack { image, reason } => write!(f, "unpacking image {image}: {reason}"),
            Self::LimitExceeded { image, hit } => write!(f, "pulling image {image}: {hit}"),
            Self::QuotaExceeded { image, hit } => write!(f, "pulling image {image}: {hit}"),
            Self::Io(err) => write!(f, "image store i/o: {err}"),
        }
    }
}

impl std::error::Error for ImageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for ImageError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

impl ImageError {
    /// A copy for the other waiters of a shared pull (`io::Error` is not `Clone`).
    pub(super) fn duplicate(&self) -> Self {
        match self {
            Self::Reference(m) => Self::Reference(m.clone()),
            Self::Pull { image, reason } => Self::Pull {
                image: image.clone(),
                reason: reason.clone(),
            },
            Self::DigestMismatch {
                image,
                expected,
                actual,
            } => Self::DigestMismatch {
                image: image.clone(),
                expected: expected.clone(),
                actual: actual.clone(),
            },
            Self::NotPresent(i) => Self::NotPresent(i.clone()),
            Self::Unpack { image, reason } => Self::Unpack {
                image: image.clone(),
                reason: reason.clone(),
            },
            Self::LimitExceeded { image, hit } => Self::LimitExceeded {
                image: image.clone(),
                hit: hit.clone(),
            },
            Self::QuotaExceeded { image, hit } => Self::QuotaExceeded {
                image: image.clone(),
                hit: *hit,
            },
            Self::Io(err) => Self::Io(io::Error::new(err.kind(), err.to_string())),
        }
    }
}
