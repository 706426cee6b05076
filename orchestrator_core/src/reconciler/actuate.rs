//! Actuate: carry out a plan. Intent is written before containers are created
//! (a crash leaves a `Pending` record that the next pass finishes, never an
//! orphan container), and containers are removed before their record.

use std::sync::Arc;

use chrono::Utc;
use container_runtime_interface::{ContainerSpec, RuntimeError, VolumeAttachment};
use futures::future::join_all;
use orchestrator_shared_types::ports::{NETWORK_LABEL, OWNER_LABEL};
use orchestrator_shared_types::{
    ContainerId, InstanceId, InstanceStatus, NodeId, RestartPolicy, WorkloadDefinition,
    WorkloadInstance,
};
use scheduler_interface::{Placement, ScheduleDecision, ScheduleRequest};
use tracing::{info, warn};

use super::compare::Compared;
use super::context::Ctx;
use super::plan::Plan;
use super::secrets::{Gate, Secrets};
use crate::error::Result;
use crate::events::ReconcileEvent;

/// Label carrying the instance id on every container.
pub const LABEL_INSTANCE: &str = "univrs.instance";
/// Label carrying the workload id on every container.
pub const LABEL_WORKLOAD: &str = "univrs.workload";

async fn remove_containers(ctx: &Ctx, node: NodeId, ids: &[ContainerId]) -> Result<()> {
    for id in ids {
        let runtime = &ctx.deps.runtime;
        let res = match runtime.stop_container(id, ctx.config.stop_grace).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => match runtime.remove_container(id).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            if ctx.nodes.is_lost(&node) {
                // The node is gone; what it still runs is swept when it returns.
                warn!(container = %id, node = %node.short(), error = %e, "leaving container on lost node");
            } else {
                return Err(e.into());
            }
        }
    }
    Ok(())
}

async fn remove_instance(ctx: &Ctx, inst: &WorkloadInstance) -> Result<InstanceId> {
    remove_containers(ctx, inst.node_id, &inst.container_ids).await?;
    Ok(inst.id)
}

fn restart_wanted(policy: RestartPolicy) -> bool {
    policy != RestartPolicy::Never
}

