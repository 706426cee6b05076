//! The reconciler (SPEC §6): a `tokio::select!` loop over workload changes,
//! cluster events, runtime status changes, a resync tick and cancellation,
//! feeding a de-duplicating [`WorkQueue`] whose due keys run as concurrent
//! reconcile tasks.
//!
//! - [`context`]: the components and shared state a pass works with.
//! - [`sense`], [`compare`], [`plan`], [`actuate`]: the four steps of a pass.
//! - [`reconcile`]: one pass of one workload.
//! - [`sweep`]: removal of containers that no instance owns.

pub mod actuate;
pub mod compare;
pub mod context;
pub mod plan;
pub mod reconcile;
pub mod sense;
pub mod sweep;

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use cluster_manager_interface::ClusterEvent;
use container_runtime_interface::{ContainerState, ContainerStatus};
use futures::FutureExt;
use observability::events::{Event, Topic};
use orchestrator_shared_types::{InstanceStatus, WorkloadId};
use scheduler_interface::Placement;
use state_store_interface::StoreChange;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::config::ReconcilerConfig;
use crate::error::{Error, Result};
use crate::events::ReconcileEvent;
use crate::nodes::{NodeChange, NodeView};
use crate::queue::{Backoff, WorkQueue};
pub use context::{Ctx, Deps};
pub use reconcile::{reconcile, PassOutcome};

