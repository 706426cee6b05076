//! The signed-request scheme of the REST API (SPEC §11), for clients and server.
//!
//! A request carries `X-Auth-PublicKey` (standard base64, padded, of the
//! 32-byte Ed25519 key), `X-Auth-Timestamp` (RFC 3339 UTC) and
//! `X-Auth-Signature` (standard base64 of the 64-byte signature) over
//! `METHOD + "\n" + PATH + "\n" + TIMESTAMP + "\n" + lowercase_hex(SHA256(body))`,
//! where PATH is the request target as sent, query string included.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::ids::PublicKey;

/// Header carrying the caller's public key.
pub const HEADER_PUBLIC_KEY: &str = "x-auth-publickey";
/// Header carrying the signing time.
pub const HEADER_TIMESTAMP: &str = "x-auth-timestamp";
/// Header carrying the signature.
pub const HEADER_SIGNATURE: &str = "x-auth-signature";

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header does not parse.
    #[error("malformed header {header}: {reason}")]
    Malformed {
        /// Which header.
        header: &'static str,
        /// Why.
        reason: String,
    },
    /// The timestamp is outside the allowed skew.
    #[error("timestamp {timestamp} is {skew_seconds}s away from the server's clock (allowed {allowed_seconds}s)")]
    Skew {
        /// The timestamp sent.
        timestamp: String,
        /// Its distance from now.
        skew_seconds: i64,
        /// The allowed distance.
        allowed_seconds: i64,
    },
    /// The signature does not verify over this method, path, timestamp and body.
    #[error("signature does not verify")]
    BadSignature,
}

/// The headers of one signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Auth-PublicKey`.
    pub public_key: String,
    /// `X-Auth-Timestamp`.
    pub timestamp: String,
    /// `X-Auth-Signature`.
    pub signature: String,
}

/// Percent-encodes all but the unreserved characters of RFC 3986, so `s`
/// can stand as one segment of a request path (and of the signed target).
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The bytes that are signed.
pub fn signing_message(method: &str, path: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(body));
    format!(
        "{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path,
        timestamp,
        digest
    )
    .into_bytes()
}

/// An RFC 3339 UTC timestamp. Nanosecond precision keeps two identical
/// requests sent in the same second apart: Ed25519 signatures are
/// deterministic, so equal timestamps would make the second one a replay.
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Signs a request at time `now`.
pub fn sign_request(
    key: &SigningKey,
    method: &str,
    path: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> SignedHeaders {
    let ts = timestamp(now);
    let sig = key.sign(&signing_message(method, path, &ts, body));
    SignedHeaders {
        public_key: B64.encode(key.verifying_key().to_bytes()),
        timestamp: ts,
        signature: B64.encode(sig.to_bytes()),
    }
}

/// A request whose signature verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// Who signed it.
    pub key: PublicKey,
    /// The signature (for replay detection).
    pub signature: [u8; 64],
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
}

fn decode_fixed<const N: usize>(header: &'static str, value: &str) -> Result<[u8; N], AuthError> {
    let bytes = B64.decode(value.trim()).map_err(|e| AuthError::Malformed {
        header,
        reason: e.to_string(),
    })?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| AuthError::Malformed {
        header,
        reason: format!("expected {N} bytes, got {len}"),
    })
}

/// The three auth headers of a request as received (`None` where absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceivedHeaders<'a> {
    /// `X-Auth-PublicKey`.
    pub public_key: Option<&'a str>,
    /// `X-Auth-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Auth-Signature`.
    pub signature: Option<&'a str>,
}

