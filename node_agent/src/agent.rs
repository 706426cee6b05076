//! The node agent (`/agent/v1`): the control plane's hands on this node. It
//! runs containers on the local runtime, and accepts only requests signed by
//! the key of a live member whose signed gossip record says it is the
//! control plane, for this node's cluster (the audience, SPEC §11), over a
//! mutual-TLS connection whose certificate is that same key ([`peer_tls`]):
//! a signature without the connection (captured, or sent in clear) is
//! refused. Replays within the skew window are refused. Once admitted, a
//! call must carry the control-plane term in force, if any ([`crate::term`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cluster_manager_interface::ClusterManager;
use container_runtime_interface::{
    ContainerRuntime, ContainerSpec, LogOptions, RuntimeError, VolumeRef,
};
use futures::StreamExt;
use orchestrator_shared_types::{ContainerId, NodeId, NodeStatus, PublicKey};
use serde::Deserialize;
use tracing::{info, warn};

use crate::wire::{CreateContainer, Created, Stop, WireError};
use cluster_manager_interface::is_control_plane_of;
use peer_tls::PeerInfo;
use signed_http::{Admission, Limits, Rejection, ReplayCache, SignedLayer};

/// Largest agent request body.
const BODY_LIMIT: usize = 1 << 20;

/// What the agent routes need.
#[derive(Clone)]
pub struct AgentState {
    /// The local runtime.
    pub runtime: Arc<dyn ContainerRuntime>,
    /// This node.
    pub node: NodeId,
    /// Membership, to tell who may call.
    pub cluster: Arc<dyn ClusterManager>,
    /// Signatures already seen.
    pub replays: Arc<ReplayCache>,
    /// Allowed clock skew, in seconds.
    pub max_skew_seconds: i64,
    /// The audience calls must be signed for: this node's cluster id.
    pub audience: Arc<str>,
    /// This node's gossip keys, changed by the control plane
    /// ([`crate::gossip_keys`]); `None` when gossip is not sealed.
    pub gossip_keys: Option<Arc<dyn crate::gossip_keys::GossipKeyStore>>,
    /// Where the control plane's directory of names and owners goes
    /// ([`crate::directory`]); `None` on a node without a bridge network.
    pub directory: Option<Arc<dyn crate::directory::DirectorySink>>,
    /// The control-plane term calls must carry ([`crate::term`]): the
    /// highest seen, which shuts out a leader whose term is over; `None`
    /// checks no term.
    pub terms: Option<Arc<crate::term::TermGate>>,
}

/// Boxed: the body is large, and every handler returns it.
struct AgentError(StatusCode, Box<WireError>);

impl IntoResponse for AgentError {
    fn into_response(self) -> Response {
        (self.0, Json(*self.1)).into_response()
    }
}

impl From<RuntimeError> for AgentError {
    fn from(e: RuntimeError) -> Self {
        let (status, body) = WireError::from_runtime(&e);
        AgentError(status, Box::new(body))
    }
}

fn denied(status: StatusCode, code: &str, message: impl Into<String>) -> AgentError {
    AgentError(status, Box::new(WireError::new(code, message)))
}

type AgentResult<T> = Result<T, AgentError>;

/// Admits only the key of a live member that is a control plane for this
/// node: a pinned control-plane key when keys are pinned (a label claiming
/// the role changes nothing), else one whose signed record says so.
#[derive(Clone)]
struct ControlPlaneOnly {
    cluster: Arc<dyn ClusterManager>,
}

impl Admission for ControlPlaneOnly {
    type Identity = NodeId;

    async fn admit(&self, key: PublicKey, parts: &Parts) -> Result<NodeId, Rejection> {
        let caller = NodeId(key.0);
        let connection = parts
            .extensions
            .get::<ConnectInfo<PeerInfo>>()
            .and_then(|ConnectInfo(info)| info.node);
        if connection != Some(caller) {
            warn!(caller = %caller.short(), connection = ?connection.map(|n| n.short()),
                "agent call refused: not over the caller's own mutual-TLS connection");
            return Err(Rejection::forbidden(format!(
                "agent calls must come over mutual TLS from the calling node itself \
                 ({caller} signed, the connection is {})",
                connection.map_or_else(|| "not a node's".to_owned(), |n| n.to_string())
            )));
        }
        let member = self.cluster.get_node(&caller).await.ok().flatten();
        let pinned = self.cluster.pinned_control_planes();
        // A pinned key is the control plane even before its gossip record
        // arrives here (a node that just joined); once it is heard, it must
        // be live.
        let allowed = member.as_ref().map_or(pinned.contains(&caller), |n| {
            n.status != NodeStatus::Down && is_control_plane_of(n, &pinned)
        });
        if !allowed {
            warn!(caller = %caller.short(), member = member.is_some(), "agent call refused: not the live control plane");
            return Err(Rejection::forbidden(format!(
                "{caller} is not a live control-plane member of this cluster"
            )));
        }
        Ok(caller)
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> AgentResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| denied(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))
}

