//! Reputation and attestation routes (issue 7): a node's reputation
//! components as the caller sees them, operators' signed attestations, and
//! the caller's trust policy (issue 18).

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use mycelial::evidence::{Attestation, Entry, Signed};
use orchestrator_shared_types::{NodeId, PublicKey, TrustRules};
use serde::Deserialize;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::openapi::CommonErrors;
use super::workloads::query;
use super::{AppState, Page};
use orchestrator_trust::{TrustError, TrustService};

impl From<TrustError> for ApiError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::Rejected(r) => ApiError::bad_request(r.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// The trust service, or 503 where there is none (a worker forwards).
pub fn service(state: &AppState) -> ApiResult<&std::sync::Arc<TrustService>> {
    state
        .trust
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("reputation and credit are kept by the control plane"))
}

/// Parameters of the reputation route.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReputationParams {
    /// The caller's trusted operators (hex keys, comma-separated): the seeds
    /// of the caller's attestation trust.
    pub trusted: Option<String>,
}

pub use orchestrator_api::{Attested, Reputation};

fn parse_keys(list: Option<&str>) -> ApiResult<Vec<PublicKey>> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<PublicKey>()
                .map_err(|e| ApiError::bad_request(format!("trusted: {e}")))
        })
        .collect()
}

/// `GET /api/v1/nodes/{id}/reputation`.
#[utoipa::path(get, path = "/api/v1/nodes/{id}/reputation", tag = "trust",
    params(("id" = String, Path, description = "Node id (hex)"), ReputationParams),
    responses((status = 200, body = Reputation), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn reputation(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    q: Result<Query<ReputationParams>, QueryRejection>,
) -> ApiResult<Json<Reputation>> {
    let p = query(q)?;
    let trusted = parse_keys(p.trusted.as_deref())?;
    let id: NodeId = id
        .parse()
        .map_err(|e| ApiError::bad_request(format!("node id: {e}")))?;
    let node = state
        .orch
        .get_node(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no node {id}")))?;
    let trust = service(&state)?;
    Ok(Json(view(trust, &caller.key, &trusted, &node)))
}

/// What `caller` sees of `node`'s reputation through `trusted` operators.
fn view(
    trust: &TrustService,
    caller: &PublicKey,
    trusted: &[PublicKey],
    node: &orchestrator_shared_types::Node,
) -> Reputation {
    let c = trust
        .engine()
        .components(caller, trusted, &node.id, Utc::now());
    Reputation {
        node: node.id,
        operator: node.operator,
        uptime: c.uptime,
        reliability: c.reliability,
        honesty: c.honesty,
        age: c.age,
        attestation_trust: c.attestation_trust,
        composite: c.composite,
        active_days: c.active_days,
        qualifying_attestations: c.qualifying_attestations,
    }
}

/// Parameters of the route of every node's reputation.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReputationsParams {
    /// The caller's trusted operators (hex keys, comma-separated).
    pub trusted: Option<String>,
    /// Items per page, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// `GET /api/v1/reputation`: a page of every node's reputation as the
/// caller sees it, by node id (a page of nodes needs no call per node).
#[utoipa::path(get, path = "/api/v1/reputation", tag = "trust",
    params(ReputationsParams),
    responses((status = 200, body = Page<Reputation>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn reputations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<ReputationsParams>, QueryRejection>,
) -> ApiResult<Json<Page<Reputation>>> {
    let p = query(q)?;
    let trusted = parse_keys(p.trusted.as_deref())?;
    let page = crate::PageParams {
        limit: p.limit,
        cursor: p.cursor,
    };
    let trust = service(&state)?;
    let mut nodes = state.orch.list_nodes().await?;
    nodes.sort_by_key(|n| n.id);
    let views = nodes
        .iter()
        .map(|n| view(trust, &caller.key, &trusted, n))
        .collect();
    Ok(Json(crate::paginate(views, &page, |r: &Reputation| {
        r.node.to_string()
    })?))
}

/// `POST /api/v1/attestations`: an attestation signed by its issuer, who must
/// be the caller (`{"body": {issuer, subject, weight, issued_at, expires_at}, "signature": HEX}`).
#[utoipa::path(post, path = "/api/v1/attestations", tag = "trust",
    request_body(content = serde_json::Value, description = "A signed attestation"),
    responses((status = 201, body = Attested), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn attest(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Attested>)> {
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let signed: Signed<Attestation> = orchestrator_shared_types::manifest::from_json(text)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if signed.body.issuer != caller.key {
        return Err(ApiError::forbidden(format!(
            "issuer: {} is not the caller ({}); operators attest for themselves",
            signed.body.issuer, caller.key
        )));
    }
    let a = signed.body.clone();
    let trust = service(&state)?;
    let new = trust.append(Entry::Attestation(signed)).await?;
    if new {
        // The subject's credit limit follows at once, not at the next
        // periodic refresh.
        if let Some(credits) = trust.credits() {
            credits.refresh_limits(trust.engine()).await;
        }
    }
    Ok((
        if new {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(Attested {
            issuer: a.issuer,
            subject: a.subject,
            weight: a.weight,
            expires_at: a.expires_at,
            new,
        }),
    ))
}

/// `GET /api/v1/trust/policy`: the caller's pushed trust policy (`{}` when
/// none was pushed).
#[utoipa::path(get, path = "/api/v1/trust/policy", tag = "trust",
    responses((status = 200, body = TrustRules), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn get_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<TrustRules>> {
    Ok(Json(state.orch.trust_policy(&caller.key).await?))
}

/// `PUT /api/v1/trust/policy`: replaces the caller's trust policy, which the
/// daemon then enforces on every workload the caller owns, whichever client
/// created it, together with each workload's own `trust` block. `{}`
/// removes it. The user's in person only: an agent token is refused.
#[utoipa::path(put, path = "/api/v1/trust/policy", tag = "trust",
    request_body = TrustRules,
    responses((status = 200, body = TrustRules), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn put_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<TrustRules>> {
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let rules: TrustRules = orchestrator_shared_types::manifest::from_json(text)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    rules.validate().map_err(ApiError::bad_request)?;
    state.orch.set_trust_policy(&caller.key, &rules).await?;
    tracing::info!(user = %caller.key, empty = rules.is_empty(), "trust policy set");
    Ok(Json(rules))
}
