//! The signed-HTTP layer (SPEC §11): every signed request, whether it comes to
//! the REST API, the node agent or `/mcp`, goes through [`read_signed`] and
//! then [`Verified::admit`], so that the body limit, the signature over
//! method, path, timestamp and body, the clock skew and the replay cache are
//! checked in one place, with one error type ([`Rejection`]).
//!
//! - [`read_signed`]: buffers the body (bounded) and verifies the signature.
//! - [`Verified::admit`]: records the signature in the [`ReplayCache`],
//!   refusing a second use; call it once the caller decided who may sign.
//! - [`SignedLayer`]: both steps as one tower layer around a router, with an
//!   [`Admission`] deciding who may sign and the [`Signer`] extractor giving
//!   handlers the caller; the REST API, the node agent and `/mcp` (which
//!   calls the REST router in process) all sit behind it.
//! - [`Rejection`]: a refused request, answered as
//!   `{"error": {"code", "message"}}` ([`orchestrator_api::ErrorBody`]).
//!
//! Who may sign is the caller's decision and stays with it: the REST API
//! checks its trusted and admin keys, the node agent checks that the signer is
//! the live control plane. May depend on axum, the shared types and the API's
//! wire types; nothing of the orchestrator itself.

mod layer;
mod replay;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use orchestrator_api::ErrorBody;
use orchestrator_shared_types::auth::{
    verify_request, AuthError, ReceivedHeaders, HEADER_PUBLIC_KEY, HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
};
use orchestrator_shared_types::PublicKey;

pub use layer::{Admission, SignedLayer, SignedService, Signer};
pub use replay::ReplayCache;

/// A refused request: its status, a machine-readable code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`unauthorized`, `forbidden`, …).
    pub code: &'static str,
    /// What was wrong, for the caller.
    pub message: String,
}

impl Rejection {
    /// A rejection with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 413.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }
    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    /// 500; `detail` is logged, not sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the daemon's log",
        )
    }
}

impl From<AuthError> for Rejection {
    fn from(e: AuthError) -> Self {
        Rejection::unauthorized(e.to_string())
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody::new(self.code, self.message))).into_response()
    }
}

/// The value of header `name`, if present; a non-ASCII value is refused.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Rejection> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| Rejection::unauthorized(format!("malformed header {name}: not ASCII")))
        })
        .transpose()
}

/// What the signature checks are held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest body read, in bytes.
    pub body_limit: usize,
    /// Largest allowed distance between the signed timestamp and the clock, in seconds.
    pub max_skew_seconds: i64,
}

/// A request whose signature verified, not yet admitted: the signer must be
/// checked by the caller, then the signature spent with [`Verified::admit`].
#[derive(Debug)]
pub struct Verified {
    /// The request's head.
    pub parts: Parts,
    /// Its body, read whole.
    pub body: Bytes,
    /// The key that signed it.
    pub key: PublicKey,
    signature: [u8; 64],
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
    max_skew_seconds: i64,
}

/// Buffers `req`'s body (at most `limits.body_limit` bytes) and verifies its
/// signature headers over method, path and query, timestamp and body.
pub async fn read_signed(req: Request, limits: Limits) -> Result<Verified, Rejection> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, limits.body_limit)
        .await
        .map_err(|_| Rejection::payload_too_large(limits.body_limit))?;
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |p| p.as_str());
    let received = ReceivedHeaders {
        public_key: header(&parts.headers, HEADER_PUBLIC_KEY)?,
        timestamp: header(&parts.headers, HEADER_TIMESTAMP)?,
        signature: header(&parts.headers, HEADER_SIGNATURE)?,
    };
    let now = Utc::now();
    let verified = verify_request(
        received,
        parts.method.as_str(),
        path,
        &body,
        now,
        limits.max_skew_seconds,
    )?;
    Ok(Verified {
        parts,
        body,
        key: verified.key,
        signature: verified.signature,
        signed_at: verified.signed_at,
        now,
        max_skew_seconds: limits.max_skew_seconds,
    })
}

impl Verified {
    /// Spends the signature: refuses it if `replays` saw it within the skew
    /// window, and gives back the request, body restored.
    pub fn admit(self, replays: &ReplayCache) -> Result<Request, Rejection> {
        let expires = self.signed_at.timestamp() + self.max_skew_seconds;
        if !replays.check_and_insert(&self.signature, expires, self.now.timestamp()) {
            return Err(Rejection::unauthorized(
                "this signed request was already used (replay)",
            ));
        }
        Ok(Request::from_parts(self.parts, Body::from(self.body)))
    }
}
