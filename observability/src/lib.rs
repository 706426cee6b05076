//! Metrics, tracing, health, the event hub and the events WebSocket
//! (SPEC §13–§14).
//!
//! - [`metrics`]: [`Metrics`], every Prometheus metric (`orchestrator_…`) in
//!   one registry, with the SPEC-name → exposed-name table.
//! - [`http`]: [`track_http`], axum middleware filling the HTTP metrics.
//! - [`health`]: [`Health`] of named components plus readiness, and
//!   [`health_routes`] serving `/health`, `/healthz`, `/live`, `/ready` and
//!   `/metrics`.
//! - [`events`]: [`EventHub`], a broadcast fan-out of [`Event`]s by [`Topic`].
//! - [`websocket`]: [`serve_events`] and [`upgrade_events`] for
//!   `GET /api/v1/events`, and [`events_route`] (unauthenticated, for tests).
//! - [`logging`]: [`init_tracing`], text or JSON logs filtered by `RUST_LOG`.
//! - [`error`]: the crate's [`Error`].

pub mod error;
pub mod events;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod websocket;

pub use error::{Error, Result};
pub use events::{Event, EventHub, RecordedEvent, Topic};
pub use health::{health_routes, ComponentStatus, Health, HealthReport};
pub use http::track_http;
pub use logging::{init_tracing, LogFormat};
pub use metrics::Metrics;
pub use websocket::{events_route, serve_events, serve_subscription, upgrade_events};
