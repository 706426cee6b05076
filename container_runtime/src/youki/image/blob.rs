//! Blobs: `sha256` digests checked before they name a file, and downloads
//! kept only once their bytes match their digest.

use std::io;
use std::path::Path;

use futures::{Stream, StreamExt};
use orchestrator_shared_types::private_fs;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::remove_quietly;

/// The hex of a `sha256:` digest, checked to be 64 lowercase hex digits (it
/// becomes a file name).
pub(super) fn digest_hex(digest: &str) -> Result<&str, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("unsupported digest `{digest}`: only sha256 is supported"))?;
    if digest_hex_ok(hex) {
        Ok(hex)
    } else {
        Err(format!("malformed digest `{digest}`"))
    }
}

pub(super) fn digest_hex_ok(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why [`store_verified`] kept nothing.
#[derive(Debug)]
pub(super) enum BlobError {
    /// The bytes hash to `actual` (hex), not the expected digest.
    Mismatch { actual: String },
    /// More bytes arrived than the descriptor declares.
    TooLarge { limit: u64 },
    /// The download failed.
    Transfer(io::Error),
    /// The local file could not be written.
    Write(io::Error),
}

/// Streams a blob to `tmp` while hashing it, stopping as soon as more than
/// `limit` bytes arrived, and renames it to `dest` only if its sha256 is
/// `expected_hex`. Returns its size; on failure nothing is kept.
pub(super) async fn store_verified<S, B>(
    mut stream: S,
    expected_hex: &str,
    limit: Option<u64>,
    tmp: &Path,
    dest: &Path,
) -> Result<u64, BlobError>
where
    S: Stream<Item = io::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    let result = async {
        // Private to the daemon's user, like the rest of the image store.
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(private_fs::FILE_MODE)
            .open(tmp)
            .await
            .map_err(BlobError::Write)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(BlobError::Transfer)?;
            let chunk = chunk.as_ref();
            size += chunk.len() as u64;
            if let Some(limit) = limit.filter(|l| size > *l) {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(chunk);
            file.write_all(chunk).await.map_err(BlobError::Write)?;
        }
        file.flush().await.map_err(BlobError::Write)?;
        file.sync_all().await.map_err(BlobError::Write)?;
        let actual = hex::encode(hasher.finalize());
        if actual != expected_hex {
            return Err(BlobError::Mismatch { actual });
        }
        tokio::fs::rename(tmp, dest)
            .await
            .map_err(BlobError::Write)?;
        Ok(size)
    }
    .await;
    if result.is_err() {
        remove_quietly(tmp);
    }
    result
}

#[cfg(test)]
#[path = "blob_tests.rs"]
mod tests;
