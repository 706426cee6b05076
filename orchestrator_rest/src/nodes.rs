//! Node routes and the cluster status.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use orchestrator_shared_types::{Node, NodeId};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::openapi::CommonErrors;
use super::workloads::query;
use super::{paginate, AppState, Page, PageParams};
use orchestrator_core::api::nodes::ClusterStatus;

fn parse_id(id: &str) -> ApiResult<NodeId> {
    id.parse()
        .map_err(|e| ApiError::bad_request(format!("id: {e}")))
}

async fn find(state: &AppState, id: &str) -> ApiResult<Node> {
    let id = parse_id(id)?;
    state
        .orch
        .get_node(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("node {id} not found")))
}

/// Only admin keys and the node's operator may cordon, uncordon or drain it.
async fn operable(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Node> {
    let node = find(state, id).await?;
    if !caller.may_act_for(&node.operator) {
        return Err(ApiError::forbidden(format!(
            "only an admin key or the operator of node {} may do that",
            node.id
        )));
    }
    Ok(node)
}

/// Every node.
#[utoipa::path(get, path = "/api/v1/nodes", tag = "nodes", params(PageParams),
    responses((status = 200, description = "A page of nodes", body = Page<Node>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn list(
    State(state): State<AppState>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<Page<Node>>> {
    let params = query(q)?;
    let mut nodes = state.orch.list_nodes().await?;
    nodes.sort_by_key(|n| n.id);
    Ok(Json(paginate(nodes, &params, |n| n.id.to_string())?))
}

/// One node.
#[utoipa::path(get, path = "/api/v1/nodes/{id}", tag = "nodes",
    params(("id" = String, Path, description = "Node id (hex)")),
    responses((status = 200, description = "The node", body = Node), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Node>> {
    Ok(Json(find(&state, &id).await?))
}

/// Cordons a node: it keeps what it runs and takes nothing new.
#[utoipa::path(post, path = "/api/v1/nodes/{id}/cordon", tag = "nodes",
    params(("id" = String, Path, description = "Node id (hex)")),
    responses((status = 200, description = "The node", body = Node), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn cordon(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Node>> {
    let node = operable(&state, &caller, &id).await?;
    Ok(Json(state.orch.set_unschedulable(&node.id, true).await?))
}

/// Uncordons a node.
#[utoipa::path(post, path = "/api/v1/nodes/{id}/uncordon", tag = "nodes",
    params(("id" = String, Path, description = "Node id (hex)")),
    responses((status = 200, description = "The node", body = Node), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn uncordon(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Node>> {
    let node = operable(&state, &caller, &id).await?;
    Ok(Json(state.orch.set_unschedulable(&node.id, false).await?))
}

/// Cordons a node and moves its instances elsewhere.
#[utoipa::path(post, path = "/api/v1/nodes/{id}/drain", tag = "nodes",
    params(("id" = String, Path, description = "Node id (hex)")),
    responses((status = 200, description = "The node", body = Node), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn drain(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Node>> {
    let node = operable(&state, &caller, &id).await?;
    Ok(Json(state.orch.drain_node(&node.id).await?))
}

/// Counts and resources of the whole cluster.
#[utoipa::path(get, path = "/api/v1/cluster/status", tag = "cluster",
    responses((status = 200, description = "The cluster", body = ClusterStatus), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn cluster_status(State(state): State<AppState>) -> ApiResult<Json<ClusterStatus>> {
    Ok(Json(state.orch.cluster_status().await?))
}
