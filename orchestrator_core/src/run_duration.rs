//! How long containers ran: `orchestrator_container_run_duration_seconds`.
//!
//! The runtime publishes every state change of a container
//! ([`ContainerRuntime::subscribe_status`]), an exit exactly once, with the
//! times its process started and ended. [`spawn_run_duration_observer`]
//! listens to that stream and observes `finished_at − started_at` of each
//! exit — whether the process ended by itself, was killed, or was stopped by
//! the reconciler — so the histogram measures runs, not the create call
//! (that is `orchestrator_container_create_duration_seconds`).

use std::sync::Arc;

use container_runtime_interface::{ContainerRuntime, ContainerState, ContainerStatus};
use observability::metrics::Metrics;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How long `status`'s container ran, in seconds, if it has exited and the
/// runtime knows both ends of its run.
pub fn run_seconds(status: &ContainerStatus) -> Option<f64> {
    if status.state != ContainerState::Exited {
        return None;
    }
    let (started, finished) = (status.started_at?, status.finished_at?);
    // A clock that stepped back gives a negative span: count it as zero.
    Some(
        (finished - started)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64(),
    )
}

/// Observes the run time of every container exit `runtime` reports, until
/// `cancel` fires or the runtime's stream ends. Subscribes before returning,
/// so no exit after the call is missed (short of the stream lagging, which
/// is logged).
pub fn spawn_run_duration_observer(
    runtime: &Arc<dyn ContainerRuntime>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let mut rx = runtime.subscribe_status();
    tokio::spawn(async move {
        loop {
            let status = tokio::select! {
                () = cancel.cancelled() => return,
                status = rx.recv() => status,
            };
            match status {
                Ok(status) => {
                    if let Some(secs) = run_seconds(&status) {
                        debug!(container = %status.id, seconds = secs, "container run ended");
                        metrics.container_run_duration.observe(secs);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    warn!(
                        missed,
                        "container status stream lagged: some runs are missing from \
                         orchestrator_container_run_duration_seconds"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use orchestrator_shared_types::{ContainerId, InstanceId, NodeId, WorkloadId};

    fn status(state: ContainerState, ran_ms: Option<i64>) -> ContainerStatus {
        let started = Utc.timestamp_opt(1_700_000_000, 0).single();
        ContainerStatus {
            id: ContainerId("c".into()),
            node_id: NodeId([1; 32]),
            instance_id: InstanceId::new(),
            workload_id: WorkloadId::new(),
            name: "main".into(),
            state,
            exit_code: None,
            reason: None,
            started_at: started,
            finished_at: ran_ms
                .and_then(|ms| started.map(|s| s + chrono::Duration::milliseconds(ms))),
            ready: false,
            address: None,
            ports: Vec::new(),
        }
    }

    #[test]
    fn only_exits_with_both_ends_count() {
        assert_eq!(
            run_seconds(&status(ContainerState::Exited, Some(1500))),
            Some(1.5)
        );
        assert_eq!(run_seconds(&status(ContainerState::Running, None)), None);
        assert_eq!(run_seconds(&status(ContainerState::Exited, None)), None);
        assert_eq!(
            run_seconds(&status(ContainerState::Exited, Some(-20))),
            Some(0.0)
        );
    }
}
