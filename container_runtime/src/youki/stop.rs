//! Stopping a container: SIGTERM, then SIGKILL after the grace period.

use std::time::Duration;

use container_runtime_interface::Result;
use nix::sys::signal::Signal;
use orchestrator_shared_types::ContainerId;

use super::entry::lock;
use super::lifecycle::op_error;
use super::{process, YoukiRuntime};

impl YoukiRuntime {
    pub(super) async fn stop(&self, id: &ContainerId, grace: Duration) -> Result<()> {
        let entry = self.entry_or_not_found(id)?;
        let Some((pid, ticks)) = entry.pid() else {
            return Ok(());
        };
        if !entry.is_running() {
            return Ok(());
        }
        let adopted = lock(&entry.live).adopted;
        if adopted && ticks.is_some_and(|t| !process::is_alive(pid, t)) {
            return Ok(());
        }
        entry.probes.cancel();
        let mut exited = entry.exited.subscribe();
        if !grace.is_zero() {
            process::signal(pid, Signal::SIGTERM).map_err(|e| op_error("stopping", id, e))?;
            let _ = tokio::time::timeout(grace, exited.wait_for(|e| *e)).await;
        }
        if !*exited.borrow() {
            process::signal(pid, Signal::SIGKILL).map_err(|e| op_error("killing", id, e))?;
            if tokio::time::timeout(Duration::from_secs(10), exited.wait_for(|e| *e))
                .await
                .is_err()
            {
                return Err(op_error(
                    "stopping",
                    id,
                    "the process did not exit 10 s after SIGKILL",
                ));
            }
        }
        Ok(())
    }
}