/// Creates the containers of `inst` and returns its record as it should now read.
async fn start_instance(
    ctx: &Ctx,
    w: &WorkloadDefinition,
    secrets: &Secrets,
    mut inst: WorkloadInstance,
) -> WorkloadInstance {
    let mut ids = Vec::with_capacity(w.spec.containers.len());
    // The workload's labels (e.g. `univrs.io/network: none`) plus ours.
    let mut labels = w.spec.labels.clone();
    // The network the runtime gives it, whether the manifest's `network`
    // field, the label or the default (the bridge) chose it: always said,
    // since a runtime reads a missing label as the host's network.
    let network = w.spec.network_mode();
    labels.insert(NETWORK_LABEL.to_owned(), network.as_str().to_owned());
    labels.insert(OWNER_LABEL.to_owned(), w.owner.to_string());
    labels.insert(LABEL_INSTANCE.to_owned(), inst.id.to_string());
    labels.insert(LABEL_WORKLOAD.to_owned(), w.id.to_string());
    for config in &w.spec.containers {
        // The sealed values of its secrets, which only the node can open.
        let sealed = secrets.sealed_for(config);
        let spec = ContainerSpec {
            instance_id: inst.id,
            workload_id: w.id,
            config: config.clone(),
            labels: labels.clone(),
            volumes: VolumeAttachment::of(w.owner, config),
            secrets: sealed.clone().unwrap_or_default(),
        };
        let started = std::time::Instant::now();
        let created = match &sealed {
            Err(reason) => Err(RuntimeError::Create {
                instance: inst.id,
                name: config.name.clone(),
                reason: reason.clone(),
            }),
            Ok(_) => ctx.deps.runtime.create_container(inst.node_id, &spec).await,
        };
        ctx.deps
            .metrics
            .container_create_duration
            .observe(started.elapsed().as_secs_f64());
        match created {
            Ok(id) | Err(RuntimeError::AlreadyExists(id)) => ids.push(id),
            Err(e) => {
                ctx.deps.metrics.container_creation_errors.inc();
                if let Err(cleanup) = remove_containers(ctx, inst.node_id, &ids).await {
                    warn!(instance = %inst.id, error = %cleanup, "cleaning up after a failed start");
                }
                let now = Utc::now();
                let kind = match e {
                    RuntimeError::ImagePull { .. } => "ImagePullFailed",
                    _ => "CreateFailed",
                };
                warn!(instance = %inst.id, workload = %w.id, error = %e, "starting instance failed");
                let stored = inst.clone();
                if let Err(refused) =
                    inst.transition(InstanceStatus::Failed, Some(format!("{kind}: {e}")), now)
                {
                    warn!(instance = %inst.id, workload = %w.id, error = %refused,
                        "not recording the failed start");
                    return stored;
                }
                inst.container_ids.clear();
                inst.ready = false;
                inst.address = None;
                inst.ports.clear();
                inst.finished_at = Some(now);
                inst.restart_after = restart_wanted(w.spec.restart_policy).then(|| {
                    now + chrono::Duration::from_std(ctx.config.restart_delay(inst.restarts))
                        .unwrap_or_default()
                });
                return inst;
            }
        }
    }
    let now = Utc::now();
    if let Err(refused) = inst.transition(InstanceStatus::Running, None, now) {
        // Only a Pending record is started, so this is a bug upstream; undo
        // the containers rather than leave them unrecorded.
        warn!(instance = %inst.id, workload = %w.id, error = %refused,
            "not recording the start; removing its containers");
        if let Err(cleanup) = remove_containers(ctx, inst.node_id, &ids).await {
            warn!(instance = %inst.id, error = %cleanup, "removing containers of a refused start");
        }
        return inst;
    }
    // Where it is reached (bridge networking): known once its containers
    // are made, shown from the start rather than at the next resync.
    inst.address = None;
    inst.ports.clear();
    let bridged = w.spec.on_bridge_network();
    for id in ids.iter().filter(|_| bridged) {
        if let Ok(s) = ctx.deps.runtime.get_container_status(id).await {
            inst.address = inst.address.take().or(s.address);
            inst.ports.extend(s.ports);
        }
    }
    inst.container_ids = ids;
    // Containers without a readiness probe are ready once they run; the
    // others become ready when their probe passes (a status change).
    inst.ready = w
        .spec
        .containers
        .iter()
        .all(|c| c.readiness_probe.is_none());
    inst.started_at = Some(now);
    inst.restart_after = None;
    inst
}

/// Goes back to the previous template after a failed rollout. The instances
/// of that template are relabelled to the new generation, so they stay.
async fn rollback(ctx: &Ctx, seen: &WorkloadDefinition) -> Result<()> {
    let _guard = ctx.workload_writes.lock().await;
    let store = &ctx.deps.store;
    let Some(mut w) = store.get_workload(&seen.id).await? else {
        return Ok(());
    };
    if w.generation != seen.generation {
        return Ok(()); // Changed meanwhile; the next pass decides again.
    }
    let Some(prev) = w.previous.take() else {
        return Ok(());
    };
    let mut spec = prev.spec;
    spec.replicas = w.spec.replicas;
    w.spec = spec;
    w.generation += 1;
    w.updated_at = Utc::now();
    store.put_workload(&w).await?;
    let relabelled: Vec<WorkloadInstance> = store
        .list_instances_by_workload(&w.id)
        .await?
        .into_iter()
        .filter(|i| i.generation == prev.generation)
        .map(|mut i| {
            i.generation = w.generation;
            i
        })
        .collect();
    store.put_instances_batch(&relabelled).await?;
    info!(workload = %w.id, generation = w.generation, "rolled back to the previous template");
    ctx.emit(ReconcileEvent::RolledBack {
        workload: w.id,
        generation: w.generation,
    });
    Ok(())
}

