//! The REST API (SPEC §11, `docs/API.md`) on axum: signed routes under
//! `/api/v1`, the WebSocket event stream, health and metrics, and the
//! OpenAPI document generated from the code.
//!
//! - [`auth`]: the signed-request middleware (and agent tokens), the replay
//!   cache, and the counting of refused requests.
//! - [`admission`]: join tokens, joining, the cluster's members.
//! - [`agent_gate`]: revoked agent tokens refused, and agent calls held to
//!   the user's automation policy.
//! - [`audit`]: the audit-log middleware (after authentication: only
//!   authenticated callers are recorded) and routes.
//! - [`info`]: `GET /api/v1/info`, unsigned, with the audience to sign for.
//! - [`error`]: JSON errors.
//! - [`workloads`], [`nodes`], [`agents`], [`volumes`]: the handlers.
//! - [`mcp`]: the streamable-HTTP MCP server at `/mcp`.
//! - [`network`]: `/api/v1/network`, this node's own view of the cluster.
//! - [`openapi`]: the OpenAPI 3 document.
//!
//! May depend on the core's library API, the trust service, agents and audit
//! crates, the signed-HTTP layer and the API's wire types; never on a concrete
//! runtime, store or cluster manager (the daemon hands it `Arc<dyn Trait>`s).

pub mod admission;
pub mod agent_gate;
pub mod agents;
pub mod audit;
pub mod auth;
pub mod credits;
pub mod error;
pub mod info;
pub mod mcp;
pub mod network;
pub mod nodes;
pub mod openapi;
pub mod secrets;
pub mod trust;
pub mod volumes;
pub mod workloads;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use observability::health::Health;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use auth::{AuthConfig, AuthGate, Caller};
use error::{ApiError, ApiResult};
use orchestrator_agents::AgentBook;
use orchestrator_core::api::Orchestrator;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The library API.
    pub orch: Arc<Orchestrator>,
    /// Authentication settings and the replay cache.
    pub gate: AuthGate,
    /// Component health.
    pub health: Arc<Health>,
    /// The audit log, when the daemon keeps one.
    pub audit: Option<Arc<orchestrator_audit::AuditLog>>,
    /// Agents' policies, revocations and approvals.
    pub agents: Arc<AgentBook>,
    /// When set, `/mcp` is served, stopping when this fires.
    pub mcp: Option<CancellationToken>,
    /// Reputation and credit, on a control plane.
    pub trust: Option<Arc<orchestrator_trust::TrustService>>,
    /// Join tokens and members, on a control plane that created its cluster.
    pub admission: Option<Arc<orchestrator_admission::Admission>>,
}

impl AppState {
    /// State for `orch` sharing `gate` (its audience, replay cache and
    /// refusal counting) with other routers.
    pub fn with_gate(orch: Arc<Orchestrator>, gate: AuthGate, health: Arc<Health>) -> Self {
        let agents = Arc::new(AgentBook::new(Arc::clone(&orch.deps().store)));
        Self {
            orch,
            gate,
            health,
            audit: None,
            agents,
            mcp: None,
            trust: None,
            admission: None,
        }
    }

    /// The same state answering reputation, attestation and credit calls from `trust`.
    pub fn with_trust(mut self, trust: Arc<orchestrator_trust::TrustService>) -> Self {
        self.trust = Some(trust);
        self
    }

    /// The same state issuing join tokens and admitting nodes with `admission`.
    pub fn with_admission(mut self, admission: Arc<orchestrator_admission::Admission>) -> Self {
        self.admission = Some(admission);
        self
    }

    /// The same state serving MCP over streamable HTTP at `/mcp` until `cancel` fires.
    pub fn with_mcp(mut self, cancel: CancellationToken) -> Self {
        self.mcp = Some(cancel);
        self
    }

    /// The same state recording mutating calls in `log`.
    pub fn with_audit(mut self, log: Arc<orchestrator_audit::AuditLog>) -> Self {
        self.audit = Some(log);
        self
    }
}

use orchestrator_api::routes::{self, pattern};
pub use orchestrator_api::Page;

/// Paging parameters of list endpoints.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The limit, checked.
    pub fn limit(&self) -> ApiResult<usize> {
        match self.limit {
            None => Ok(100),
            Some(l) if (1..=1000).contains(&l) => Ok(l as usize),
            Some(l) => Err(ApiError::bad_request(format!(
                "limit: {l} is not between 1 and 1000"
            ))),
        }
    }
}

