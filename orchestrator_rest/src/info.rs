//! `GET /api/v1/info` (unsigned): who this node is and the audience requests
//! to it must be signed for (SPEC §11, signing scheme v2). Answered locally
//! on every node, worker or not, so a client can learn the audience from any
//! node of a cluster.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use orchestrator_api::routes;
pub use orchestrator_api::NodeInfo;

/// `GET /api/v1/info`.
#[utoipa::path(get, path = "/api/v1/info", tag = "info",
    responses((status = 200, body = NodeInfo)))]
pub async fn info(State(info): State<Arc<NodeInfo>>) -> Json<NodeInfo> {
    Json(NodeInfo::clone(&info))
}

/// The info route, answering `info` to anyone.
pub fn router(info: NodeInfo) -> Router {
    Router::new()
        .route(routes::INFO, get(self::info))
        .with_state(Arc::new(info))
}
