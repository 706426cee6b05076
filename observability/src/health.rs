//! Health of the daemon's components and the unsigned health and metrics
//! routes (`/health`, `/healthz`, `/live`, `/ready`, `/metrics`).
//!
//! [`Health`] holds one [`ComponentStatus`] per named component (the names in
//! [`component`] or any other) and a readiness flag set once startup has
//! finished. [`health_routes`] serves them together with the [`Metrics`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::metrics::{Metrics, TEXT_CONTENT_TYPE};

/// Names of the daemon's usual components.
pub mod component {
    /// The state store.
    pub const STORE: &str = "store";
    /// The reconciler.
    pub const RECONCILER: &str = "reconciler";
    /// The container runtime.
    pub const RUNTIME: &str = "runtime";
    /// The cluster manager.
    pub const CLUSTER: &str = "cluster";
}

/// How one component is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComponentStatus {
    /// Working.
    Ok,
    /// Not working, and why.
    Failing(String),
    /// Not started yet, or starting.
    Starting,
}

/// Health of every component plus the readiness flag; cheap to share as
/// `Arc<Health>` and to update from any task.
#[derive(Debug, Default)]
pub struct Health {
    components: RwLock<BTreeMap<String, ComponentStatus>>,
    ready: AtomicBool,
}

impl Health {
    /// No component yet, not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the status of `component`, adding it if it is new.
    pub fn set(&self, component: impl Into<String>, status: ComponentStatus) {
        let mut components = self
            .components
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        components.insert(component.into(), status);
    }

    /// Marks `component` as working.
    pub fn set_ok(&self, component: impl Into<String>) {
        self.set(component, ComponentStatus::Ok);
    }

    /// Marks `component` as failing, with a message for the operator.
    pub fn set_failing(&self, component: impl Into<String>, message: impl Into<String>) {
        self.set(component, ComponentStatus::Failing(message.into()));
    }

    /// Marks `component` as starting.
    pub fn set_starting(&self, component: impl Into<String>) {
        self.set(component, ComponentStatus::Starting);
    }

    /// Forgets `component`.
    pub fn remove(&self, component: &str) {
        let mut components = self
            .components
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        components.remove(component);
    }

    /// The status of `component`, if known.
    pub fn status(&self, component: &str) -> Option<ComponentStatus> {
        let components = self
            .components
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        components.get(component).cloned()
    }

    /// Sets the readiness flag: `true` once the store is loaded and the
    /// reconciler runs, `false` again while draining.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether startup has finished (`/ready` answers 200).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// A snapshot of every component, `degraded` if any is not `ok`.
    pub fn report(&self) -> HealthReport {
        let components = self
            .components
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let components: BTreeMap<String, ComponentReport> = components
            .iter()
            .map(|(name, status)| (name.clone(), ComponentReport::from(status)))
            .collect();
        let status = if components.values().all(|c| c.status == ComponentState::Ok) {
            OverallStatus::Ok
        } else {
            OverallStatus::Degraded
        };
        HealthReport { status, components }
    }
}

pub use orchestrator_api::health::{ComponentReport, ComponentState, HealthReport, OverallStatus};

impl From<&ComponentStatus> for ComponentReport {
    fn from(status: &ComponentStatus) -> Self {
        match status {
            ComponentStatus::Ok => Self {
                status: ComponentState::Ok,
                message: None,
            },
            ComponentStatus::Failing(message) => Self {
                status: ComponentState::Failing,
                message: Some(message.clone()),
            },
            ComponentStatus::Starting => Self {
                status: ComponentState::Starting,
                message: None,
            },
        }
    }
}

/// Shared state of the health routes.
#[derive(Clone)]
struct HealthState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

/// The unsigned routes: `/health` (JSON [`HealthReport`], 200 when ok, 503
/// when degraded), `/healthz` and `/live` (200 `ok`), `/ready` (200 `ready`
/// or 503 `not ready`) and `/metrics` (Prometheus text format 0.0.4).
pub fn health_routes(health: Arc<Health>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/health", get(health_handler))
        .route("/healthz", get(live_handler))
        .route("/live", get(live_handler))
        .route("/ready", get(ready_handler))
        .route("/metrics", get(metrics_handler))
        .with_state(HealthState { health, metrics })
}

async fn health_handler(State(state): State<HealthState>) -> Response {
    let report = state.health.report();
    let code = match report.status {
        OverallStatus::Ok => StatusCode::OK,
        OverallStatus::Degraded => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(report)).into_response()
}

async fn live_handler() -> &'static str {
    "ok"
}

async fn ready_handler(State(state): State<HealthState>) -> (StatusCode, &'static str) {
    if state.health.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics_handler(State(state): State<HealthState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "serving /metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_health_is_ok_and_not_ready() {
        let health = Health::new();
        assert_eq!(health.report().status, OverallStatus::Ok);
        assert!(!health.is_ready());
    }

    #[test]
    fn any_component_not_ok_degrades() {
        let health = Health::new();
        health.set_ok(component::STORE);
        health.set_starting(component::RECONCILER);
        assert_eq!(health.report().status, OverallStatus::Degraded);
        health.set_ok(component::RECONCILER);
        assert_eq!(health.report().status, OverallStatus::Ok);
        health.set_failing("gpu", "driver missing");
        let report = health.report();
        assert_eq!(report.status, OverallStatus::Degraded);
        assert_eq!(
            report.components["gpu"].message.as_deref(),
            Some("driver missing")
        );
        health.remove("gpu");
        assert_eq!(health.report().status, OverallStatus::Ok);
        assert_eq!(health.status("gpu"), None);
    }

    #[test]
    fn report_serialises_as_documented() {
        let health = Health::new();
        health.set_ok(component::STORE);
        health.set_failing(component::RUNTIME, "socket gone");
        health.set_starting(component::CLUSTER);
        let json = serde_json::to_value(health.report()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "status": "degraded",
                "components": {
                    "store": {"status": "ok"},
                    "runtime": {"status": "failing", "message": "socket gone"},
                    "cluster": {"status": "starting"},
                }
            })
        );
    }
}
