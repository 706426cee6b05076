//! Workload routes: apply, list, get, update, delete, scale, instances, logs.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use orchestrator_shared_types::{WorkloadDefinition, WorkloadId, WorkloadInstance, WorkloadSpec};
use serde::Deserialize;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::openapi::CommonErrors;
use super::{paginate, AppState, Page, PageParams};
use orchestrator_api::LogEntry;

pub use orchestrator_api::{ScaleRequest, Workload};

/// Parameters of the logs route.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// Only the last N lines of each container.
    pub tail: Option<usize>,
    /// Keep the response open and stream new lines.
    pub follow: Option<bool>,
}

/// Parses query parameters into our error format.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

fn manifest(headers: &HeaderMap, body: &Bytes) -> ApiResult<WorkloadSpec> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the manifest is not UTF-8"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let parsed = match content_type.as_deref() {
        None | Some("application/json") => WorkloadSpec::from_json(text),
        Some("application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml") => {
            WorkloadSpec::from_yaml(text)
        }
        Some(other) => {
            return Err(ApiError::unsupported_media_type(format!(
                "content type {other} is not accepted: send application/json or application/yaml"
            )))
        }
    };
    parsed.map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The caller's workload named `r`, or any workload with id `r` the caller may act on.
pub async fn resolve(state: &AppState, caller: &Caller, r: &str) -> ApiResult<WorkloadDefinition> {
    if let Ok(id) = r.parse::<WorkloadId>() {
        let w = state
            .orch
            .get_workload(&id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("workload {id} not found")))?;
        if !caller.may_act_for(&w.owner) {
            return Err(ApiError::forbidden(format!(
                "workload {id} belongs to another key"
            )));
        }
        return Ok(w);
    }
    state
        .orch
        .get_workload_by_name(&caller.key, r)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("workload {r:?} not found")))
}

async fn view(state: &AppState, workload: WorkloadDefinition) -> ApiResult<Workload> {
    let status = state.orch.workload_status(&workload).await?;
    Ok(Workload { workload, status })
}

/// Creates a workload, or updates the caller's workload of the same name.
#[utoipa::path(post, path = "/api/v1/workloads", tag = "workloads",
    request_body(content = WorkloadSpec, description = "The manifest, as JSON or (with `Content-Type: application/yaml`) YAML"),
    responses((status = 201, description = "Created", body = Workload), (status = 200, description = "Updated", body = Workload), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let spec = manifest(&headers, &body)?;
    let existed = state
        .orch
        .get_workload_by_name(&caller.key, &spec.name)
        .await?
        .is_some();
    let w = state.orch.apply_workload(caller.key, spec).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view(&state, w).await?)).into_response())
}

