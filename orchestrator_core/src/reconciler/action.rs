//! What a pass asks of the queue ([`Action`]), and how soon a failed pass is
//! retried ([`error_policy`]), as in kube-rs' controller.

use std::time::Duration;

use crate::config::ReconcilerConfig;
use crate::error::{Error, ErrorKind};
use crate::queue::Backoff;

/// When a workload is to be reconciled again, besides the periodic resync
/// (which always comes) and changes to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Action {
    /// Run again after this long.
    Requeue(Duration),
    /// Nothing to do until something changes.
    #[default]
    AwaitChange,
}

impl Action {
    /// An action that requeues after `after`, or awaits a change when `None`.
    pub fn from_requeue(after: Option<Duration>) -> Self {
        after.map_or(Action::AwaitChange, Action::Requeue)
    }

    /// The requeue delay, if any.
    pub fn requeue_after(self) -> Option<Duration> {
        match self {
            Action::Requeue(d) => Some(d),
            Action::AwaitChange => None,
        }
    }

    /// The sooner of two actions (a requeue beats waiting for a change).
    pub fn sooner(self, other: Action) -> Action {
        match (self, other) {
            (Action::Requeue(a), Action::Requeue(b)) => Action::Requeue(a.min(b)),
            (Action::Requeue(d), Action::AwaitChange)
            | (Action::AwaitChange, Action::Requeue(d)) => Action::Requeue(d),
            (Action::AwaitChange, Action::AwaitChange) => Action::AwaitChange,
        }
    }
}

/// The back-off a failure of `kind` retries with, if it is retried at all.
pub fn backoff_for(kind: ErrorKind, cfg: &ReconcilerConfig) -> Option<Backoff> {
    let soon = Backoff {
        base: cfg.error_backoff_base,
        max: cfg.error_backoff_max,
    };
    match kind {
        ErrorKind::StoreUnavailable | ErrorKind::Runtime => Some(soon),
        ErrorKind::NodeUnreachable | ErrorKind::Membership => Some(cfg.unreachable_backoff),
        ErrorKind::Image | ErrorKind::Permanent => Some(cfg.image_backoff),
        ErrorKind::ShuttingDown => None,
    }
}

/// Chooses what follows a failed pass, after `failures` consecutive failures
/// of the workload (this one included): a jittered exponential back-off
/// whose base and cap depend on the kind of error.
///
/// - An image that cannot be pulled (or a container that cannot be created
///   from it) backs off long: only a change of the workload will help, and
///   that change queues a pass anyway.
/// - A store that is unavailable is retried soon, doubling up to a low cap.
/// - An unreachable node or cluster manager is retried at a moderate pace.
/// - Nothing is retried while shutting down.
pub fn error_policy(error: &Error, failures: u32, cfg: &ReconcilerConfig) -> Action {
    match backoff_for(error.kind(), cfg) {
        Some(backoff) => Action::Requeue(backoff.delay(failures.max(1))),
        None => Action::AwaitChange,
    }
}

#[cfg(test)]
#[path = "action_tests.rs"]
mod tests;
