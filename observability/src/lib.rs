//! Metrics, tracing, health, the event hub and the WebSocket (SPEC §13–§14).
//!
//! Empty for now: the API issue fills it with Prometheus metrics, `/health`,
//! the event hub that fans cluster, workload and instance events out to
//! subscribers, and the WebSocket at `/api/v1/events`.