async fn init(State(s): State<AgentState>) -> AgentResult<StatusCode> {
    s.runtime.init_node(s.node).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create(State(s): State<AgentState>, body: Bytes) -> AgentResult<Response> {
    let req: CreateContainer = parse_json(&body)?;
    let spec = ContainerSpec {
        instance_id: req.instance_id,
        workload_id: req.workload_id,
        config: req.config,
        labels: req.labels,
        volumes: req.volumes,
        secrets: req.secrets,
    };
    info!(instance = %spec.instance_id, container = %spec.config.name, "agent: creating container");
    let id = s.runtime.create_container(s.node, &spec).await?;
    Ok((StatusCode::CREATED, Json(Created { id })).into_response())
}

async fn list(State(s): State<AgentState>) -> AgentResult<Response> {
    Ok(Json(s.runtime.list_containers(s.node).await?).into_response())
}

async fn status(State(s): State<AgentState>, Path(id): Path<String>) -> AgentResult<Response> {
    Ok(Json(s.runtime.get_container_status(&ContainerId(id)).await?).into_response())
}

async fn remove(State(s): State<AgentState>, Path(id): Path<String>) -> AgentResult<StatusCode> {
    s.runtime.remove_container(&ContainerId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stop(
    State(s): State<AgentState>,
    Path(id): Path<String>,
    body: Bytes,
) -> AgentResult<StatusCode> {
    let req: Stop = parse_json(&body)?;
    s.runtime
        .stop_container(&ContainerId(id), Duration::from_millis(req.grace_ms))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Tail {
    tail: Option<usize>,
}

async fn logs(
    State(s): State<AgentState>,
    Path(id): Path<String>,
    Query(q): Query<Tail>,
) -> AgentResult<Response> {
    let lines = s
        .runtime
        .get_container_logs(&ContainerId(id), LogOptions { tail: q.tail })
        .await?;
    Ok(Json(lines).into_response())
}

async fn follow(State(s): State<AgentState>, Path(id): Path<String>) -> AgentResult<Response> {
    let lines = s.runtime.follow_container_logs(&ContainerId(id)).await?;
    let body = lines.map(|l| {
        let mut line = serde_json::to_vec(&l).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    Ok((
        [("content-type", "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response())
}

async fn usage(State(s): State<AgentState>) -> AgentResult<Response> {
    Ok(Json(s.runtime.usage(s.node).await?).into_response())
}

async fn container_usage(
    State(s): State<AgentState>,
    Path(id): Path<String>,
) -> AgentResult<Response> {
    Ok(Json(s.runtime.container_usage(&ContainerId(id)).await?).into_response())
}

async fn delete_volume(
    State(s): State<AgentState>,
    Path((owner, name)): Path<(String, String)>,
) -> AgentResult<StatusCode> {
    let owner: PublicKey = owner.parse().map_err(|e| {
        denied(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("owner: {e}"),
        )
    })?;
    if !orchestrator_shared_types::validation::is_dns_label(&name) {
        return Err(denied(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{name:?} is not a volume name"),
        ));
    }
    let volume = VolumeRef { owner, name };
    info!(volume = %volume, "agent: deleting volume");
    s.runtime.delete_volume(s.node, &volume).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The agent routes, authenticated.
pub fn router(state: AgentState) -> Router {
    Router::new()
        .route("/agent/v1/init", post(init))
        .route("/agent/v1/containers", post(create).get(list))
        .route("/agent/v1/containers/{id}", get(status).delete(remove))
        .route("/agent/v1/containers/{id}/stop", post(stop))
        .route("/agent/v1/containers/{id}/logs", get(logs))
        .route("/agent/v1/containers/{id}/logs/follow", get(follow))
        .route("/agent/v1/containers/{id}/usage", get(container_usage))
        .route("/agent/v1/usage", get(usage))
        .route(
            "/agent/v1/volumes/{owner}/{name}",
            axum::routing::delete(delete_volume),
        )
        .route(
            crate::gossip_keys::GOSSIP_KEYS_PATH,
            post(crate::gossip_keys::change),
        )
        .route(
            crate::directory::DIRECTORY_PATH,
            axum::routing::put(crate::directory::put),
        )
        // Inside the signed layer (route layers added later wrap the
        // earlier ones): only an admitted caller's term reaches the gate.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::term::check,
        ))
        .route_layer(SignedLayer::new(
            ControlPlaneOnly {
                cluster: Arc::clone(&state.cluster),
            },
            Limits {
                body_limit: BODY_LIMIT,
                max_skew_seconds: state.max_skew_seconds,
                audience: Arc::clone(&state.audience),
            },
            Arc::clone(&state.replays),
        ))
        .with_state(state)
}
