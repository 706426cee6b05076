//! Volume routes: the caller's volumes, and deleting (wiping) one.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use orchestrator_core::api::volumes::VolumeView;
use orchestrator_shared_types::MemoryQuantity;

use super::auth::Caller;
use super::error::ApiResult;
use super::openapi::CommonErrors;
use super::workloads::query;
use super::{paginate, AppState, Page, PageParams};

pub use orchestrator_api::Volume;

fn view(v: VolumeView) -> Volume {
    let r = v.record;
    Volume {
        name: r.name,
        node: r.node,
        size: MemoryQuantity(r.size_bytes).to_string(),
        size_bytes: r.size_bytes,
        used_by: v.used_by,
        created_at: r.created_at,
        deleting: r.deleting,
    }
}

/// The caller's volumes, by name: where each lives, its size, and which of
/// the caller's workloads mount it.
#[utoipa::path(get, path = "/api/v1/volumes", tag = "volumes", params(PageParams),
    responses((status = 200, description = "A page of volumes", body = Page<Volume>), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<Page<Volume>>> {
    let params = query(q)?;
    let all: Vec<Volume> = state
        .orch
        .list_volumes(&caller.key)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(Json(paginate(all, &params, |v| v.name.clone())?))
}

/// Deletes one of the caller's volumes: its node overwrites its data and
/// removes it. 409 while a workload of the caller mounts it.
#[utoipa::path(delete, path = "/api/v1/volumes/{name}", tag = "volumes",
    params(("name" = String, Path, description = "Volume name")),
    responses((status = 200, description = "The volume, now wiped", body = Volume), CommonErrors),
    security(("publicKey" = [], "timestamp" = [], "signature" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<Volume>> {
    let record = state.orch.delete_volume(&caller.key, &name).await?;
    tracing::info!(user = %caller.key, volume = %name, "volume deleted");
    Ok(Json(view(VolumeView {
        record,
        used_by: Vec::new(),
    })))
}
