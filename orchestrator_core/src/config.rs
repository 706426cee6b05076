//! Configuration of the reconciler.

use std::time::Duration;

use crate::api::quota::OwnerQuotas;
use crate::queue::Backoff;

/// How the reconciler paces itself, and the per-owner quotas the library API
/// enforces.
#[derive(Clone, Debug)]
pub struct ReconcilerConfig {
    /// Most workloads reconciled at once.
    pub concurrency: usize,
    /// Every workload is reconciled at least this often, so drift is repaired
    /// even when an event was missed.
    pub resync_period: Duration,
    /// First retry delay after a reconcile failed because the state store
    /// was unavailable or a container operation failed (doubles per failure).
    pub error_backoff_base: Duration,
    /// Largest retry delay after such failures.
    pub error_backoff_max: Duration,
    /// Retry delays after a reconcile failed because an image could not be
    /// pulled or a container could not be created from it, or for a reason
    /// retrying cannot fix: long, since only a change of the workload helps.
    pub image_backoff: Backoff,
    /// Retry delays after a reconcile failed because a node or the cluster
    /// manager could not be reached: moderate, as nodes return in seconds.
    pub unreachable_backoff: Backoff,
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
    /// Per-owner quotas checked when workloads are applied, scaled or rolled back.
    pub quotas: OwnerQuotas,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            resync_period: Duration::from_secs(30),
            error_backoff_base: Duration::from_millis(200),
            error_backoff_max: Duration::from_secs(60),
            image_backoff: Backoff {
                base: Duration::from_secs(10),
                max: Duration::from_secs(300),
            },
            unreachable_backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
            restart_backoff_base: Duration::from_secs(1),
            restart_backoff_max: Duration::from_secs(300),
            restart_backoff_reset: Duration::from_secs(600),
            stop_grace: Duration::from_secs(10),
            unplaced_retry: Duration::from_secs(10),
            lost_instance_gc: Duration::from_secs(3600),
            sweep_grace: Duration::from_secs(10),
            quotas: OwnerQuotas::default(),
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
            image_backoff: Backoff {
                base: Duration::from_millis(200),
                max: Duration::from_secs(2),
            },
            unreachable_backoff: Backoff {
                base: Duration::from_millis(50),
                max: Duration::from_secs(1),
            },
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
        if self.image_backoff.base > self.image_backoff.max {
            return Err("image back-off base exceeds its maximum".into());
        }
        if self.unreachable_backoff.base > self.unreachable_backoff.max {
            return Err("unreachable back-off base exceeds its maximum".into());
        }
        self.quotas.validate()
    }

    /// Delay before restart number `restarts + 1`.
    pub fn restart_delay(&self, restarts: u32) -> Duration {
        self.restart_backoff_base
            .saturating_mul(1u32 << restarts.min(20))
            .min(self.restart_backoff_max)
    }
}
