//! The reconciler (SPEC §6): a `tokio::select!` loop over workload changes,
//! cluster events, runtime status changes, its command channel, a resync
//! tick and cancellation, feeding a de-duplicating [`WorkQueue`] whose due
//! keys run as concurrent reconcile tasks. Shaped like kube-rs' controller:
//! a pass returns an [`Action`], and [`error_policy`] chooses the retry of a
//! failed one by the kind of error.
//!
//! - [`context`]: the components and shared state a pass works with.
//! - [`sense`], [`compare`], [`plan`], [`actuate`]: the four steps of a pass.
//! - [`reconcile`]: one pass of one workload.
//! - [`action`]: what a pass asks of the queue, and the error policy.
//! - [`drain`]: drain intents, carried out by the passes.
//! - [`status`]: the workload statuses the passes count, and their reader.
//! - [`sweep`]: removal of containers that no instance owns.
//! - `volumes`: instances that use volumes placed on their volumes' node.

pub mod action;
pub mod actuate;
pub mod compare;
pub mod context;
pub mod drain;
pub mod plan;
pub mod reconcile;
pub(crate) mod secrets;
pub mod sense;
pub mod status;
pub mod sweep;
pub(crate) mod volumes;

mod event_loop;
#[cfg(test)]
mod test_fixtures;

use std::collections::HashSet;
use std::sync::Arc;

use orchestrator_shared_types::{InstanceStatus, NodeId, WorkloadId};
use scheduler_interface::Placement;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info};

use crate::config::ReconcilerConfig;
use crate::error::{Error, Result};
use crate::events::ReconcileEvent;
use crate::nodes::NodeView;
pub use action::{error_policy, Action};
pub use context::{Ctx, Deps};
use event_loop::{Command, Loop};
pub use reconcile::{reconcile, PassOutcome};
pub use status::{StatusReader, WorkloadStatus};

/// Controls a running reconciler.
pub struct ReconcilerHandle {
    ctx: Arc<Ctx>,
    cancel: CancellationToken,
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl ReconcilerHandle {
    /// The shared context (components, node view, events).
    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// Actions as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<ReconcileEvent> {
        self.ctx.events.subscribe()
    }

    /// Asks for a reconcile of `id` now.
    pub fn trigger(&self, id: WorkloadId) {
        if self.commands.send(Command::Reconcile(id)).is_err() {
            debug!(workload = %id, "reconciler stopped; trigger dropped");
        }
    }

    /// Runs a pass of `id` through the queue (so never beside another pass
    /// of it) as soon as it may start, and returns its outcome.
    pub async fn reconcile_now(&self, id: WorkloadId) -> Result<PassOutcome> {
        let (reply, outcome) = oneshot::channel();
        self.commands
            .send(Command::ReconcileNow(id, reply))
            .map_err(|_| Error::ShuttingDown)?;
        outcome.await.map_err(|_| Error::ShuttingDown)?
    }

    /// The workload statuses the reconciler counts, read-only.
    pub fn statuses(&self) -> StatusReader {
        self.ctx.status_reader()
    }

    /// Records the intent to drain `node`: every workload with an instance
    /// there is queued, and its passes replace those instances elsewhere
    /// within its `max_surge` and `max_unavailable`. Returns once the intent
    /// is recorded, with the number of workloads queued.
    pub async fn drain(&self, node: NodeId) -> Result<usize> {
        let (done, queued) = oneshot::channel();
        self.commands
            .send(Command::Drain(node, done))
            .map_err(|_| Error::ShuttingDown)?;
        queued.await.map_err(|_| Error::ShuttingDown)
    }

    /// Drops the intent to drain `node` (it was uncordoned): what has not
    /// moved yet stays. Returns once no pass that starts later drains it.
    pub async fn undrain(&self, node: NodeId) {
        let (done, dropped) = oneshot::channel();
        if self.commands.send(Command::Undrain(node, done)).is_err() || dropped.await.is_err() {
            debug!(node = %node.short(), "reconciler stopped; undrain dropped");
        }
    }

    /// Whether the loop has ended (stopped or died).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the loop, letting in-flight passes finish within `drain`.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if let Err(e) = self.task.await {
            error!(error = %e, "reconciler task failed");
        }
    }
}

/// Loads the state snapshot and starts the loop. Returns once the snapshot is
/// loaded, so the loop never acts on a partial view.
pub async fn spawn_reconciler(
    config: ReconcilerConfig,
    deps: Deps,
    cancel: CancellationToken,
) -> Result<ReconcilerHandle> {
    config.validate().map_err(Error::Config)?;
    // Subscribe before listing so nothing falls between the two.
    let cluster_rx = deps.cluster.subscribe_to_events();
    let store_rx = deps.store.watch();
    let runtime_rx = deps.runtime.subscribe_status();

    let nodes = NodeView::new(deps.cluster.list_nodes().await?);
    let ctx = Arc::new(Ctx::new(deps, config, nodes));
    let known = load_snapshot(&ctx).await?;

    let (commands, commands_rx) = mpsc::unbounded_channel();
    let tracker = TaskTracker::new();
    for node in ctx
        .nodes
        .list()
        .iter()
        .filter(|n| !ctx.nodes.is_lost(&n.id))
    {
        sweep::spawn_sweep(&tracker, Arc::clone(&ctx), node.id);
    }
    let run = Loop::new(Arc::clone(&ctx), known, tracker, cancel.clone());
    let task = tokio::spawn(run.run(cluster_rx, store_rx, runtime_rx, commands_rx));
    Ok(ReconcilerHandle {
        ctx,
        cancel,
        commands,
        task,
    })
}

/// Reads every workload and instance, re-reserves live placements, and returns
/// the workloads to reconcile first (including deleted ones that left instances).
async fn load_snapshot(ctx: &Ctx) -> Result<HashSet<WorkloadId>> {
    let store = &ctx.deps.store;
    let (workloads, instances) = tokio::try_join!(store.list_workloads(), store.list_instances())?;
    let requests: std::collections::HashMap<WorkloadId, _> = workloads
        .iter()
        .map(|w| (w.id, (w.spec.instance_request(), w.spec.host_ports())))
        .collect();
    let placements: Vec<Placement> = instances
        .iter()
        .filter(|i| matches!(i.status, InstanceStatus::Pending | InstanceStatus::Running))
        .filter(|i| !ctx.nodes.is_lost(&i.node_id))
        .filter_map(|i| {
            requests.get(&i.workload_id).map(|(r, ports)| Placement {
                instance: i.id,
                node: i.node_id,
                resources: *r,
                host_ports: ports.clone(),
            })
        })
        .collect();
    ctx.deps.scheduler.record_placements(&placements);
    let mut known: HashSet<WorkloadId> = workloads.iter().map(|w| w.id).collect();
    known.extend(instances.iter().map(|i| i.workload_id));
    info!(
        workloads = workloads.len(),
        instances = instances.len(),
        "state loaded"
    );
    Ok(known)
}
