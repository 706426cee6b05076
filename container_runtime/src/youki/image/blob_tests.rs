//! Unit tests of digests and verified blob downloads.

use super::*;
use crate::youki::image::test_support::{sha_hex, TestDir};
use std::fs;

fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = io::Result<Vec<u8>>> + Unpin {
    futures::stream::iter(parts.iter().map(|p| Ok(p.to_vec())).collect::<Vec<_>>())
}

#[tokio::test]
async fn a_stream_is_kept_only_when_its_digest_matches() {
    let dir = TestDir::new("verify");
    let tmp = dir.path().join("tmp");
    let dest = dir.path().join("blob");
    let good = sha_hex(b"hello world");

    let size = store_verified(chunks(&[b"hello ", b"world"]), &good, Some(11), &tmp, &dest)
        .await
        .unwrap();
    assert_eq!(size, 11);
    assert_eq!(fs::read(&dest).unwrap(), b"hello world");
    fs::remove_file(&dest).unwrap();

    let err = store_verified(chunks(&[b"hello ", b"w0rld"]), &good, None, &tmp, &dest)
        .await
        .unwrap_err();
    assert!(matches!(&err, BlobError::Mismatch { actual } if *actual == sha_hex(b"hello w0rld")));
    assert!(!dest.exists() && !tmp.exists());

    let err = store_verified(chunks(&[b"hello ", b"world"]), &good, Some(6), &tmp, &dest)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { limit: 6 }));
    assert!(!dest.exists() && !tmp.exists());

    let failing = futures::stream::iter(vec![
        Ok(b"hel".to_vec()),
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")),
    ]);
    let err = store_verified(failing, &good, None, &tmp, &dest)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Transfer(_)));
    assert!(!dest.exists() && !tmp.exists());
}

#[test]
fn digests_must_be_well_formed_sha256() {
    let hex = "ab".repeat(32);
    assert_eq!(digest_hex(&format!("sha256:{hex}")).unwrap(), hex);
    assert!(digest_hex(&format!("sha512:{hex}")).is_err());
    assert!(digest_hex("sha256:../../etc/passwd").is_err());
    assert!(digest_hex(&format!("sha256:{}", "AB".repeat(32))).is_err());
}
