//! Configuration of the reconciler.

use std::time::Duration;

/// How the reconciler paces itself.
#[derive(Clone, Debug)]
pub struct ReconcilerConfig {
    /// Most workloads reconciled at once.
    pub concurrency: usize,
    /// Every workload is reconciled at least this often, so drift is repaired
    /// even when an event was missed.
    pub resync_period: Duration,
    /// First retry delay after a failed reconcile.
    pub error_backoff_base: Duration,
    /// Largest retry delay after failed reconciles.
    pub error_backoff_max: Duration,
    /// First delay before restarting an exited container (doubles per restart).
    pub restart_backoff_base: Duration,
    /// Largest delay before restarting an exited container.
    pub restart_backoff_max: Duration,
    /// A container that ran this long without exiting resets its restart back-off.
    pub restart_backoff_reset: Duration,
    /// Grace period between SIGTERM and SIGKILL when stopping containers.
    pub stop_grace: Duration,
    /// How long a workload with unplaceable replicas waits before trying again
    /// (node changes retry it sooner).
    pub unplaced_retry: Duration,
    /// Instances on a node that is gone this long are forgotten.
    pub lost_instance_gc: Duration,
    /// A container must have run this long before a sweep may remove it as
    /// owned by no instance (its record may not be written yet).
    pub sweep_grace: Duration,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            resync_period: Duration::from_secs(30),
            error_backoff_base: Duration::from_millis(200),
            error_backoff_max: Duration::from_secs(60),
            restart_backoff_base: Duration::from_secs(1),
            restart_backoff_max: Duration::from_secs(300),
            restart_backoff_reset: Duration::from_secs(600),
            stop_grace: Duration::from_secs(10),
            unplaced_retry: Duration::from_secs(10),
            lost_instance_gc: Duration::from_secs(3600),
            sweep_grace: Duration::from_secs(10),
        }
    }
}

impl ReconcilerConfig {
    /// Short delays for tests.
    pub fn for_test() -> Self {
        Self {
            resync_period: Duration::from_millis(500),
            error_backoff_base: Duration::from_millis(20),
            error_backoff_max: Duration::from_millis(500),
            restart_backoff_base: Duration::from_millis(50),
            restart_backoff_max: Duration::from_secs(2),
            stop_grace: Duration::from_millis(100),
            unplaced_retry: Duration::from_millis(200),
            sweep_grace: Duration::from_millis(300),
            ..Self::default()
        }
    }

    /// Checks the values make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.concurrency == 0 {
            return Err("reconcile concurrency must be at least 1".into());
        }
        if self.resync_period.is_zero() {
            return Err("resync period must be more than 0".into());
        }
        if self.restart_backoff_base > self.restart_backoff_max {
            return Err("restart back-off base exceeds its maximum".into());
        }
        if self.error_backoff_base > self.error_backoff_max {
            return Err("error back-off base exceeds its maximum".into());
        }
        Ok(())
    }

    /// Delay before restart number `restarts + 1`.
    pub fn restart_delay(&self, restarts: u32) -> Duration {
        self.restart_backoff_base
            .saturating_mul(1u32 << restarts.min(20))
            .min(self.restart_backoff_max)
    }
}
