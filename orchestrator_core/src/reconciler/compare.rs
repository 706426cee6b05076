//! Compare: desired versus observed, per instance and for the workload.
//!
//! Each instance gets a [`Verdict`] and, when what was observed differs from its
//! record, the record as it should now read. The workload gets its [`Drift`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use orchestrator_shared_types::{
    InstanceStatus, RestartPolicy, WorkloadDefinition, WorkloadInstance,
};
use tracing::warn;

use super::sense::{Containers, Observed, ObservedInstance};
use crate::config::ReconcilerConfig;

/// What an instance needs.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Running as it should.
    Healthy,
    /// Placed but its containers are not created yet.
    NeedsStart,
    /// Its containers exited and the restart is due now.
    RestartDue,
    /// Its containers exited; restart after this delay.
    RestartLater(Duration),
    /// Finished for good under its restart policy.
    Terminal,
    /// Its node is lost: it does not count, and is replaced.
    Lost,
    /// Lost long enough to forget.
    Forget,
    /// Cannot be observed right now; leave it as recorded.
    Unobservable,
}

/// One instance after comparison.
#[derive(Clone, Debug)]
pub struct Compared {
    /// The record as it should read now.
    pub record: WorkloadInstance,
    /// Whether `record` differs from the stored one.
    pub changed: bool,
    /// The record was `Unknown` (its node was lost) before this pass.
    pub was_lost: bool,
    /// What it needs.
    pub verdict: Verdict,
    /// Its node is being drained.
    pub draining: bool,
}

impl Compared {
    /// Counts toward the replicas (placed, not lost).
    pub fn is_active(&self) -> bool {
        let lost = matches!(self.verdict, Verdict::Lost | Verdict::Forget);
        let still_unknown =
            self.verdict == Verdict::Unobservable && self.record.status == InstanceStatus::Unknown;
        !lost && !still_unknown
    }

    /// Serves now.
    pub fn is_available(&self) -> bool {
        self.is_active() && self.record.status == InstanceStatus::Running
    }

    /// Counts toward the replicas but is to move off a node being drained
    /// (an instance that finished for good stays, as its record is history).
    pub fn is_evicted(&self) -> bool {
        self.draining && self.is_active() && self.verdict != Verdict::Terminal
    }
}

/// How far a workload is from its desired state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Replicas wanted.
    pub desired: u32,
    /// Instances counting toward the replicas.
    pub active: u32,
    /// Instances running.
    pub available: u32,
    /// Active instances of an older generation.
    pub outdated: u32,
    /// Instances on lost nodes.
    pub lost: u32,
    /// Active instances on nodes being drained.
    pub draining: u32,
}

impl Drift {
    /// Whether action is urgent (replicas missing or lost).
    pub fn is_urgent(&self) -> bool {
        self.lost > 0 || self.available < self.desired
    }
}

fn status_for_exit(code: i32) -> InstanceStatus {
    if code == 0 {
        InstanceStatus::Succeeded
    } else {
        InstanceStatus::Failed
    }
}

fn wants_restart(policy: RestartPolicy, code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => code != 0,
        RestartPolicy::Never => false,
    }
}

/// Whether a finished record waits for a restart, and how long.
fn pending_restart(r: &WorkloadInstance, now: DateTime<Utc>) -> Verdict {
    match r.restart_after {
        Some(at) if at <= now => Verdict::RestartDue,
        Some(at) => Verdict::RestartLater((at - now).to_std().unwrap_or_default()),
        None => Verdict::Terminal,
    }
}