/// Controls a running reconciler.
pub struct ReconcilerHandle {
    ctx: Arc<Ctx>,
    cancel: CancellationToken,
    trigger: mpsc::UnboundedSender<WorkloadId>,
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
        if self.trigger.send(id).is_err() {
            debug!(workload = %id, "reconciler stopped; trigger dropped");
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

    let (trigger, trigger_rx) = mpsc::unbounded_channel();
    let tracker = TaskTracker::new();
    for node in ctx
        .nodes
        .list()
        .iter()
        .filter(|n| !ctx.nodes.is_lost(&n.id))
    {
        sweep::spawn_sweep(&tracker, Arc::clone(&ctx), node.id);
    }
    let run = Loop {
        ctx: Arc::clone(&ctx),
        queue: WorkQueue::new(
            ctx.config.concurrency,
            Backoff {
                base: ctx.config.error_backoff_base,
                max: ctx.config.error_backoff_max,
            },
        ),
        known,
        tasks: JoinSet::new(),
        tracker,
        cancel: cancel.clone(),
        resync_at: None,
        relist: false,
        sweeping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let task = tokio::spawn(run.run(cluster_rx, store_rx, runtime_rx, trigger_rx));
    Ok(ReconcilerHandle {
        ctx,
        cancel,
        trigger,
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
        .map(|w| (w.id, w.spec.instance_request()))
        .collect();
    let placements: Vec<Placement> = instances
        .iter()
        .filter(|i| matches!(i.status, InstanceStatus::Pending | InstanceStatus::Running))
        .filter(|i| !ctx.nodes.is_lost(&i.node_id))
        .filter_map(|i| {
            requests.get(&i.workload_id).map(|r| Placement {
                instance: i.id,
                node: i.node_id,
                resources: *r,
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

struct Loop {
    ctx: Arc<Ctx>,
    queue: WorkQueue<WorkloadId>,
    known: HashSet<WorkloadId>,
    tasks: JoinSet<(WorkloadId, Result<PassOutcome>)>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// A full resync requested after missed events, debounced.
    resync_at: Option<Instant>,
    /// Whether that resync must re-list workloads from the store first.
    relist: bool,
    /// Set while a periodic sweep of orphaned containers runs.
    sweeping: Arc<std::sync::atomic::AtomicBool>,
}

/// How long a resync after missed events waits for more misses to gather.
const LAG_RESYNC_DELAY: Duration = Duration::from_millis(200);

/// How long in-flight passes may take to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Loop {
    /// Sweeps every reachable node for containers no instance owns (one
    /// sweep at a time): a container whose creation outlived the pass that
    /// asked for it, and whose instance was deleted meanwhile, goes within a
    /// resync period instead of waiting for its node to rejoin.
    fn sweep_all(&self) {
        use std::sync::atomic::Ordering;
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let ctx = Arc::clone(&self.ctx);
        let sweeping = Arc::clone(&self.sweeping);
        self.tracker.spawn(async move {
            let nodes: Vec<_> = ctx
                .nodes
                .list()
                .iter()
                .filter(|n| !ctx.nodes.is_lost(&n.id))
                .map(|n| n.id)
                .collect();
            for node in nodes {
                if let Err(e) = sweep::sweep_node(&ctx, node).await {
                    debug!(node = %node.short(), error = %e, "periodic sweep of a node failed");
                }
            }
            sweeping.store(false, Ordering::Release);
        });
    }

    fn enqueue_all(&mut self) {
        for id in &self.known {
            self.queue.schedule_now(*id);
        }
    }

    fn start_due(&mut self) {
        let now = Instant::now();
        while let Some(id) = self.queue.pop_due(now) {
            let ctx = Arc::clone(&self.ctx);
            self.tasks.spawn(async move {
                let started = std::time::Instant::now();
                let res = AssertUnwindSafe(reconcile(&ctx, id)).catch_unwind().await;
                let metrics = &ctx.deps.metrics;
                metrics.reconciliation_cycles.inc();
                metrics
                    .reconciliation_duration
                    .observe(started.elapsed().as_secs_f64());
                if !matches!(res, Ok(Ok(_))) {
                    metrics.reconciliation_errors.inc();
                }
                let res = res.unwrap_or_else(|_| {
                    Err(Error::Panicked {
                        workload: id.to_string(),
                    })
                });
                (id, res)
            });
        }
    }

    fn finished(&mut self, id: WorkloadId, res: Result<PassOutcome>) {
        match res {
            Ok(outcome) => self.queue.complete(id, Ok(outcome.requeue)),
            Err(e) => {
                let failures = self.queue.failures(&id) + 1;
                warn!(workload = %id, error = %e, failures, "reconcile failed; retrying with back-off");
                self.queue.complete(id, Err(()));
            }
        }
    }

    async fn on_store_change(&mut self, change: StoreChange) {
        match change {
            // Published here, before the workload is queued, so that a
            // subscriber sees a change before anything the reconciler does about it.
            StoreChange::WorkloadPut(id) => {
                self.ctx.deps.events.publish(Event::new(
                    Topic::Workloads,
                    "applied",
                    serde_json::json!({"id": id}),
                ));
                self.known.insert(id);
                self.queue.schedule_now(id);
            }
            StoreChange::WorkloadDeleted(id) => {
                self.ctx.deps.events.publish(Event::new(
                    Topic::Workloads,
                    "deleted",
                    serde_json::json!({"id": id}),
                ));
                self.queue.schedule_now(id);
                self.queue.forget(&id);
            }
            _ => {}
        }
    }

    /// Asks for one full resync soon; many missed-event notices make one resync.
    fn request_resync(&mut self, relist: bool) {
        self.relist |= relist;
        self.resync_at
            .get_or_insert_with(|| Instant::now() + LAG_RESYNC_DELAY);
    }

    async fn lag_resync(&mut self) {
        self.resync_at = None;
        if std::mem::take(&mut self.relist) {
            match self.ctx.deps.store.list_workloads().await {
                Ok(ws) => self.known.extend(ws.into_iter().map(|w| w.id)),
                Err(e) => warn!(error = %e, "re-listing workloads after a missed change failed"),
            }
        }
        self.enqueue_all();
    }

    async fn on_cluster_event(&mut self, event: ClusterEvent) {
        let node = event.node_id();
        let (what, data) = match &event {
            ClusterEvent::NodeAdded(n) => ("added", serde_json::to_value(n)),
            ClusterEvent::NodeUpdated(n) => ("updated", serde_json::to_value(n)),
            ClusterEvent::NodeRemoved(id) => ("removed", Ok(serde_json::json!({"id": id}))),
        };
        match data {
            Ok(data) => {
                self.ctx
                    .deps
                    .events
                    .publish(Event::new(Topic::Nodes, what, data));
            }
            Err(e) => warn!(error = %e, "encoding a node event"),
        }
        let change = self.ctx.nodes.apply(&event);
        debug!(node = %node.short(), ?change, "cluster event");
        if matches!(change, NodeChange::Lost | NodeChange::Usable) {
            match self.ctx.deps.store.list_instances_by_node(&node).await {
                Ok(instances) => {
                    for i in instances {
                        self.queue.schedule_now(i.workload_id);
                    }
                }
                Err(e) => {
                    warn!(node = %node.short(), error = %e, "listing a node's instances failed; resyncing all");
                    self.enqueue_all();
                }
            }
        }
        if change == NodeChange::Usable {
            sweep::spawn_sweep(&self.tracker, Arc::clone(&self.ctx), node);
        }
        if matches!(change, NodeChange::Usable | NodeChange::Changed) {
            for id in self.ctx.unplaced() {
                self.queue.schedule_now(id);
            }
        }
    }

    fn on_runtime_status(&mut self, status: ContainerStatus) {
        if status.state != ContainerState::Running && status.workload_id != WorkloadId::SYSTEM {
            self.queue.schedule_now(status.workload_id);
        }
    }

    async fn run(
        mut self,
        mut cluster_rx: broadcast::Receiver<ClusterEvent>,
        mut store_rx: broadcast::Receiver<StoreChange>,
        mut runtime_rx: broadcast::Receiver<ContainerStatus>,
        mut trigger_rx: mpsc::UnboundedReceiver<WorkloadId>,
    ) {
        let mut resync = tokio::time::interval(self.ctx.config.resync_period);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.enqueue_all();
        let (mut cluster_open, mut store_open, mut runtime_open) = (true, true, true);
        loop {
            self.start_due();
            let next = self
                .queue
                .next_deadline()
                .filter(|_| self.queue.has_capacity());
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => match joined {
                    Ok((id, res)) => self.finished(id, res),
                    Err(e) => error!(error = %e, "reconcile task was cancelled"),
                },
                event = cluster_rx.recv(), if cluster_open => match event {
                    Ok(ev) => self.on_cluster_event(ev).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "missed cluster events; re-listing nodes");
                        match self.ctx.deps.cluster.list_nodes().await {
                            Ok(nodes) => self.ctx.nodes.replace_all(nodes),
                            Err(e) => warn!(error = %e, "re-listing nodes failed"),
                        }
                        self.request_resync(false);
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        error!("cluster manager stopped publishing events");
                        cluster_open = false;
                    }
                },
                change = store_rx.recv(), if store_open => match change {
                    Ok(c) => self.on_store_change(c).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "missed store changes; re-listing workloads");
                        self.request_resync(true);
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        error!("state store stopped publishing changes");
                        store_open = false;
                    }
                },
                status = runtime_rx.recv(), if runtime_open => match status {
                    Ok(s) => self.on_runtime_status(s),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "missed container status changes; resyncing");
                        self.request_resync(false);
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        error!("container runtime stopped publishing status changes");
                        runtime_open = false;
                    }
                },
                Some(id) = trigger_rx.recv() => {
                    self.known.insert(id);
                    self.queue.schedule_now(id);
                }
                _ = resync.tick() => {
                    self.enqueue_all();
                    self.sweep_all();
                }
                () = sleep_until(self.resync_at), if self.resync_at.is_some() => self.lag_resync().await,
                () = sleep_until(next), if next.is_some() => {}
            }
        }
        info!(in_flight = self.tasks.len(), "reconciler stopping");
        self.tracker.close();
        let drain = async {
            while self.tasks.join_next().await.is_some() {}
            self.tracker.wait().await;
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            warn!("reconcile passes did not finish in time; abandoning them");
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