/// Lists the caller's workloads (every workload for an admin key).
#[utoipa::path(get, path = "/api/v1/workloads", tag = "workloads", params(PageParams),
    responses((status = 200, description = "A page of workloads", body = Page<Workload>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<Page<Workload>>> {
    let params = query(q)?;
    let mut all: Vec<WorkloadDefinition> = state
        .orch
        .list_workloads()
        .await?
        .into_iter()
        .filter(|w| caller.may_act_for(&w.owner))
        .collect();
    all.sort_by_key(|w| w.id.to_string());
    let page = paginate(all, &params, |w| w.id.to_string())?;
    let mut items = Vec::with_capacity(page.items.len());
    for w in page.items {
        items.push(view(&state, w).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// One workload, by id or by the caller's name for it.
#[utoipa::path(get, path = "/api/v1/workloads/{ref}", tag = "workloads",
    params(("ref" = String, Path, description = "Workload id or name")),
    responses((status = 200, description = "The workload", body = Workload), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
) -> ApiResult<Json<Workload>> {
    let w = resolve(&state, &caller, &r).await?;
    Ok(Json(view(&state, w).await?))
}

/// Replaces a workload's manifest (its name must stay the same).
#[utoipa::path(put, path = "/api/v1/workloads/{ref}", tag = "workloads",
    params(("ref" = String, Path, description = "Workload id or name")),
    request_body(content = WorkloadSpec, description = "The manifest, as JSON or YAML"),
    responses((status = 200, description = "Updated", body = Workload), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Workload>> {
    let w = resolve(&state, &caller, &r).await?;
    let spec = manifest(&headers, &body)?;
    if spec.name != w.spec.name {
        return Err(ApiError::bad_request(format!(
            "name: {:?} differs from the workload's name {:?}; names cannot change",
            spec.name, w.spec.name
        )));
    }
    let updated = state.orch.apply_workload(w.owner, spec).await?;
    Ok(Json(view(&state, updated).await?))
}

/// Deletes a workload; its instances are removed by the reconciler.
#[utoipa::path(delete, path = "/api/v1/workloads/{ref}", tag = "workloads",
    params(("ref" = String, Path, description = "Workload id or name")),
    responses((status = 200, description = "Deleted (as it was)", body = Workload), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
) -> ApiResult<Json<Workload>> {
    let w = resolve(&state, &caller, &r).await?;
    let before = view(&state, w.clone()).await?;
    state.orch.delete_workload(&w.owner, &w.spec.name).await?;
    Ok(Json(before))
}

/// Sets a workload's replica count.
#[utoipa::path(post, path = "/api/v1/workloads/{ref}/scale", tag = "workloads",
    params(("ref" = String, Path, description = "Workload id or name")),
    request_body = ScaleRequest,
    responses((status = 200, description = "Scaled", body = Workload), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn scale(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Workload>> {
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let req: ScaleRequest = orchestrator_shared_types::manifest::from_json(text)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let w = resolve(&state, &caller, &r).await?;
    let scaled = state
        .orch
        .scale(&w.owner, &w.spec.name, req.replicas)
        .await?;
    Ok(Json(view(&state, scaled).await?))
}

/// The instances of a workload.
#[utoipa::path(get, path = "/api/v1/workloads/{ref}/instances", tag = "workloads",
    params(("ref" = String, Path, description = "Workload id or name"), PageParams),
    responses((status = 200, description = "A page of instances", body = Page<WorkloadInstance>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn instances(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<Page<WorkloadInstance>>> {
    let params = query(q)?;
    let w = resolve(&state, &caller, &r).await?;
    let mut all = state.orch.list_instances(&w.id).await?;
    all.sort_by_key(|i| i.id.to_string());
    Ok(Json(paginate(all, &params, |i| i.id.to_string())?))
}

fn ndjson_line(entry: &LogEntry) -> Bytes {
    let mut line = serde_json::to_vec(entry).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// The output of a workload's containers as NDJSON, one `LogEntry` per line.
#[utoipa::path(get, path = "/api/v1/workloads/{ref}/logs", tag = "workloads",
    params(("ref" = String, Path, description = "Workload id or name"), LogParams),
    responses((status = 200, description = "One JSON LogEntry per line", body = LogEntry, content_type = "application/x-ndjson"), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn logs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(r): Path<String>,
    q: Result<Query<LogParams>, QueryRejection>,
) -> ApiResult<Response> {
    let params = query(q)?;
    let w = resolve(&state, &caller, &r).await?;
    let follow = if params.follow == Some(true) {
        Some(state.orch.follow_workload_logs(&w).await?)
    } else {
        None
    };
    let past = state.orch.workload_logs(&w, params.tail).await?;
    let head = futures::stream::iter(past.iter().map(ndjson_line).collect::<Vec<_>>());
    let body = match follow {
        None => Body::from_stream(head.map(Ok::<_, Infallible>)),
        Some(live) => Body::from_stream(
            head.chain(live.map(|e| ndjson_line(&e)))
                .map(Ok::<_, Infallible>),
        ),
    };
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