/// Carries out `plan` for workload `w` (`None` once deleted); returns the number
/// of actions that took effect.
pub async fn actuate(
    ctx: &Ctx,
    w: Option<&WorkloadDefinition>,
    compared: &[Compared],
    plan: Plan,
) -> Result<usize> {
    let store = &ctx.deps.store;
    let scheduler = &ctx.deps.scheduler;
    let mut done = 0;

    if !plan.status_writes.is_empty() {
        store.put_instances_batch(&plan.status_writes).await?;
        for i in &plan.status_writes {
            ctx.emit(ReconcileEvent::InstanceStatusChanged {
                workload: i.workload_id,
                instance: i.id,
                status: i.status,
                reason: i.reason.clone(),
            });
        }
        done += plan.status_writes.len();
    }
    for id in &plan.release {
        scheduler.release(*id);
    }
    if let Some(w) = w {
        let request = w.spec.instance_request();
        let host_ports = w.spec.host_ports();
        let placements: Vec<Placement> = plan
            .re_reserve
            .iter()
            .map(|i| Placement {
                instance: i.id,
                node: i.node_id,
                resources: request,
                host_ports: host_ports.clone(),
            })
            .collect();
        scheduler.record_placements(&placements);
        if plan.rollback {
            rollback(ctx, w).await?;
            return Ok(done + 1);
        }
    }

    // Removals, concurrently; records go only after their containers.
    if !plan.remove.is_empty() {
        let results = join_all(plan.remove.iter().map(|(i, _)| remove_instance(ctx, i))).await;
        let mut removed = Vec::new();
        let mut first_err = None;
        for (res, (inst, reason)) in results.into_iter().zip(&plan.remove) {
            match res {
                Ok(id) => removed.push((id, inst.workload_id, *reason)),
                Err(e) => {
                    warn!(instance = %inst.id, error = %e, "removing instance failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        let ids: Vec<InstanceId> = removed.iter().map(|(id, _, _)| *id).collect();
        store.delete_instances_batch(&ids).await?;
        for (id, workload, reason) in removed {
            scheduler.release(id);
            ctx.emit(ReconcileEvent::InstanceRemoved {
                workload,
                instance: id,
                reason: reason.as_str().into(),
            });
            done += 1;
        }
        if let Some(e) = first_err {
            return Err(e);
        }
    }
    let Some(w) = w else {
        return Ok(done);
    };

    // Restarts: clear the old containers, record the intent, then start. A
    // record the state machine does not let go back to Pending is left alone,
    // containers and all.
    let mut to_start = plan.start;
    if !plan.restart.is_empty() {
        let now = Utc::now();
        let restarts: Vec<WorkloadInstance> = plan
            .restart
            .into_iter()
            .filter_map(|mut inst| {
                match inst.transition(InstanceStatus::Pending, Some("Restarting".into()), now) {
                    Ok(()) => Some(inst),
                    Err(refused) => {
                        warn!(instance = %inst.id, workload = %w.id, error = %refused,
                            "not restarting");
                        None
                    }
                }
            })
            .collect();
        let results = join_all(restarts.iter().map(|i| remove_instance(ctx, i))).await;
        let mut intents = Vec::new();
        for (res, mut inst) in results.into_iter().zip(restarts) {
            match res {
                Ok(_) => {
                    inst.restarts = inst.restarts.saturating_add(1);
                    inst.container_ids.clear();
                    inst.ready = false;
                    inst.address = None;
                    inst.ports.clear();
                    inst.restart_after = None;
                    intents.push(inst);
                }
                Err(e) => {
                    warn!(instance = %inst.id, error = %e, "could not clear containers for restart")
                }
            }
        }
        store.put_instances_batch(&intents).await?;
        for inst in &intents {
            ctx.emit(ReconcileEvent::InstanceRestarted {
                workload: w.id,
                instance: inst.id,
                restarts: inst.restarts,
            });
        }
        to_start.extend(intents);
    }

    // Its secrets, read once for placement and start (none: no read).
    let secrets = if plan.create > 0 || !to_start.is_empty() {
        Secrets::load(store.as_ref(), w).await?
    } else {
        Secrets::none()
    };

    // New instances: place and bind, record the intent, then start.
    let mut requeue_unplaced = None;
    if plan.create > 0 {
        let ids: Vec<InstanceId> = (0..plan.create).map(|_| InstanceId::new()).collect();
        let existing = compared
            .iter()
            .filter(|c| c.is_active())
            .map(|c| (c.record.id, c.record.node_id))
            .collect();
        // The owner's pushed trust policy holds with the workload's own rules.
        let decisions = match crate::api::trust::effective(store.as_ref(), w).await {
            Ok(rules) => {
                let mut placed_as = w.clone();
                placed_as.spec.trust = rules;
                let placed_as = Arc::new(placed_as);
                let listed = ctx.nodes.list();
                let cordoned;
                let nodes: &[orchestrator_shared_types::Node] = if ctx.drains.is_empty() {
                    &listed
                } else {
                    cordoned = ctx.drains.cordon_view(&listed);
                    &cordoned
                };
                // Only nodes that can open its secrets (`secrets`).
                let gate = Gate::of(&secrets, nodes);
                let nodes = match &gate {
                    Gate::Open => Ok(nodes),
                    Gate::Restricted { nodes, .. } => Ok(nodes.as_slice()),
                    Gate::Closed(reason) => Err(reason.clone()),
                };
                let decisions = match nodes {
                    Err(reason) => vec![ScheduleDecision::NoPlacement(reason); ids.len()],
                    Ok(nodes) if w.spec.volumes().is_empty() => {
                        let request = ScheduleRequest {
                            workload: placed_as,
                            instances: ids.clone(),
                            existing,
                        };
                        scheduler.schedule(&request, nodes).await?
                    }
                    // Pinned to their volumes' node (`volumes`).
                    Ok(nodes) => {
                        super::volumes::place(ctx, &placed_as, &ids, existing, nodes).await?
                    }
                };
                gate.explain(decisions)
            }
            Err(reason) => vec![ScheduleDecision::NoPlacement(reason); ids.len()],
        };
        let metrics = &ctx.deps.metrics;
        metrics.schedule_attempts.inc_by(decisions.len() as u64);
        let mut placed = Vec::new();
        let mut failures = Vec::new();
        for (id, decision) in ids.iter().zip(decisions) {
            match decision {
                ScheduleDecision::AssignNode(node) => {
                    let mut inst = WorkloadInstance::pending(w.id, w.generation, node);
                    inst.id = *id;
                    placed.push(inst);
                }
                ScheduleDecision::NoPlacement(reason) | ScheduleDecision::Error(reason) => {
                    failures.push(reason);
                }
            }
        }
        metrics.schedule_successes.inc_by(placed.len() as u64);
        metrics.schedule_failures.inc_by(failures.len() as u64);
        if let Err(e) = store.put_instances_batch(&placed).await {
            for inst in &placed {
                scheduler.release(inst.id);
            }
            return Err(e.into());
        }
        if let Some(reason) = failures.first() {
            warn!(workload = %w.id, count = failures.len(), %reason, "replicas could not be placed");
            ctx.emit(ReconcileEvent::PlacementFailed {
                workload: w.id,
                count: failures.len(),
                reason: reason.clone(),
            });
            requeue_unplaced = Some((failures.len() as u32, reason.clone()));
        }
        to_start.extend(placed);
    }
    ctx.set_unplaced(w.id, requeue_unplaced);

    if !to_start.is_empty() {
        let started = join_all(
            to_start
                .into_iter()
                .map(|i| start_instance(ctx, w, &secrets, i)),
        )
        .await;
        store.put_instances_batch(&started).await?;
        for inst in &started {
            if inst.status == InstanceStatus::Running {
                ctx.emit(ReconcileEvent::InstanceStarted {
                    workload: w.id,
                    instance: inst.id,
                    node: inst.node_id,
                    generation: inst.generation,
                });
            } else {
                ctx.emit(ReconcileEvent::InstanceStatusChanged {
                    workload: w.id,
                    instance: inst.id,
                    status: inst.status,
                    reason: inst.reason.clone(),
                });
            }
        }
        done += started.len();
    }
    Ok(done)
}
