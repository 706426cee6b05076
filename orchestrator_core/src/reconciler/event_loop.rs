//! The reconciler's `select!` loop: it feeds the work queue from workload
//! changes, cluster events, runtime status changes, its command channel and
//! the resync tick, starts due passes and hands their results to the queue
//! through the error policy.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use cluster_manager_interface::ClusterEvent;
use container_runtime_interface::{ContainerState, ContainerStatus};
use futures::FutureExt;
use observability::events::{Event, Topic};
use orchestrator_shared_types::{NodeId, WorkloadId};
use state_store_interface::StoreChange;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::action::error_policy;
use super::context::Ctx;
use super::reconcile::{reconcile, PassOutcome};
use super::sweep;
use crate::error::{Error, Result};
use crate::nodes::NodeChange;
use crate::queue::{Backoff, WorkQueue};

/// How long after a running container's status change its workload is
/// reconciled.
const RUNNING_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// What the loop is asked to do through its handle.
/// Where the outcome of a requested pass goes.
pub(super) type PassReply = oneshot::Sender<Result<PassOutcome>>;

pub(super) enum Command {
    /// Reconcile a workload now.
    Reconcile(WorkloadId),
    /// Reconcile a workload now through the queue, and answer with the
    /// outcome of a pass that started after the request.
    ReconcileNow(WorkloadId, PassReply),
    /// Record the intent to drain a node and queue its workloads; answers
    /// with how many workloads were queued.
    Drain(NodeId, oneshot::Sender<usize>),
    /// Drop the intent to drain a node; answers once dropped.
    Undrain(NodeId, oneshot::Sender<()>),
}

pub(super) struct Loop {
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
    /// Callers of `reconcile_now` waiting for a pass to start, per workload.
    waiting: HashMap<WorkloadId, VecDeque<PassReply>>,
    /// The caller each running pass answers.
    answering: HashMap<WorkloadId, PassReply>,
}

impl Loop {
    /// A loop over `ctx`, starting with the workloads in `known`.
    pub(super) fn new(
        ctx: Arc<Ctx>,
        known: HashSet<WorkloadId>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Self {
        let queue = WorkQueue::new(
            ctx.config.concurrency,
            Backoff {
                base: ctx.config.error_backoff_base,
                max: ctx.config.error_backoff_max,
            },
        );
        Self {
            ctx,
            queue,
            known,
            tasks: JoinSet::new(),
            tracker,
            cancel,
            resync_at: None,
            relist: false,
            sweeping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            waiting: HashMap::new(),
            answering: HashMap::new(),
        }
    }
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
            if let Some(reply) = self.waiting.get_mut(&id).and_then(VecDeque::pop_front) {
                self.answering.insert(id, reply);
            }
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
        match &res {
            Ok(outcome) => self.queue.complete(id, Ok(outcome.action.requeue_after())),
            Err(e) => {
                let config = &self.ctx.config;
                self.queue.fail_with(id, |failures| {
                    let action = error_policy(e, failures, config);
                    warn!(
                        workload = %id,
                        error = %e,
                        kind = e.kind().as_str(),
                        failures,
                        ?action,
                        "reconcile failed"
                    );
                    action.requeue_after()
                });
            }
        }
        if let Some(reply) = self.answering.remove(&id) {
            if reply.send(res).is_err() {
                debug!(workload = %id, "reconcile_now caller went away");
            }
        }
        match self.waiting.get(&id) {
            Some(w) if !w.is_empty() => self.queue.schedule_now(id),
            Some(_) => {
                self.waiting.remove(&id);
            }
            None => {}
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Reconcile(id) => {
                self.known.insert(id);
                self.queue.schedule_now(id);
            }
            Command::ReconcileNow(id, reply) => {
                self.known.insert(id);
                self.waiting.entry(id).or_default().push_back(reply);
                self.queue.schedule_now(id);
            }
            Command::Drain(node, done) => {
                if self.ctx.drains.insert(node) {
                    info!(node = %node.short(), "draining node");
                }
                let queued = self.queue_node(node).await;
                if done.send(queued).is_err() {
                    debug!(node = %node.short(), "drain caller went away");
                }
            }
            Command::Undrain(node, done) => {
                if self.ctx.drains.remove(&node) {
                    info!(node = %node.short(), "no longer draining node");
                }
                if done.send(()).is_err() {
                    debug!(node = %node.short(), "undrain caller went away");
                }
            }
        }
    }

    /// Queues every workload with an instance on `node` (every workload if
    /// the store cannot say which); returns how many were queued.
    async fn queue_node(&mut self, node: NodeId) -> usize {
        match self.ctx.deps.store.list_instances_by_node(&node).await {
            Ok(instances) => {
                let workloads: HashSet<WorkloadId> =
                    instances.iter().map(|i| i.workload_id).collect();
                for id in &workloads {
                    self.queue.schedule_now(*id);
                }
                workloads.len()
            }
            Err(e) => {
                warn!(node = %node.short(), error = %e, "listing a node's instances failed; resyncing all");
                self.enqueue_all();
                self.known.len()
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
        if let Some(what) = membership_change(&event, change) {
            let nodes = self.ctx.nodes.list();
            let usable = nodes
                .iter()
                .filter(|n| !self.ctx.nodes.is_lost(&n.id))
                .count();
            self.ctx.deps.events.publish(Event::new(
                Topic::Cluster,
                what,
                serde_json::json!({
                    "node": node,
                    "nodes_total": nodes.len(),
                    "nodes_usable": usable,
                }),
            ));
        }
        if matches!(event, ClusterEvent::NodeRemoved(_)) && self.ctx.drains.remove(&node) {
            debug!(node = %node.short(), "drained node left");
        }
        if matches!(change, NodeChange::Lost | NodeChange::Usable) {
            self.queue_node(node).await;
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

    /// A container's status changed: its workload is reconciled now when
    /// the container stopped running, and soon ([`RUNNING_SETTLE`]) when a
    /// running container's readiness or address changed, so that a name
    /// follows an instance's readiness within a second (SPEC §9). The delay
    /// leaves a container that fails at once the time to say so before a
    /// rollout counts it as started.
    fn on_runtime_status(&mut self, status: ContainerStatus) {
        if status.workload_id == WorkloadId::SYSTEM {
            return;
        }
        if status.state == ContainerState::Running {
            let at = tokio::time::Instant::now() + RUNNING_SETTLE;
            self.queue.schedule(status.workload_id, at);
        } else {
            self.queue.schedule_now(status.workload_id);
        }
    }

    pub(super) async fn run(
        mut self,
        mut cluster_rx: broadcast::Receiver<ClusterEvent>,
        mut store_rx: broadcast::Receiver<StoreChange>,
        mut runtime_rx: broadcast::Receiver<ContainerStatus>,
        mut commands_rx: mpsc::UnboundedReceiver<Command>,
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
                Some(command) = commands_rx.recv() => self.on_command(command).await,
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

/// What a node event means for the membership (the `cluster` topic), if
/// anything: a member joined, left, was lost (went Down) or came back.
fn membership_change(event: &ClusterEvent, change: NodeChange) -> Option<&'static str> {
    match (event, change) {
        (ClusterEvent::NodeRemoved(_), _) => Some("member_left"),
        (ClusterEvent::NodeAdded(_), _) => Some("member_joined"),
        (_, NodeChange::Lost) => Some("member_lost"),
        (_, NodeChange::Usable) => Some("member_returned"),
        _ => None,
    }
}
