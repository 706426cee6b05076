//! The signed-HTTP layer (SPEC §11): every signed request, whether it comes to
//! the REST API, the node agent or `/mcp`, goes through [`read_signed`] and
//! then [`Verified::admit`], so that the body limit, the signature over
//! method, path, timestamp, body, audience and agent (signing scheme v2,
//! `orchestrator_shared_types::auth`), the clock skew and the replay cache
//! are checked in one place, with one error type ([`Rejection`]).
//!
//! The audience a server expects ([`Limits::audience`]) is its cluster id, or
//! a standalone node's own node id: the daemon computes it and hands it to
//! every layer, so a request signed for another cluster is refused.
//!
//! - [`read_signed`]: buffers the body (bounded) and verifies the signature.
//! - [`Verified::admit`]: records the signature in the [`ReplayCache`],
//!   refusing a second use; call it once the caller decided who may sign.
//! - [`SignedLayer`]: both steps as one tower layer around a router, with an
//!   [`Admission`] deciding who may sign and the [`Signer`] extractor giving
//!   handlers the caller; the REST API, the node agent and `/mcp` (which
//!   calls the REST router in process) all sit behind it.
//! - [`Rejection`]: a refused request, answered as
//!   `{"error": {"code", "message"}}` ([`orchestrator_api::ErrorBody`]),
//!   with a bounded [`Rejection::reason`] for metrics.
//! - [`RefusalLog`]: a warn line per refused request, at most one a second,
//!   saying how many were suppressed (a flood of bad requests cannot flood
//!   the log); [`SignedLayer::on_refusal`] reports each refusal.
//!
//! Who may sign is the caller's decision and stays with it: the REST API
//! checks its trusted and admin keys, the node agent checks that the signer is
//! the live control plane. May depend on axum, the shared types and the API's
//! wire types; nothing of the orchestrator itself.

mod layer;
mod refusal_log;
mod replay;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use orchestrator_api::ErrorBody;
use orchestrator_shared_types::agent::HEADER_AGENT;
use orchestrator_shared_types::auth::{
    verify_request, AuthError, Payload, ReceivedHeaders, HEADER_AUDIENCE, HEADER_PUBLIC_KEY,
    HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use orchestrator_shared_types::PublicKey;
use std::sync::Arc;

pub use layer::{Admission, OnRefusal, SignedLayer, SignedService, Signer};
pub use refusal_log::RefusalLog;
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
    /// Why, as a bounded label for metrics (`bad_signature`, `replay`, …);
    /// the code unless set otherwise with [`Rejection::because`].
    pub reason: &'static str,
}

impl Rejection {
    /// A rejection with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            reason: code,
        }
    }
    /// The same rejection, labelled `reason` for metrics.
    pub fn because(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
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
        let reason = match &e {
            AuthError::MissingHeader(_) => "missing_header",
            AuthError::Malformed { .. } => "malformed_header",
            AuthError::Skew { .. } => "skew",
            AuthError::AudienceMismatch { .. } => "audience_mismatch",
            AuthError::BadSignature { .. } => "bad_signature",
        };
        let rejection = Rejection::unauthorized(e.to_string()).because(reason);
        match e {
            AuthError::AudienceMismatch { .. } => Rejection {
                code: "audience_mismatch",
                ..rejection
            },
            _ => rejection,
        }
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
            v.to_str().map_err(|_| {
                Rejection::unauthorized(format!("malformed header {name}: not ASCII"))
                    .because("malformed_header")
            })
        })
        .transpose()
}

/// What the signature checks are held to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest body read, in bytes.
    pub body_limit: usize,
    /// Largest allowed distance between the signed timestamp and the clock, in seconds.
    pub max_skew_seconds: i64,
    /// The audience requests must be signed for: the cluster id, or a
    /// standalone node's own node id (what `GET /api/v1/info` reports).
    pub audience: Arc<str>,
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
/// signature headers over method, path and query, timestamp, body, this
/// server's audience and the `X-Univrs-Agent` header (empty when absent).
pub async fn read_signed(req: Request, limits: &Limits) -> Result<Verified, Rejection> {
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
        audience: header(&parts.headers, HEADER_AUDIENCE)?,
    };
    // The agent's name is signed as the header value sent (HTTP strips the
    // surrounding whitespace); no header signs the empty string.
    let agent = header(&parts.headers, HEADER_AGENT)?.unwrap_or_default();
    let payload = Payload {
        method: parts.method.as_str(),
        path,
        body: &body,
        audience: &limits.audience,
        agent,
    };
    let now = Utc::now();
    let verified = verify_request(received, &payload, now, limits.max_skew_seconds)?;
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
            return Err(
                Rejection::unauthorized("this signed request was already used (replay)")
                    .because("replay"),
            );
        }
        Ok(Request::from_parts(self.parts, Body::from(self.body)))
    }
}