/// Checks the auth headers against the request and the clock.
pub fn verify_request(
    headers: ReceivedHeaders<'_>,
    method: &str,
    path: &str,
    body: &[u8],
    now: DateTime<Utc>,
    max_skew_seconds: i64,
) -> Result<VerifiedRequest, AuthError> {
    let pk = headers
        .public_key
        .ok_or(AuthError::MissingHeader("X-Auth-PublicKey"))?;
    let ts = headers
        .timestamp
        .ok_or(AuthError::MissingHeader("X-Auth-Timestamp"))?;
    let sig = headers
        .signature
        .ok_or(AuthError::MissingHeader("X-Auth-Signature"))?;
    let key_bytes: [u8; 32] = decode_fixed("X-Auth-PublicKey", pk)?;
    let sig_bytes: [u8; 64] = decode_fixed("X-Auth-Signature", sig)?;
    let signed_at = DateTime::parse_from_rfc3339(ts)
        .map_err(|e| AuthError::Malformed {
            header: "X-Auth-Timestamp",
            reason: e.to_string(),
        })?
        .with_timezone(&Utc);
    let skew = (now - signed_at).num_seconds().abs();
    if skew > max_skew_seconds {
        return Err(AuthError::Skew {
            timestamp: ts.to_owned(),
            skew_seconds: skew,
            allowed_seconds: max_skew_seconds,
        });
    }
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|e| AuthError::Malformed {
        header: "X-Auth-PublicKey",
        reason: e.to_string(),
    })?;
    key.verify(
        &signing_message(method, path, ts, body),
        &Signature::from_bytes(&sig_bytes),
    )
    .map_err(|_| AuthError::BadSignature)?;
    Ok(VerifiedRequest {
        key: PublicKey(key_bytes),
        signature: sig_bytes,
        signed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_path_segment("abc-1_2.x~"), "abc-1_2.x~");
        assert_eq!(encode_path_segment("a/b c:d"), "a%2Fb%20c%3Ad");
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    fn verify(
        h: &SignedHeaders,
        method: &str,
        path: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedRequest, AuthError> {
        let r = ReceivedHeaders {
            public_key: Some(&h.public_key),
            timestamp: Some(&h.timestamp),
            signature: Some(&h.signature),
        };
        verify_request(r, method, path, body, now, 60)
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let now = Utc::now();
        let h = sign_request(&key(), "POST", "/api/v1/workloads?limit=10", b"{}", now);
        let ok = verify(&h, "POST", "/api/v1/workloads?limit=10", b"{}", now).unwrap();
        assert_eq!(ok.key.0, key().verifying_key().to_bytes());
        assert_eq!(
            verify(&h, "POST", "/api/v1/workloads?limit=11", b"{}", now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&h, "PUT", "/api/v1/workloads?limit=10", b"{}", now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&h, "POST", "/api/v1/workloads?limit=10", b"{ }", now),
            Err(AuthError::BadSignature)
        );
        let late = now + chrono::Duration::seconds(61);
        assert!(matches!(
            verify(&h, "POST", "/api/v1/workloads?limit=10", b"{}", late),
            Err(AuthError::Skew { .. })
        ));
    }

    #[test]
    fn the_message_is_exactly_the_documented_one() {
        let m = signing_message("get", "/api/v1/nodes", "2026-11-22T10:00:00Z", b"");
        let want = "GET\n/api/v1/nodes\n2026-11-22T10:00:00Z\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(String::from_utf8(m).unwrap(), want);
    }

    #[test]
    fn malformed_and_missing_headers_say_which() {
        let now = Utc::now();
        let r = ReceivedHeaders {
            public_key: None,
            timestamp: Some("x"),
            signature: Some("y"),
        };
        let e = verify_request(r, "GET", "/", b"", now, 60).unwrap_err();
        assert_eq!(e.to_string(), "missing header X-Auth-PublicKey");
        let h = sign_request(&key(), "GET", "/", b"", now);
        let r = ReceivedHeaders {
            public_key: Some("!!"),
            timestamp: Some(&h.timestamp),
            signature: Some(&h.signature),
        };
        let e = verify_request(r, "GET", "/", b"", now, 60).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("malformed header X-Auth-PublicKey"),
            "{e}"
        );
        let r = ReceivedHeaders {
            public_key: Some(&h.public_key),
            timestamp: Some("yesterday"),
            signature: Some(&h.signature),
        };
        let e = verify_request(r, "GET", "/", b"", now, 60).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("malformed header X-Auth-Timestamp"),
            "{e}"
        );
    }
}