fn compare_instance(
    cfg: &ReconcilerConfig,
    policy: RestartPolicy,
    o: &ObservedInstance,
    now: DateTime<Utc>,
) -> Compared {
    let mut r = o.record.clone();
    let was_lost = r.status == InstanceStatus::Unknown;
    let set = |r: &mut WorkloadInstance, status: InstanceStatus, reason: Option<String>| {
        move_to(r, status, reason, now)
    };
    let verdict = if o.node_lost {
        if r.status.is_terminal() && r.restart_after.is_none() {
            Verdict::Terminal
        } else if r.status == InstanceStatus::Unknown {
            let gone_for = (now - r.updated_at).to_std().unwrap_or_default();
            if gone_for >= cfg.lost_instance_gc {
                Verdict::Forget
            } else {
                Verdict::Lost
            }
        } else if set(&mut r, InstanceStatus::Unknown, Some("NodeLost".into())) {
            Verdict::Lost
        } else {
            return unchanged(o, Verdict::Unobservable);
        }
    } else {
        match &o.containers {
            Containers::Unreachable(_) => Verdict::Unobservable,
            Containers::NotStarted => match r.status {
                InstanceStatus::Succeeded | InstanceStatus::Failed => pending_restart(&r, now),
                _ => {
                    let reason = r.reason.clone();
                    if r.status == InstanceStatus::Pending
                        || set(&mut r, InstanceStatus::Pending, reason)
                    {
                        Verdict::NeedsStart
                    } else {
                        return unchanged(o, Verdict::Unobservable);
                    }
                }
            },
            Containers::Running {
                started_at,
                ready,
                address,
                ports,
            } => {
                if r.status != InstanceStatus::Running && set(&mut r, InstanceStatus::Running, None)
                {
                    r.started_at = started_at.or(Some(now));
                }
                if r.status != InstanceStatus::Running {
                    // Refused: a finished record whose containers run again
                    // waits for its restart (which replaces them), or stays
                    // finished.
                    pending_restart(&r, now)
                } else {
                    if r.ready != *ready {
                        r.ready = *ready;
                        r.updated_at = now;
                    }
                    if r.address != *address || r.ports != *ports {
                        r.address.clone_from(address);
                        r.ports.clone_from(ports);
                        r.updated_at = now;
                    }
                    Verdict::Healthy
                }
            }
            Containers::Exited { code, reason } => {
                if r.status.is_terminal() {
                    pending_restart(&r, now)
                } else {
                    let ran_long = r.started_at.is_some_and(|s| {
                        (now - s).to_std().unwrap_or_default() >= cfg.restart_backoff_reset
                    });
                    let step = if ran_long { 0 } else { r.restarts };
                    if !set(&mut r, status_for_exit(*code), Some(reason.clone())) {
                        return unchanged(o, Verdict::Unobservable);
                    }
                    r.last_exit_code = Some(*code);
                    r.finished_at = Some(now);
                    r.restart_after = wants_restart(policy, *code).then(|| {
                        now + chrono::Duration::from_std(cfg.restart_delay(step))
                            .unwrap_or_default()
                    });
                    pending_restart(&r, now)
                }
            }
            Containers::Missing => {
                if r.status.is_terminal() && r.restart_after.is_none() {
                    Verdict::Terminal
                } else {
                    // The containers vanished under us (node or daemon restart):
                    // not a crash, so no back-off.
                    if !set(&mut r, InstanceStatus::Failed, Some("ContainerLost".into())) {
                        return unchanged(o, pending_restart(&o.record, now));
                    }
                    r.finished_at = Some(now);
                    r.restart_after = wants_restart(policy, -1).then_some(now);
                    pending_restart(&r, now)
                }
            }
        }
    };
    if r.status != InstanceStatus::Running {
        r.ready = false;
        r.address = None;
        r.ports.clear();
    }
    let changed = r != o.record;
    Compared {
        record: r,
        changed,
        was_lost,
        verdict,
        draining: o.draining,
    }
}

/// Moves `r` to `status` through the state machine. A move it refuses (say
/// Succeeded -> Running: containers of a finished record seen running) is
/// logged with the instance and leaves `r` as it was; returns whether it moved.
fn move_to(
    r: &mut WorkloadInstance,
    status: InstanceStatus,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> bool {
    match r.transition(status, reason, now) {
        Ok(()) => true,
        Err(e) => {
            warn!(instance = %r.id, workload = %r.workload_id, error = %e,
                "refusing a status change the instance state machine forbids");
            false
        }
    }
}

/// `o` as stored, with `verdict`: what a comparison whose status change the
/// state machine refused yields.
fn unchanged(o: &ObservedInstance, verdict: Verdict) -> Compared {
    Compared {
        record: o.record.clone(),
        changed: false,
        was_lost: o.record.status == InstanceStatus::Unknown,
        verdict,
        draining: o.draining,
    }
}

/// Compares every instance of `obs` against `workload`'s restart policy.
pub fn compare(
    cfg: &ReconcilerConfig,
    workload: &WorkloadDefinition,
    obs: &Observed,
) -> (Vec<Compared>, Drift) {
    let policy = workload.spec.restart_policy;
    let compared: Vec<Compared> = obs
        .instances
        .iter()
        .map(|o| compare_instance(cfg, policy, o, obs.now))
        .collect();
    let mut drift = Drift {
        desired: workload.spec.replicas,
        ..Drift::default()
    };
    for c in &compared {
        if c.is_active() {
            drift.active += 1;
            if c.record.generation != workload.generation {
                drift.outdated += 1;
            }
        } else {
            drift.lost += 1;
        }
        if c.is_available() {
            drift.available += 1;
        }
        if c.is_evicted() {
            drift.draining += 1;
        }
    }
    (compared, drift)
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
