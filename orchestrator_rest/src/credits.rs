//! Credit routes (issue 7): the caller's balance and history, and transfers
//! signed by the payer through the request signature, which the ledger keeps
//! as the transfer's proof.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use base64::Engine;
use mycelial::ledger::{
    AccountSummary, Entry, ErrorKind, HistoryItem, SignedRequest, SignedTransfer,
};
use orchestrator_shared_types::auth::{HEADER_SIGNATURE, HEADER_TIMESTAMP};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::openapi::CommonErrors;
use super::trust::service;
use super::workloads::query;
use super::{AppState, Page, PageParams};
use orchestrator_trust::credits::{CreditError, Credits};

impl From<CreditError> for ApiError {
    fn from(e: CreditError) -> Self {
        match e {
            CreditError::Refused(l) => {
                let message = l.to_string();
                match l.kind() {
                    ErrorKind::Conflict => {
                        let mut err = ApiError::conflict(message);
                        err.code = l.code();
                        err
                    }
                    ErrorKind::Unauthorized => ApiError::forbidden(message),
                    ErrorKind::Invalid => ApiError::bad_request(message),
                }
            }
            other => ApiError::internal(other),
        }
    }
}

fn credits(state: &AppState) -> ApiResult<&Credits> {
    service(state)?
        .credits()
        .ok_or_else(|| ApiError::unavailable("the credit ledger is still loading"))
}

pub use orchestrator_api::{Balance, LedgerEntry};

/// The wire form of an account's summary.
fn balance_of(s: AccountSummary) -> Balance {
    Balance {
        account: s.account.to_string(),
        balance: s.balance,
        held: s.held,
        available: s.available,
        limit: s.limit,
        next_nonce: s.next_nonce,
    }
}

/// The wire form of a line of an account's statement: the same fields,
/// its kind and counterparty as the ledger writes them.
fn ledger_entry(item: HistoryItem) -> ApiResult<LedgerEntry> {
    let kind = match serde_json::to_value(item.kind) {
        Ok(serde_json::Value::String(kind)) => kind,
        Ok(other) => other.to_string(),
        Err(e) => return Err(ApiError::internal(e)),
    };
    Ok(LedgerEntry {
        seq: item.seq,
        at: item.at,
        kind,
        counterparty: item.counterparty.map(|a| a.to_string()),
        balance_delta: item.balance_delta,
        held_delta: item.held_delta,
        reference: item.reference,
    })
}

/// `GET /api/v1/credits/balance`: the caller's.
#[utoipa::path(get, path = "/api/v1/credits/balance", tag = "credits",
    responses((status = 200, body = Balance), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn balance(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Balance>> {
    Ok(Json(balance_of(
        credits(&state)?.summary(&caller.key).await,
    )))
}

/// `GET /api/v1/credits/history`: the caller's entries (`seq`, `at`, `kind`,
/// `counterparty`, `balance_delta`, `held_delta`, `reference`).
#[utoipa::path(get, path = "/api/v1/credits/history", tag = "credits", params(PageParams),
    responses((status = 200, body = Page<LedgerEntry>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<Page<LedgerEntry>>> {
    let p = query(q)?;
    let limit = p.limit()?;
    let after = match &p.cursor {
        None => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::bad_request(format!("cursor: {c:?} is not a ledger seq")))?,
    };
    let (items, next) = credits(&state)?.history(&caller.key, after, limit).await;
    Ok(Json(Page {
        items: items
            .into_iter()
            .map(ledger_entry)
            .collect::<ApiResult<_>>()?,
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// `POST /api/v1/credits/transfer` with `{"to": HEX, "amount": MILLI, "nonce": N}`:
/// pays from the caller, whose request signature is the transfer's proof.
/// Past the payer's credit limit: 409 `credit_limit_exceeded`, nothing changes.
#[utoipa::path(post, path = "/api/v1/credits/transfer", tag = "credits",
    request_body(content = serde_json::Value, description = r#"{"to": OPERATOR_PUBLIC_KEY, "amount": MILLI_UNITS, "nonce": N}"#),
    responses((status = 200, body = Balance), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn transfer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> ApiResult<Json<Balance>> {
    let credits = credits(&state)?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::forbidden(format!(
                    "a transfer must be signed by the payer in person ({name} missing)"
                ))
            })
    };
    let timestamp = header(HEADER_TIMESTAMP)?;
    let signature: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(header(HEADER_SIGNATURE)?.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("X-Auth-Signature is not a signature"))?;
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path(), |p| p.as_str());
    let ledger_id = credits.id().await;
    let signed = SignedTransfer::from_request(
        &ledger_id,
        caller.key,
        SignedRequest {
            method: "POST",
            path,
            timestamp,
            body: &body,
            signature,
            audience: &state.gate.audience,
        },
    )
    .map_err(CreditError::from)?;
    credits.apply(&Entry::Transfer(signed)).await?;
    Ok(Json(balance_of(credits.summary(&caller.key).await)))
}
