//! One reconcile pass of one workload: Sense → Compare → Plan → Actuate.

use std::time::Duration;

use orchestrator_shared_types::WorkloadId;
use tracing::{debug, instrument};

use super::action::Action;
use super::actuate::actuate;
use super::compare::{compare, Verdict};
use super::context::Ctx;
use super::plan::{plan, plan_deletion};
use super::sense::sense;
use super::status::WorkloadStatus;
use crate::error::Result;
use crate::events::ReconcileEvent;

/// How soon a workload with instances on a usable but unanswering node is
/// looked at again.
const UNOBSERVED_RETRY: Duration = Duration::from_secs(1);

/// What a pass did and when it wants to run again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassOutcome {
    /// Actions that took effect (0 when the workload was already as desired).
    pub actions: usize,
    /// When to run again (besides the periodic resync and changes).
    pub action: Action,
}

/// Reconciles workload `id`. Idempotent: a second pass with nothing changed
/// does nothing.
#[instrument(skip(ctx), fields(workload = %id))]
pub async fn reconcile(ctx: &Ctx, id: WorkloadId) -> Result<PassOutcome> {
    let observed = sense(ctx, &id).await?;
    let Some(workload) = observed.workload.clone() else {
        let records: Vec<_> = observed.instances.into_iter().map(|o| o.record).collect();
        ctx.forget_status(&id);
        if records.is_empty() {
            ctx.set_unplaced(id, None);
            return Ok(PassOutcome::default());
        }
        let actions = actuate(ctx, None, &[], plan_deletion(records)).await?;
        ctx.set_unplaced(id, None);
        ctx.emit(ReconcileEvent::WorkloadRemoved { workload: id });
        return Ok(PassOutcome {
            actions,
            action: Action::AwaitChange,
        });
    };
    let (compared, drift) = compare(&ctx.config, &workload, &observed);
    // Instances on a node that is back but whose agent does not answer yet
    // (it may still see this control plane as dead): look again soon rather
    // than at the next resync, so duplicates left by a partition go promptly.
    let unobserved = compared
        .iter()
        .any(|c| c.verdict == Verdict::Unobservable)
        .then_some(UNOBSERVED_RETRY);
    let plan = plan(&workload, &compared, drift);
    if plan.is_empty() && plan.requeue.is_none() {
        debug!(?drift, "in desired state");
        if ctx.status(&id, workload.generation).is_none() {
            let records: Vec<_> = observed
                .instances
                .iter()
                .map(|o| o.record.clone())
                .collect();
            ctx.set_status(
                id,
                workload.generation,
                WorkloadStatus::count(&workload, &records),
            );
        }
        return Ok(PassOutcome {
            actions: 0,
            action: Action::from_requeue(unobserved),
        });
    }
    debug!(
        ?drift,
        urgent = drift.is_urgent(),
        actions = plan.len(),
        "acting"
    );
    let mut requeue = match (plan.requeue, unobserved) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let rollback = plan.rollback;
    let actions = actuate(ctx, Some(&workload), &compared, plan).await?;
    if rollback {
        requeue = Some(Duration::ZERO);
    } else if ctx.is_unplaced(&id) {
        requeue = Some(requeue.map_or(ctx.config.unplaced_retry, |r| {
            r.min(ctx.config.unplaced_retry)
        }));
    }
    if actions > 0 || ctx.status(&id, workload.generation).is_none() {
        let records = ctx.deps.store.list_instances_by_workload(&id).await?;
        ctx.set_status(
            id,
            workload.generation,
            WorkloadStatus::count(&workload, &records),
        );
    }
    if actions > 0 {
        ctx.emit(ReconcileEvent::Reconciled {
            workload: id,
            actions,
        });
    }
    Ok(PassOutcome {
        actions,
        action: Action::from_requeue(requeue),
    })
}
