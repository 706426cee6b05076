//! Cluster admission routes, on a control plane that created its cluster:
//! issuing join tokens (admin keys, or the control plane's own node key, so
//! `orchestrator_daemon join-token` on its machine works), admitting a node
//! (`POST /api/v1/cluster/join`, outside request signing: the body carries
//! the token's secret and the joiner's signature), listing and removing
//! members.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use orchestrator_admission::{Admission, Error, Member, Rotation, DEFAULT_TOKEN_TTL};
use orchestrator_api::{
    ClusterMember, JoinAdmitted, JoinTokenIssued, JoinTokenRequest, KeyRotation,
    KeyRotationLeftBehind, MemberRemoved,
};
use orchestrator_shared_types::admission::{AdmissionError, JoinRequest};
use orchestrator_shared_types::{NodeId, PublicKey};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::openapi::CommonErrors;
use super::AppState;

fn service(state: &AppState) -> ApiResult<&Admission> {
    state.admission.as_deref().ok_or_else(|| {
        ApiError::not_found(
            "this node keeps no member list: cluster admission runs on a control plane that \
             created its cluster",
        )
    })
}

fn view(m: Member) -> ClusterMember {
    ClusterMember {
        node_id: m.node_id,
        operator: m.operator,
        role: m.role,
        admitted_at: m.admitted_at,
        token_id: m.token_id,
        subnet: m.subnet.map(|s| s.to_string()),
    }
}

fn api_error(e: Error) -> ApiError {
    match e {
        Error::Refused(r) => {
            let status = match r {
                AdmissionError::Malformed(_) | AdmissionError::WrongCluster { .. } => {
                    StatusCode::BAD_REQUEST
                }
                AdmissionError::NetworkFull(_) => StatusCode::CONFLICT,
                _ => StatusCode::FORBIDDEN,
            };
            ApiError {
                status,
                code: r.code(),
                message: r.to_string(),
            }
        }
        Error::Ttl(_) => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(orchestrator_shared_types::error::chain(&other)),
    }
}

/// Issues a join token.
#[utoipa::path(post, path = "/api/v1/cluster/join-tokens", tag = "cluster",
    request_body = JoinTokenRequest,
    responses((status = 201, description = "The token (a secret)", body = JoinTokenIssued), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn issue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<JoinTokenRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<JoinTokenIssued>)> {
    let admission = service(&state)?;
    let own = PublicKey(admission.node_id().0);
    if !caller.admin && caller.key != own {
        return Err(ApiError::forbidden(
            "only an admin key (or the control plane's own node key) may issue join tokens",
        ));
    }
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let ttl = req
        .ttl_seconds
        .map_or(DEFAULT_TOKEN_TTL, Duration::from_secs);
    let issued = admission
        .issue(req.role.unwrap_or_default(), ttl, caller.key)
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        Json(JoinTokenIssued {
            token: issued.token,
            id: issued.id,
            role: issued.role,
            expires_at: issued.expires_at,
        }),
    ))
}

/// Admits the node that presents a valid token.
#[utoipa::path(post, path = "/api/v1/cluster/join", tag = "cluster",
    request_body = JoinRequest,
    responses((status = 200, description = "Admitted", body = JoinAdmitted), CommonErrors))]
pub async fn join(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    body: Result<Json<JoinRequest>, JsonRejection>,
) -> ApiResult<Json<JoinAdmitted>> {
    let admission = service(&state)?;
    // The answer carries the gossip key: never in clear.
    let tls = extensions
        .get::<axum::extract::ConnectInfo<peer_tls::PeerInfo>>()
        .is_some_and(|c| c.0.tls);
    if !tls {
        return Err(ApiError::bad_request(
            "join over TLS (https://, as `orchestrator_daemon --join` does): the answer \
             carries the cluster's gossip key, which must not cross the network in clear",
        ));
    }
    let Json(req) =
        body.map_err(|e| ApiError::bad_request(format!("not a join request: {}", e.body_text())))?;
    let (member, gossip_key) = admission.admit_with_key(&req).await.map_err(api_error)?;
    Ok(Json(JoinAdmitted {
        cluster_id: admission.cluster_id().to_owned(),
        member: view(member),
        gossip_key: (!gossip_key.is_empty()).then_some(gossip_key),
        cluster_cidr: admission.network().map(|n| n.cidr.to_string()),
    }))
}

/// The admitted members.
#[utoipa::path(get, path = "/api/v1/cluster/members", tag = "cluster",
    responses((status = 200, description = "The members", body = Vec<ClusterMember>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn members(State(state): State<AppState>) -> ApiResult<Json<Vec<ClusterMember>>> {
    let members = service(&state)?.members().await.map_err(api_error)?;
    Ok(Json(members.into_iter().map(view).collect()))
}

fn rotation_view(r: Rotation) -> Option<KeyRotation> {
    match r {
        Rotation::NotConfigured => None,
        Rotation::Rotated(report) => Some(KeyRotation {
            complete: report.is_complete(),
            key_id: Some(report.key_id),
            rotated: report.rotated,
            left_behind: report
                .left_behind
                .into_iter()
                .map(|l| KeyRotationLeftBehind {
                    node_id: l.node_id,
                    reason: l.reason,
                })
                .collect(),
            error: None,
        }),
        Rotation::Failed(e) => Some(KeyRotation {
            complete: false,
            key_id: None,
            rotated: Vec::new(),
            left_behind: Vec::new(),
            error: Some(e.to_string()),
        }),
    }
}

/// Removes a member: it is dropped from the signed member list, then the
/// gossip key is rotated to the remaining members; the answer comes once the
/// rotation finished and says whether it was complete.
#[utoipa::path(delete, path = "/api/v1/cluster/members/{id}", tag = "cluster",
    params(("id" = String, Path, description = "Node id (hex)")),
    responses((status = 200, description = "The removed member and the key rotation", body = MemberRemoved), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<MemberRemoved>> {
    let admission = service(&state)?;
    if !caller.admin {
        return Err(ApiError::forbidden("only an admin key may remove a member"));
    }
    let id: NodeId = id
        .parse()
        .map_err(|e| ApiError::bad_request(format!("id: {e}")))?;
    if id == admission.node_id() {
        return Err(ApiError::bad_request(
            "the control plane cannot remove itself",
        ));
    }
    let members = admission.members().await.map_err(api_error)?;
    let member = members
        .into_iter()
        .find(|m| m.node_id == id)
        .ok_or_else(|| ApiError::not_found(format!("node {id} is not a member")))?;
    let removal = admission.remove(&id).await.map_err(api_error)?;
    Ok(Json(MemberRemoved {
        member: view(member),
        key_rotation: removal.rotation.and_then(rotation_view),
    }))
}
