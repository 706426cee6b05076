//! The daemon's life around its parts: the control plane's periodic tasks
//! (gauges, health of the store and the reconciler), and running until
//! SIGINT or SIGTERM with a graceful, bounded shutdown.

use std::sync::Arc;
use std::time::Duration;

use observability::health::Health;
use orchestrator_core::Orchestrator;
use orchestrator_rest as rest;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::DaemonConfig;
use crate::error::{Error, Result};
use crate::run::Daemon;

pub(crate) fn spawn_control_tasks(
    tasks: &TaskTracker,
    orch: &Arc<Orchestrator>,
    health: &Arc<Health>,
    cancel: &CancellationToken,
) {
    tasks.spawn(rest::refresh_gauges(
        Arc::clone(orch),
        Duration::from_secs(1),
        cancel.child_token(),
    ));
    tasks.spawn(watch_health(
        Arc::clone(orch),
        Arc::clone(health),
        cancel.child_token(),
    ));
}

/// Checks the store every few seconds and reports it in `/health`.
async fn watch_health(orch: Arc<Orchestrator>, health: Arc<Health>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {
                match orch.deps().store.health_check().await {
                    Ok(()) => health.set_ok("store"),
                    Err(e) => health.set_failing("store", e.to_string()),
                }
                if orch.is_finished() {
                    health.set_failing("reconciler", "the reconcile loop has stopped");
                }
            }
        }
    }
}

/// How long shutdown may take before the daemon exits anyway.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// How a daemon run by [`run_until_signal`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// In-flight work finished and everything stopped.
    Clean,
    /// Stopping took longer than the shutdown timeout.
    TimedOut,
    /// A second signal came while stopping: the caller should exit at once.
    Forced,
}

/// Starts the daemon, waits for SIGINT or SIGTERM, and shuts down gracefully;
/// a second signal ends the wait at once ([`Shutdown::Forced`]). Exiting the
/// process is left to `main`.
pub async fn run_until_signal(config: DaemonConfig) -> Result<Shutdown> {
    let daemon = Daemon::start(&config).await?;
    info!(runtime = ?config.runtime, store = ?config.store, "orchestrator_daemon running");
    let signal = wait_for_signal().await.map_err(Error::Signals)?;
    info!(signal, "shutting down (send it again to exit at once)");
    let stop = daemon.stop();
    Ok(tokio::select! {
        () = stop => {
            info!("stopped cleanly");
            Shutdown::Clean
        }
        second = wait_for_signal() => {
            warn!(signal = ?second.ok(), "second signal: exiting at once");
            Shutdown::Forced
        }
        () = tokio::time::sleep(SHUTDOWN_TIMEOUT) => {
            warn!("shutdown took longer than {SHUTDOWN_TIMEOUT:?}; exiting");
            Shutdown::TimedOut
        }
    })
}
