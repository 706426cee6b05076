//! Middleware that records every HTTP request in the [`Metrics`].

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::Metrics;

/// Route label of a request that matched no route (the fallback), so unknown
/// paths cannot create unbounded series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// axum middleware counting requests in `orchestrator_http_requests_total`
/// and timing them in `orchestrator_http_request_duration_seconds`.
///
/// The `route` label is the route template (`/api/v1/workloads/{ref}`), or
/// [`UNMATCHED_ROUTE`]; the duration runs until the response headers are
/// ready (a streamed body is not included). Mount it with
/// `router.layer(axum::middleware::from_fn_with_state(metrics, track_http))`
/// after the routes are added, so that the matched path is known.
pub async fn track_http(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe_http(method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// The standard methods by name; anything else as `other`, to bound the series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}
