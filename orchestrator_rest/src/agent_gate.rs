//! The automation boundary (docs/AGENTS.md): a revoked agent token is
//! refused as part of authentication ([`refuse_revoked`], counted as a
//! refusal, never audited); every other agent call — whatever the transport —
//! is mapped to the MCP tool it amounts to and held to the user's policy and
//! the token's scope before any handler runs ([`agent_gate`]). A call the
//! policy holds for approval is stored and answered 202 with its approval;
//! nothing else happens until the user approves it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use orchestrator_shared_types::agent::tool_for_request;
use serde_json::json;

use super::auth::{AgentCall, Caller};
use super::error::ApiError;
use super::AppState;
use orchestrator_agents::{NewApproval, Verdict};

/// Set on a 202 answer that queued an approval (read by the audit log).
#[derive(Clone, Debug)]
pub struct QueuedForApproval(pub String);

/// Largest body of a call held for approval.
const BODY_LIMIT: usize = 1 << 20;

/// Right after the signed-request layer: a call made with a revoked agent
/// token is refused (401) before the audit log or any handler sees it, and
/// counted with the other refusals of unauthenticated requests.
pub async fn refuse_revoked(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let claims = req
        .extensions()
        .get::<AgentCall>()
        .and_then(|a| a.token.clone());
    if let Some(claims) = claims {
        if let Err(e) = refuse_if_revoked(&state, &claims).await {
            let rejection = signed_http::Rejection::from(e).because("revoked_token");
            state
                .gate
                .refusals
                .record(&rejection, req.method(), req.uri().path());
            return Err(rejection.into());
        }
    }
    Ok(next.run(req).await)
}

/// The middleware (inside authentication, the revocation check and the
/// audit log).
pub async fn agent_gate(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(agent) = req.extensions().get::<AgentCall>().cloned() else {
        return Ok(next.run(req).await);
    };
    let caller = req
        .extensions()
        .get::<Caller>()
        .copied()
        .ok_or_else(|| ApiError::internal("agent call without a caller"))?;
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let Some(tool) = tool_for_request(&method, req.uri().path()) else {
        return Err(ApiError::forbidden(format!(
            "agents may only make the calls of MCP tools; {method} {} is for the user in person",
            req.uri().path()
        )));
    };
    let book = &state.agents;
    let verdict = book
        .verdict(&caller.key, tool, agent.token.as_ref())
        .await
        .map_err(ApiError::internal)?;
    match verdict {
        Verdict::Run => Ok(next.run(req).await),
        Verdict::Refuse(why) => Err(ApiError::forbidden(why)),
        Verdict::Approve => {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
                .await
                .map_err(|_| ApiError::payload_too_large(BODY_LIMIT))?;
            let body = if bytes.is_empty() {
                None
            } else {
                Some(String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::bad_request("a call held for approval must have a UTF-8 body")
                })?)
            };
            let approval = book
                .queue(NewApproval {
                    user: caller.key,
                    agent: agent.name,
                    tool: tool.to_owned(),
                    method,
                    path,
                    body,
                    content_type,
                })
                .await?;
            let id = approval.id.clone();
            let mut response = (
                StatusCode::ACCEPTED,
                Json(json!({"pending_approval": approval})),
            )
                .into_response();
            response.extensions_mut().insert(QueuedForApproval(id));
            Ok(response)
        }
    }
}

/// 401 when the token of `claims` was revoked by its user or an admin.
pub async fn refuse_if_revoked(
    state: &AppState,
    claims: &orchestrator_shared_types::agent::TokenClaims,
) -> Result<(), ApiError> {
    if state
        .agents
        .is_revoked(claims)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::unauthorized(format!(
            "agent token {} was revoked",
            claims.id
        )));
    }
    Ok(())
}

/// A request for the daemon to run in process (an approved call).
pub fn replay_request(
    method: &str,
    path: &str,
    body: Option<&str>,
    content_type: Option<&str>,
) -> Result<Request, ApiError> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    builder
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .map_err(ApiError::internal)
}
