//! The signed-request scheme of the REST API (SPEC §11), for clients and server.
//!
//! A request carries `X-Auth-PublicKey` (standard base64, padded, of the
//! 32-byte Ed25519 key), `X-Auth-Timestamp` (RFC 3339 UTC) and
//! `X-Auth-Signature` (standard base64 of the 64-byte signature) over
//! (signing scheme v2)
//!
//! ```text
//! METHOD + "\n" + PATH + "\n" + TIMESTAMP + "\n" + lowercase_hex(SHA256(body))
//!        + "\n" + AUDIENCE + "\n" + AGENT
//! ```
//!
//! where PATH is the request target as sent, query string included, AUDIENCE is the cluster id
//! (a standalone node's own node id) that `GET /api/v1/info` reports, and
//! AGENT is the value of `X-Univrs-Agent`, empty when there is none. The
//! audience binds a request to one cluster, so it cannot be replayed on
//! another; the agent binds an agent's call to that agent, so a forwarding
//! node cannot strip or change it.
//!
//! A client may also send `X-Auth-Audience` ([`HEADER_AUDIENCE`]), the
//! audience it signed for: it is not signed and changes nothing, but lets the
//! server answer precisely that the audience does not match.

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
/// Optional header naming the audience the client signed for (not signed:
/// it only lets the server explain an audience mismatch).
pub const HEADER_AUDIENCE: &str = "x-auth-audience";

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
    /// The request names (in `X-Auth-Audience`) another audience than the server's.
    #[error("audience does not match: the request was signed for {got:?}, this server's audience is {expected:?} (GET /api/v1/info)")]
    AudienceMismatch {
        /// The server's audience.
        expected: String,
        /// The audience the client said it signed for.
        got: String,
    },
    /// The signature does not verify over this method, path, timestamp, body,
    /// audience and agent.
    #[error("signature does not verify for audience {audience:?} (this server's, GET /api/v1/info): the method, path, timestamp, body, audience and X-Univrs-Agent must be signed exactly as sent")]
    BadSignature {
        /// The server's audience, which the signature was checked against.
        audience: String,
    },
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

/// What a signature covers besides its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The request target as sent, query string included.
    pub path: &'a str,
    /// The body bytes (empty when there is none).
    pub body: &'a [u8],
    /// The cluster id, or a standalone node's own node id.
    pub audience: &'a str,
    /// The value of `X-Univrs-Agent`, empty when there is none.
    pub agent: &'a str,
}

impl<'a> Payload<'a> {
    /// A request by the user in person (no `X-Univrs-Agent`).
    pub fn new(method: &'a str, path: &'a str, body: &'a [u8], audience: &'a str) -> Self {
        Self {
            method,
            path,
            body,
            audience,
            agent: "",
        }
    }

    /// The same request made by agent `agent` (`X-Univrs-Agent: agent`).
    pub fn by_agent(self, agent: &'a str) -> Self {
        Self { agent, ..self }
    }
}

