//! Agent routes (docs/AGENTS.md): the caller's automation policy, token
//! revocation, the approvals queue, and recent events (`list_events`).

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use observability::RecordedEvent;
use orchestrator_shared_types::agent::AgentPolicy;
use serde::Deserialize;
use tower::ServiceExt;
use tracing::{error, info};

use super::agent_gate::replay_request;
use super::auth::{ApprovedCall, Caller};
use super::error::{ApiError, ApiResult};
use super::openapi::CommonErrors;
use super::workloads::query;
use super::{paginate, AppState, Page, PageParams};
use orchestrator_agents::approvals::MAX_RESULT;
use orchestrator_agents::{AgentError, Approval, ApprovalResult, ApprovalState, Revocation};

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::NoApproval(_) => ApiError::not_found(e.to_string()),
            AgentError::NotYours(_) => ApiError::forbidden(e.to_string()),
            AgentError::TooManyPending { .. } => ApiError::too_many_requests(e.to_string()),
            AgentError::AlreadyDecided { .. } | AgentError::Expired { .. } => {
                ApiError::conflict(e.to_string())
            }
            AgentError::Store(_) | AgentError::Corrupt { .. } => ApiError::internal(e),
        }
    }
}

/// `GET /api/v1/agent/policy`: the caller's automation policy (disabled and
/// empty when none was pushed).
#[utoipa::path(get, path = "/api/v1/agent/policy", tag = "agents",
    responses((status = 200, body = AgentPolicy), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn get_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<AgentPolicy>> {
    Ok(Json(
        state.agents.policy(&caller.key).await?.unwrap_or_default(),
    ))
}

/// `PUT /api/v1/agent/policy`: replaces the caller's automation policy.
#[utoipa::path(put, path = "/api/v1/agent/policy", tag = "agents",
    request_body = AgentPolicy,
    responses((status = 200, body = AgentPolicy), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn put_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<AgentPolicy>> {
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let policy: AgentPolicy = orchestrator_shared_types::manifest::from_json(text)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    policy.validate().map_err(ApiError::bad_request)?;
    state.agents.set_policy(&caller.key, &policy).await?;
    info!(user = %caller.key, enabled = policy.enabled, "automation policy set");
    Ok(Json(policy))
}

fn check_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "id: {id:?} is not a token or approval id (hex)"
        )));
    }
    Ok(())
}

/// `POST /api/v1/agent/tokens/{id}/revoke`: refuses the token from now on.
#[utoipa::path(post, path = "/api/v1/agent/tokens/{id}/revoke", tag = "agents",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = Revocation), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Revocation>> {
    check_id(&id)?;
    let r = state.agents.revoke(&id, caller.key, caller.admin).await?;
    info!(token = %id, by = %caller.key, "agent token revoked");
    Ok(Json(r))
}

/// What `POST /api/v1/agent/tokens/revoke-all` did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RevokedAll {
    /// Every token of the caller issued at or before this time is refused.
    pub revoked_before: chrono::DateTime<chrono::Utc>,
}

/// `POST /api/v1/agent/tokens/revoke-all`: refuses every agent token the
/// caller issued until now (`ui forget`). The user's in person only.
#[utoipa::path(post, path = "/api/v1/agent/tokens/revoke-all", tag = "agents",
    responses((status = 200, body = RevokedAll), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn revoke_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<RevokedAll>> {
    let revoked_before = state.agents.revoke_all(&caller.key).await?;
    info!(user = %caller.key, %revoked_before, "every agent token of the user revoked");
    Ok(Json(RevokedAll { revoked_before }))
}

/// Filters of `GET /api/v1/approvals`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalParams {
    /// `pending` (default) or `all`.
    pub state: Option<String>,
    /// Items per page, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/approvals`: the caller's approvals (everyone's for an admin), oldest first.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "agents", params(ApprovalParams),
    responses((status = 200, body = Page<Approval>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn list_approvals(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<ApprovalParams>, QueryRejection>,
) -> ApiResult<Json<Page<Approval>>> {
    let p = query(q)?;
    let only_pending = match p.state.as_deref() {
        None | Some("pending") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "state: {other:?} is not pending or all"
            )))
        }
    };
    let items: Vec<Approval> = state
        .agents
        .approvals()
        .await?
        .into_iter()
        .filter(|a| caller.may_act_for(&a.user))
        .filter(|a| !only_pending || a.state == ApprovalState::Pending)
        .collect();
    let page = PageParams {
        limit: p.limit,
        cursor: p.cursor,
    };
    Ok(Json(paginate(items, &page, |a| a.id.clone())?))
}

/// `GET /api/v1/approvals/{id}`.
#[utoipa::path(get, path = "/api/v1/approvals/{id}", tag = "agents",
    params(("id" = String, Path, description = "Approval id")),
    responses((status = 200, body = Approval), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn get_approval(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    check_id(&id)?;
    let a = state.agents.approval(&id).await?;
    if !caller.may_act_for(&a.user) {
        return Err(ApiError::not_found(format!("no approval {id}")));
    }
    Ok(Json(a))
}

/// `POST /api/v1/approvals/{id}/approve`: runs the held call once, as its user.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "agents",
    params(("id" = String, Path, description = "Approval id")),
    responses((status = 200, body = Approval), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    check_id(&id)?;
    let router = super::api_routes(&state);
    let a = state.agents.begin(&id, &caller.key, caller.admin).await?;
    let mut req = replay_request(
        &a.method,
        &a.path,
        a.body.as_deref(),
        a.content_type.as_deref(),
    )?;
    req.extensions_mut().insert(ApprovedCall {
        approval: a.id.clone(),
        caller: Caller {
            key: a.user,
            admin: state.gate.config.admin_keys.contains(&a.user),
        },
        agent: a.agent.clone(),
    });
    let result = match router.oneshot(req).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = match axum::body::to_bytes(response.into_body(), MAX_RESULT * 4).await {
                Ok(b) => {
                    let mut text = String::from_utf8_lossy(&b).into_owned();
                    if text.len() > MAX_RESULT {
                        let mut cut = MAX_RESULT;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                    }
                    text
                }
                Err(e) => format!("(the answer could not be read: {e})"),
            };
            ApprovalResult { status, body }
        }
        Err(e) => match e {},
    };
    if result.status >= 300 {
        error!(approval = %id, status = result.status, "an approved call was refused");
    }
    Ok(Json(state.agents.finish(&id, result).await?))
}

/// `POST /api/v1/approvals/{id}/deny`.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/deny", tag = "agents",
    params(("id" = String, Path, description = "Approval id")),
    responses((status = 200, body = Approval), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn deny(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    check_id(&id)?;
    Ok(Json(
        state.agents.deny(&id, &caller.key, caller.admin).await?,
    ))
}

/// `GET /api/v1/events/recent`: the last events (at most 1000 kept), oldest
/// first; `cursor` is the `seq` of the last one seen.
#[utoipa::path(get, path = "/api/v1/events/recent", tag = "events", params(PageParams),
    responses((status = 200, description = "Events with their seq", body = Page<serde_json::Value>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn recent_events(
    State(state): State<AppState>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<Page<RecordedEvent>>> {
    let p = query(q)?;
    let limit = p.limit()?;
    let after = match &p.cursor {
        None => 0,
        Some(c) => c
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("cursor: {c:?} is not an event seq")))?,
    };
    let mut items = state.orch.deps().events.recent(after, limit + 1);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}
