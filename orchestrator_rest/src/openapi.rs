//! The OpenAPI 3 document, generated from the handlers and types.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

/// The error answers every signed route may give.
#[derive(utoipa::IntoResponses)]
pub enum CommonErrors {
    /// Bad input.
    #[response(
        status = 400,
        description = "Bad request: the message says what was wrong"
    )]
    BadRequest(ErrorBody),
    /// Not signed, badly signed, too old, or replayed.
    #[response(
        status = 401,
        description = "Missing, invalid, stale or replayed signature"
    )]
    Unauthorized(ErrorBody),
    /// Not allowed for this key, or above one of the owner's quotas.
    #[response(
        status = 403,
        description = "The key may not do this (`forbidden`), or it would take the owner above a quota (`quota_exceeded`)"
    )]
    Forbidden(ErrorBody),
    /// No such object.
    #[response(status = 404, description = "Not found")]
    NotFound(ErrorBody),
    /// Conflict with the current state.
    #[response(status = 409, description = "Conflict")]
    Conflict(ErrorBody),
    /// Body too large.
    #[response(status = 413, description = "Request body too large")]
    PayloadTooLarge(ErrorBody),
    /// Unsupported content type.
    #[response(status = 415, description = "Unsupported content type")]
    UnsupportedMediaType(ErrorBody),
    /// An agent's call held for approval while its user has the most
    /// approvals pending already.
    #[response(
        status = 429,
        description = "Too many of the user's agents' calls wait for approval"
    )]
    TooManyRequests(ErrorBody),
    /// Shutting down or not ready.
    #[response(status = 503, description = "Unavailable")]
    Unavailable(ErrorBody),
}

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, header, what) in [
            ("publicKey", "X-Auth-PublicKey", "standard base64 of the caller's 32-byte Ed25519 public key"),
            ("timestamp", "X-Auth-Timestamp", "RFC 3339 UTC time of signing, within the allowed skew"),
            ("signature", "X-Auth-Signature", "standard base64 of the Ed25519 signature over METHOD\\nPATH\\nTIMESTAMP\\nhex(sha256(body))\\nAUDIENCE\\nAGENT (AUDIENCE from GET /api/v1/info, AGENT the X-Univrs-Agent header or empty)"),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(header, what))),
            );
        }
    }
}

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Univrs Orchestrator API", description = "Signed REST API of orchestrator_daemon (docs/API.md)."),
    paths(
        super::workloads::create, super::workloads::list, super::workloads::get, super::workloads::update,
        super::workloads::delete, super::workloads::scale, super::workloads::instances, super::workloads::logs,
        super::nodes::list, super::nodes::get, super::nodes::cordon, super::nodes::uncordon, super::nodes::drain,
        super::nodes::cluster_status,
        super::volumes::list, super::volumes::delete,
        super::admission::issue, super::admission::join, super::admission::members,
        super::admission::remove,
        super::audit::list, super::audit::verify,
        super::agents::get_policy, super::agents::put_policy, super::agents::revoke,
        super::agents::revoke_all,
        super::agents::list_approvals, super::agents::get_approval, super::agents::approve,
        super::agents::deny, super::agents::recent_events,
        super::trust::reputation, super::trust::reputations, super::trust::attest,
        super::trust::get_policy, super::trust::put_policy,
        super::secrets::list, super::secrets::get, super::secrets::put, super::secrets::delete,
        super::credits::balance, super::credits::history, super::credits::transfer,
        crate::network::status, crate::network::peers, crate::network::discover,
        crate::info::info,
    ),
    modifiers(&SecurityAddon)
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
