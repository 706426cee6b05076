//! The MCP server over streamable HTTP at `/mcp` (SPEC §12): the same tools as
//! `ui mcp`, for agents holding an agent token. Each tool call becomes a call
//! of this daemon's own REST router, in process, with the MCP request's
//! `Authorization` header — so the token is verified, the automation policy
//! applied and the call audited exactly as for any other agent call.

use std::sync::OnceLock;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use mcp_server::{Api, ApiError as McpApiError, Caller as McpCaller};
use serde_json::Value;
use signed_http::Rejection;
use tower::ServiceExt;

use super::agent_gate::refuse_if_revoked;
use super::auth::bearer;
use super::error::ApiError;
use super::{api_routes, AppState};

/// Largest REST answer a tool reads.
const ANSWER_LIMIT: usize = 16 << 20;

/// The daemon's own API routes as the MCP tools' [`Api`].
pub struct InProcessApi {
    /// The daemon's state, for building the routes.
    state: AppState,
    /// [`api_routes`] of `state`, built on the first tool call (an idle
    /// daemon keeps no second copy of its router).
    routes: OnceLock<axum::Router>,
}

impl InProcessApi {
    /// Calls go to the API routes of `state`.
    pub fn new(state: &AppState) -> Self {
        Self {
            state: state.clone(),
            routes: OnceLock::new(),
        }
    }

    fn routes(&self) -> &axum::Router {
        self.routes.get_or_init(|| api_routes(&self.state))
    }
}

#[async_trait]
impl Api for InProcessApi {
    async fn request(
        &self,
        caller: &McpCaller,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, McpApiError> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(auth) = &caller.authorization {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let req = builder
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .map_err(|e| McpApiError::Unreachable(format!("building the request: {e}")))?;
        let response = match self.routes().clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|e| McpApiError::Unreachable(format!("reading the answer: {e}")))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(text);
        }
        let error = serde_json::from_str::<Value>(&text).ok();
        let field = |name: &str| {
            error
                .as_ref()
                .and_then(|v| v["error"][name].as_str())
                .map(str::to_owned)
        };
        Err(McpApiError::Refused {
            status: status.as_u16(),
            code: field("code"),
            message: field("message").unwrap_or(text),
        })
    }
}

/// In front of `/mcp`: only requests with a valid, unrevoked agent token get
/// through (each tool call is checked again, with its scope and the policy,
/// by the REST layer). A refusal is counted and logged (rate-limited) with
/// the other refusals of unauthenticated requests, not audited.
pub async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match check_token(&state, req.headers()).await {
        Ok(()) => Ok(next.run(req).await),
        Err(e) => {
            let rejection = Rejection::from(e).because("bad_token");
            state
                .gate
                .refusals
                .record(&rejection, req.method(), req.uri().path());
            Err(rejection.into())
        }
    }
}

async fn check_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers)? {
        Some(token) => {
            let (_, agent) = state.gate.verify_agent_token(token)?;
            if let Some(claims) = &agent.token {
                refuse_if_revoked(state, claims).await?;
            }
            Ok(())
        }
        None => Err(ApiError::unauthorized(
            "/mcp needs `Authorization: Bearer <agent token>` (ui agent token create)",
        )),
    }
}