/// The bytes that are signed (scheme v2):
/// `METHOD\nPATH\nTIMESTAMP\nhex(SHA256(body))\nAUDIENCE\nAGENT`.
pub fn signing_message(payload: &Payload<'_>, timestamp: &str) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(payload.body));
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        payload.method.to_ascii_uppercase(),
        payload.path,
        timestamp,
        digest,
        payload.audience,
        payload.agent
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
pub fn sign_request(key: &SigningKey, payload: &Payload<'_>, now: DateTime<Utc>) -> SignedHeaders {
    let ts = timestamp(now);
    let sig = key.sign(&signing_message(payload, &ts));
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

/// The auth headers of a request as received (`None` where absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceivedHeaders<'a> {
    /// `X-Auth-PublicKey`.
    pub public_key: Option<&'a str>,
    /// `X-Auth-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Auth-Signature`.
    pub signature: Option<&'a str>,
    /// `X-Auth-Audience` (optional, unsigned): the audience the client says
    /// it signed for.
    pub audience: Option<&'a str>,
}

/// Checks the auth headers against the request and the clock. `payload`
/// is the request as received, with the server's own audience and the
/// received `X-Univrs-Agent` (empty when absent).
pub fn verify_request(
    headers: ReceivedHeaders<'_>,
    payload: &Payload<'_>,
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
    if let Some(claimed) = headers.audience {
        if claimed.trim() != payload.audience {
            return Err(AuthError::AudienceMismatch {
                expected: payload.audience.to_owned(),
                got: claimed.trim().chars().take(128).collect(),
            });
        }
    }
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
        &signing_message(payload, ts),
        &Signature::from_bytes(&sig_bytes),
    )
    .map_err(|_| AuthError::BadSignature {
        audience: payload.audience.to_owned(),
    })?;
    Ok(VerifiedRequest {
        key: PublicKey(key_bytes),
        signature: sig_bytes,
        signed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUD: &str = "cluster-a";

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_path_segment("abc-1_2.x~"), "abc-1_2.x~");
        assert_eq!(encode_path_segment("a/b c:d"), "a%2Fb%20c%3Ad");
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    fn received(h: &SignedHeaders) -> ReceivedHeaders<'_> {
        ReceivedHeaders {
            public_key: Some(&h.public_key),
            timestamp: Some(&h.timestamp),
            signature: Some(&h.signature),
            audience: None,
        }
    }

    fn verify(
        h: &SignedHeaders,
        p: &Payload<'_>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedRequest, AuthError> {
        verify_request(received(h), p, now, 60)
    }

    fn bad() -> Result<VerifiedRequest, AuthError> {
        Err(AuthError::BadSignature {
            audience: AUD.to_owned(),
        })
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let now = Utc::now();
        let p = Payload::new("POST", "/api/v1/workloads?limit=10", b"{}", AUD);
        let h = sign_request(&key(), &p, now);
        let ok = verify(&h, &p, now).unwrap();
        assert_eq!(ok.key.0, key().verifying_key().to_bytes());
        let changed = [
            Payload {
                path: "/api/v1/workloads?limit=11",
                ..p
            },
            Payload { method: "PUT", ..p },
            Payload { body: b"{ }", ..p },
            p.by_agent("bot"),
        ];
        for other in changed {
            assert_eq!(verify(&h, &other, now), bad(), "{other:?}");
        }
        let other_cluster = Payload {
            audience: "cluster-b",
            ..p
        };
        assert_eq!(
            verify(&h, &other_cluster, now),
            Err(AuthError::BadSignature {
                audience: "cluster-b".to_owned()
            })
        );
        let late = now + chrono::Duration::seconds(61);
        assert!(matches!(verify(&h, &p, late), Err(AuthError::Skew { .. })));
    }

    #[test]
    fn an_agent_call_binds_its_agent() {
        let now = Utc::now();
        let p = Payload::new("GET", "/api/v1/workloads", b"", AUD).by_agent("bot");
        let h = sign_request(&key(), &p, now);
        assert!(verify(&h, &p, now).is_ok());
        // Stripped, or changed to another agent: refused.
        assert_eq!(verify(&h, &p.by_agent(""), now), bad());
        assert_eq!(verify(&h, &p.by_agent("other-bot"), now), bad());
    }

    #[test]
    fn a_named_audience_that_differs_says_so_and_names_the_servers() {
        let now = Utc::now();
        let p = Payload::new("GET", "/api/v1/nodes", b"", "cluster-b");
        let h = sign_request(&key(), &p, now);
        let mut r = received(&h);
        r.audience = Some("cluster-b");
        let e = verify_request(r, &Payload::new("GET", "/api/v1/nodes", b"", AUD), now, 60)
            .unwrap_err();
        assert_eq!(
            e,
            AuthError::AudienceMismatch {
                expected: AUD.to_owned(),
                got: "cluster-b".to_owned()
            }
        );
        let text = e.to_string();
        assert!(text.starts_with("audience does not match"), "{text}");
        assert!(text.contains("\"cluster-a\""), "{text}");
        // Without the header, the refusal still names the server's audience.
        let e = verify(&h, &Payload::new("GET", "/api/v1/nodes", b"", AUD), now).unwrap_err();
        assert!(e.to_string().contains("\"cluster-a\""), "{e}");
    }

    #[test]
    fn the_message_is_exactly_the_documented_one() {
        let p = Payload::new("get", "/api/v1/nodes", b"", "c0ffee");
        let m = signing_message(&p, "2026-11-22T10:00:00Z");
        let want = "GET\n/api/v1/nodes\n2026-11-22T10:00:00Z\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nc0ffee\n";
        assert_eq!(String::from_utf8(m).unwrap(), want);
        let m = signing_message(&p.by_agent("bot"), "2026-11-22T10:00:00Z");
        assert!(String::from_utf8(m).unwrap().ends_with("\nc0ffee\nbot"));
    }

    #[test]
    fn malformed_and_missing_headers_say_which() {
        let now = Utc::now();
        let p = Payload::new("GET", "/", b"", AUD);
        let r = ReceivedHeaders {
            public_key: None,
            timestamp: Some("x"),
            signature: Some("y"),
            audience: None,
        };
        let e = verify_request(r, &p, now, 60).unwrap_err();
        assert_eq!(e.to_string(), "missing header X-Auth-PublicKey");
        let h = sign_request(&key(), &p, now);
        let mut r = received(&h);
        r.public_key = Some("!!");
        let e = verify_request(r, &p, now, 60).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("malformed header X-Auth-PublicKey"),
            "{e}"
        );
        let mut r = received(&h);
        r.timestamp = Some("yesterday");
        let e = verify_request(r, &p, now, 60).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("malformed header X-Auth-Timestamp"),
            "{e}"
        );
    }
}
