//! Sealed secrets (issue 18): the caller's own, stored as ciphertext only.
//! The body is checked to be an age file sealed to public keys, within size
//! limits, before anything is stored; the daemon never sees a value.
//! The user's in person only: agent tokens are refused (no MCP tool maps here).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use orchestrator_api::{PutSecret, SealedSecret};
use tracing::info;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::openapi::CommonErrors;
use super::AppState;

/// `GET /api/v1/secrets`: the caller's secrets, by name (sealed).
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets",
    responses((status = 200, body = Vec<SealedSecret>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<SealedSecret>>> {
    Ok(Json(state.orch.list_secrets(&caller.key).await?))
}

/// `GET /api/v1/secrets/{name}`: one of the caller's secrets (sealed).
#[utoipa::path(get, path = "/api/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 200, body = SealedSecret), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<SealedSecret>> {
    Ok(Json(state.orch.secret(&caller.key, &name).await?))
}

/// `PUT /api/v1/secrets/{name}` with `{"recipients": [HEX], "sealed": AGE}`:
/// stores or replaces the caller's secret.
#[utoipa::path(put, path = "/api/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    request_body = PutSecret,
    responses((status = 200, body = SealedSecret), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<SealedSecret>> {
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let put: PutSecret = orchestrator_shared_types::manifest::from_json(text)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if put.recipients.len() > orchestrator_secrets::MAX_RECIPIENTS {
        return Err(ApiError::bad_request(format!(
            "recipients: {} keys, more than {}",
            put.recipients.len(),
            orchestrator_secrets::MAX_RECIPIENTS
        )));
    }
    orchestrator_secrets::check_sealed(&put.sealed)
        .map_err(|e| ApiError::bad_request(format!("sealed: {e}")))?;
    let secret = state
        .orch
        .put_secret(caller.key, &name, put.recipients, put.sealed)
        .await?;
    info!(user = %caller.key, secret = %name, recipients = secret.recipients.len(), "secret set");
    Ok(Json(secret))
}

/// `DELETE /api/v1/secrets/{name}`: deletes the caller's secret; refused
/// (409) while one of the caller's workloads names it.
#[utoipa::path(delete, path = "/api/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 200, body = SealedSecret), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<SealedSecret>> {
    let secret = state.orch.delete_secret(&caller.key, &name).await?;
    info!(user = %caller.key, secret = %name, "secret deleted");
    Ok(Json(secret))
}
