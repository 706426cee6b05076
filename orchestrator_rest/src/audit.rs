//! The audit log over HTTP: the middleware that records every mutating call
//! on the signed routes, `GET /api/v1/audit` and `GET /api/v1/audit/verify`.
//!
//! It runs after authentication: only authenticated callers' requests are
//! recorded, under their verified key (and agent), with their outcome — a
//! call the automation policy or a handler refuses is recorded as refused.
//! Requests refused before their caller was known (unsigned, forged,
//! replayed, for another audience, with a bad or revoked token) are not
//! written here, where anyone could otherwise fill the log: they are counted
//! in `orchestrator_api_auth_refused_total` and logged at a bounded rate.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tracing::error;

use super::agent_gate::QueuedForApproval;
use super::auth::{AgentCall, ApprovedCall};
use super::error::{ApiError, ApiResult};
use super::workloads::query;
use super::{AppState, Caller, Page};
use orchestrator_audit::{AuditEntry, AuditLog, Call, Decision};

/// Largest body the audit middleware reads.
const BODY_LIMIT: usize = 8 << 20;

/// Who made an authenticated request: the verified key, the agent acting
/// (by token or `X-Univrs-Agent`, both verified), and whether it is a call
/// the daemon runs for an approved approval.
fn caller_of(parts: &axum::http::request::Parts) -> (Option<String>, Option<String>, bool) {
    if let Some(approved) = parts.extensions.get::<ApprovedCall>() {
        return (
            Some(approved.caller.key.to_string()),
            Some(approved.agent.clone()),
            true,
        );
    }
    let key = parts.extensions.get::<Caller>().map(|c| c.key.to_string());
    let agent = parts.extensions.get::<AgentCall>().map(|a| a.name.clone());
    (key, agent, false)
}

/// Records authenticated mutating calls (POST, PUT, PATCH, DELETE), every
/// agent call (reads too) and every approved call, with their outcome. Must
/// run inside authentication: a request without a verified caller is passed
/// on unrecorded (the layers outside it refuse such requests).
pub async fn record(State(log): State<Arc<AuditLog>>, req: Request, next: Next) -> Response {
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let authenticated = req.extensions().get::<Caller>().is_some()
        || req.extensions().get::<ApprovedCall>().is_some();
    let agent_call = req.extensions().get::<AgentCall>().is_some()
        || req.extensions().get::<ApprovedCall>().is_some();
    if !authenticated || (read_only && !agent_call) {
        return next.run(req).await;
    }
    run_and_record(log, req, next).await
}

/// Runs `req` and appends it, with its outcome, to `log`; an answer whose
/// entry cannot be written is replaced by an error.
async fn run_and_record(log: Arc<AuditLog>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::payload_too_large(BODY_LIMIT).into_response();
    };
    let (key, agent, approved) = caller_of(&parts);
    let method = parts.method.to_string();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    let status = response.status().as_u16();
    let decision = if approved {
        Decision::Approved
    } else if response.extensions().get::<QueuedForApproval>().is_some() {
        Decision::PendingApproval
    } else if response.status().is_success() {
        Decision::Allowed
    } else {
        Decision::Refused
    };
    let appended = log
        .append(Call {
            key,
            agent,
            method: &method,
            path: &path,
            body: &bytes,
            status,
            decision,
        })
        .await;
    match appended {
        Ok(_) => response,
        // A refused call changed nothing: its own answer says why, better
        // than the audit log's failure (a deposed leader's fenced write is
        // refused, and so is its audit entry).
        Err(e) if !response.status().is_success() => {
            error!(error = %e, status, "writing the audit log failed (the call was refused)");
            response
        }
        Err(e) => {
            error!(error = %e, "writing the audit log failed");
            ApiError::unavailable(format!(
                "the call was made (it answered {status}) but could not be written to the audit \
                 log; see the daemon's log"
            ))
            .into_response()
        }
    }
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only entries of this agent.
    pub agent: Option<String>,
    /// Entries per page, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

fn log_of(state: &AppState) -> ApiResult<&Arc<AuditLog>> {
    state
        .audit
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this daemon keeps no audit log"))
}

/// `GET /api/v1/audit`: the caller's entries (every entry for an admin key).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Page<AuditEntry>), super::openapi::CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let p = query(q)?;
    let entries = log_of(&state)?
        .entries()
        .await
        .map_err(ApiError::internal)?;
    let me = caller.key.to_string();
    let items: Vec<AuditEntry> = entries
        .into_iter()
        .filter(|e| caller.admin || e.key.as_deref() == Some(me.as_str()))
        .filter(|e| p.since.is_none_or(|s| e.time >= s))
        .filter(|e| p.agent.as_ref().is_none_or(|a| e.agent.as_ref() == Some(a)))
        .collect();
    let page = super::PageParams {
        limit: p.limit,
        cursor: p.cursor,
    };
    Ok(Json(super::paginate(items, &page, |e| {
        format!("{:020}", e.seq)
    })?))
}

pub use orchestrator_api::Verification;

/// `GET /api/v1/audit/verify`: checks the whole hash chain as it is stored.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = Verification), super::openapi::CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn verify(State(state): State<AppState>) -> ApiResult<Json<Verification>> {
    let result = log_of(&state)?.verify().await;
    Ok(Json(match result {
        Ok(n) => Verification {
            ok: true,
            entries: n,
            error: None,
        },
        Err(e) => Verification {
            ok: false,
            entries: 0,
            error: Some(e.to_string()),
        },
    }))
}