/// Pages `items` (sorted by `key`) after `cursor`.
pub fn paginate<T, F: Fn(&T) -> String>(
    items: Vec<T>,
    params: &PageParams,
    key: F,
) -> ApiResult<Page<T>> {
    let limit = params.limit()?;
    let start = match &params.cursor {
        None => 0,
        Some(c) => items.partition_point(|i| key(i).as_str() <= c.as_str()),
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next_cursor = if rest.len() > limit {
        rest.truncate(limit);
        rest.last().map(&key)
    } else {
        None
    };
    Ok(Page {
        items: rest,
        next_cursor,
    })
}

async fn events(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    observability::websocket::upgrade_events(ws, state.orch.deps().events.clone())
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// The signed API routes with authentication, the automation boundary and
/// the audit log: what an approved call and an `/mcp` tool call run through,
/// in process.
pub fn api_routes(state: &AppState) -> Router {
    let signed = Router::new()
        .route(
            routes::WORKLOADS,
            post(workloads::create).get(workloads::list),
        )
        .route(
            pattern::WORKLOAD,
            get(workloads::get)
                .put(workloads::update)
                .delete(workloads::delete),
        )
        .route(pattern::WORKLOAD_SCALE, post(workloads::scale))
        .route(pattern::WORKLOAD_INSTANCES, get(workloads::instances))
        .route(pattern::WORKLOAD_LOGS, get(workloads::logs))
        .route(routes::VOLUMES, get(volumes::list))
        .route(pattern::VOLUME, axum::routing::delete(volumes::delete))
        .route(routes::NODES, get(nodes::list))
        .route(pattern::NODE, get(nodes::get))
        .route(pattern::NODE_CORDON, post(nodes::cordon))
        .route(pattern::NODE_UNCORDON, post(nodes::uncordon))
        .route(pattern::NODE_DRAIN, post(nodes::drain))
        .route(pattern::NODE_REPUTATION, get(trust::reputation))
        .route(routes::REPUTATION, get(trust::reputations))
        .route(routes::ATTESTATIONS, post(trust::attest))
        .route(routes::SECRETS, get(secrets::list))
        .route(
            pattern::SECRET,
            get(secrets::get).put(secrets::put).delete(secrets::delete),
        )
        .route(
            routes::TRUST_POLICY,
            get(trust::get_policy).put(trust::put_policy),
        )
        .route(routes::CREDITS_BALANCE, get(credits::balance))
        .route(routes::CREDITS_HISTORY, get(credits::history))
        .route(routes::CREDITS_TRANSFER, post(credits::transfer))
        .route(routes::CLUSTER_STATUS, get(nodes::cluster_status))
        .route(routes::CLUSTER_JOIN_TOKENS, post(admission::issue))
        .route(routes::CLUSTER_MEMBERS, get(admission::members))
        .route(
            pattern::CLUSTER_MEMBER,
            axum::routing::delete(admission::remove),
        )
        .route(routes::EVENTS, get(events))
        .route(routes::EVENTS_RECENT, get(agents::recent_events))
        .route(routes::AUDIT, get(audit::list))
        .route(routes::AUDIT_VERIFY, get(audit::verify))
        .route(
            routes::AGENT_POLICY,
            get(agents::get_policy).put(agents::put_policy),
        )
        .route(pattern::AGENT_TOKEN_REVOKE, post(agents::revoke))
        .route(routes::AGENT_TOKENS_REVOKE_ALL, post(agents::revoke_all))
        .route(routes::APPROVALS, get(agents::list_approvals))
        .route(pattern::APPROVAL, get(agents::get_approval))
        .route(pattern::APPROVAL_APPROVE, post(agents::approve))
        .route(pattern::APPROVAL_DENY, post(agents::deny))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            agent_gate::agent_gate,
        ));
    // Layers run outermost last-added: authentication, then revoked agent
    // tokens refused, then the audit log, then the automation policy. So
    // only authenticated callers are recorded (under their verified key),
    // and an agent's call the policy refuses is recorded as refused.
    let signed = match &state.audit {
        Some(log) => signed.route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(log),
            audit::record,
        )),
        None => signed,
    };
    signed
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            agent_gate::refuse_revoked,
        ))
        .route_layer(auth::layer(&state.gate))
        .with_state(state.clone())
}

/// The whole router: signed API routes, WebSocket, health, metrics, OpenAPI,
/// and `/mcp` when the state asks for it.
pub fn router(state: AppState) -> Router {
    let signed = api_routes(&state);
    let metrics_state = Arc::clone(&state.orch.deps().metrics);
    let health =
        observability::health::health_routes(Arc::clone(&state.health), Arc::clone(&metrics_state));
    let mcp = state.mcp.clone().map(|cancel| {
        let service = mcp_server::http_service(Arc::new(mcp::InProcessApi::new(&state)), cancel);
        // The requests the token check refuses are counted as refusals
        // (not audited); the tool calls that get through are recorded on
        // the REST routes they become.
        Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                mcp::require_token,
            ))
    });
    let mut router = Router::new()
        .route(routes::OPENAPI, get(openapi::document))
        // Signed in its body (the token's secret and the node's key), not
        // with the API's headers: the joiner is nobody's user yet.
        .route(routes::CLUSTER_JOIN, post(admission::join))
        .fallback(not_found)
        .with_state(state)
        .merge(signed)
        .merge(health);
    if let Some(mcp) = mcp {
        router = router.merge(mcp);
    }
    router.layer(axum::middleware::from_fn_with_state(
        metrics_state,
        observability::http::track_http,
    ))
}

/// Keeps the gauges of `/metrics` (workloads, instances, nodes, resources)
/// current, refreshing them every `period` until `cancel` fires.
pub async fn refresh_gauges(
    orch: Arc<Orchestrator>,
    period: std::time::Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = orch.refresh_gauges().await {
                    warn!(error = %e, "refreshing the gauges of /metrics");
                }
            }
        }
    }
}

/// Serves `router` on `listener` until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    info!("listening on http://{addr}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}
