//! The API's error type: `{"error": {"code", "message"}}` with the right status.
//! Internal details go to the log, not to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchestrator_shared_types::auth::AuthError;
use signed_http::Rejection;
use state_store_interface::StoreError;
use tracing::error;

use orchestrator_core::error::ErrorKind;
use orchestrator_core::Error;

/// An error answered to a client: the signed-HTTP layer's [`Rejection`]
/// (same status, code and body, whose constructors these reuse) plus the
/// conversions from the orchestrator's errors, which must live here.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

pub use orchestrator_api::{ErrorBody, ErrorDetail};

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Rejection::bad_request(message).into()
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Rejection::unauthorized(message).into()
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Rejection::forbidden(message).into()
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// 403 `quota_exceeded`: the message names the quota, its limit and the
    /// usage the request would make.
    pub fn quota_exceeded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "quota_exceeded", message)
    }
    /// 413.
    pub fn payload_too_large(limit: usize) -> Self {
        Rejection::payload_too_large(limit).into()
    }
    /// 429.
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
    }
    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }
    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Rejection::unavailable(message).into()
    }
    /// 500; `detail` is logged, not sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Rejection::internal(detail).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        Rejection::from(self).into_response()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::unauthorized(e.to_string())
    }
}

impl From<ApiError> for Rejection {
    fn from(e: ApiError) -> Self {
        Rejection::new(e.status, e.code, e.message)
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        Self {
            status: r.status,
            code: r.code,
            message: r.message,
        }
    }
}

impl From<Error> for ApiError {
    /// The status follows from the error's kind: the caller's mistakes are
    /// 4xx, a part that is down for now is 503 (retry), anything else is 500.
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound { .. } => ApiError::not_found(e.to_string()),
            Error::InvalidArgument { .. } | Error::Manifest(_) => {
                ApiError::bad_request(e.to_string())
            }
            Error::Store(StoreError::NameTaken { .. }) | Error::Conflict { .. } => {
                ApiError::conflict(e.to_string())
            }
            Error::QuotaExceeded { .. } => ApiError::quota_exceeded(e.to_string()),
            other => match other.kind() {
                ErrorKind::ShuttingDown => ApiError::unavailable(other.to_string()),
                ErrorKind::StoreUnavailable
                | ErrorKind::NodeUnreachable
                | ErrorKind::Membership => {
                    error!(error = %other, kind = other.kind().as_str(), "a part is unavailable");
                    ApiError::unavailable(format!(
                        "{} is unavailable for now; retry",
                        match other.kind() {
                            ErrorKind::StoreUnavailable => "the state store",
                            ErrorKind::NodeUnreachable => "a node",
                            _ => "the cluster membership",
                        }
                    ))
                }
                _ => ApiError::internal(other),
            },
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
