//! Sense: a read-only snapshot of one workload, its instances, their nodes and
//! their containers.

use chrono::{DateTime, Utc};
use container_runtime_interface::{ContainerState, RuntimeError};
use futures::future::join_all;
use orchestrator_shared_types::{PublishedPort, WorkloadDefinition, WorkloadId, WorkloadInstance};

use super::context::Ctx;
use crate::error::Result;

/// What the containers of an instance are doing.
#[derive(Clone, Debug, PartialEq)]
pub enum Containers {
    /// None were recorded: the instance has not started (or is being restarted).
    NotStarted,
    /// All run.
    Running {
        /// When the last of them started.
        started_at: Option<DateTime<Utc>>,
        /// Every one passes its readiness probe (or has none).
        ready: bool,
        /// The first container's address on the node's bridge.
        address: Option<String>,
        /// The ports all of them publish on the node.
        ports: Vec<PublishedPort>,
    },
    /// At least one exited.
    Exited {
        /// Its exit code (the first non-zero one, if any).
        code: i32,
        /// The runtime's reason (`Completed`, `Error`, `OOMKilled`, …).
        reason: String,
    },
    /// The runtime does not know a recorded container (node or daemon restarted).
    Missing,
    /// The runtime could not be asked; nothing is known.
    Unreachable(String),
}

/// One instance as observed.
#[derive(Clone, Debug)]
pub struct ObservedInstance {
    /// The stored record.
    pub record: WorkloadInstance,
    /// Its node is gone or Down.
    pub node_lost: bool,
    /// Its node is being drained, or its owner's trust rules now exclude
    /// the node (a denied operator, one not allowed, a label): the instance
    /// is to be replaced elsewhere.
    pub draining: bool,
    /// Its containers.
    pub containers: Containers,
}

/// One workload as observed.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The workload, or `None` once deleted.
    pub workload: Option<WorkloadDefinition>,
    /// Its instances.
    pub instances: Vec<ObservedInstance>,
    /// When the snapshot was taken.
    pub now: DateTime<Utc>,
}

async fn observe_containers(ctx: &Ctx, record: &WorkloadInstance) -> Containers {
    if record.container_ids.is_empty() {
        return Containers::NotStarted;
    }
    let statuses = join_all(
        record
            .container_ids
            .iter()
            .map(|id| ctx.deps.runtime.get_container_status(id)),
    )
    .await;
    let mut exited: Option<(i32, String)> = None;
    let mut started_at = None;
    let mut ready = true;
    let mut address = None;
    let mut ports = Vec::new();
    for status in statuses {
        match status {
            Ok(s) => match s.state {
                ContainerState::Running => {
                    started_at = started_at.max(s.started_at);
                    ready &= s.ready;
                    address = address.or(s.address);
                    ports.extend(s.ports);
                }
                ContainerState::Exited => {
                    let code = s.exit_code.unwrap_or(-1);
                    let reason = s.reason.unwrap_or_else(|| "Exited".into());
                    if exited.as_ref().is_none_or(|(c, _)| *c == 0 && code != 0) {
                        exited = Some((code, reason));
                    }
                }
                ContainerState::Created | ContainerState::Unknown => {
                    return Containers::Unreachable(format!("container {} is {:?}", s.id, s.state));
                }
            },
            Err(RuntimeError::NotFound(_)) => return Containers::Missing,
            Err(e) => return Containers::Unreachable(e.to_string()),
        }
    }
    match exited {
        Some((code, reason)) => Containers::Exited { code, reason },
        None => Containers::Running {
            started_at,
            ready,
            address,
            ports,
        },
    }
}

/// Takes the snapshot of workload `id`.
pub async fn sense(ctx: &Ctx, id: &WorkloadId) -> Result<Observed> {
    let store = &ctx.deps.store;
    let (workload, records) =
        tokio::try_join!(store.get_workload(id), store.list_instances_by_workload(id))?;
    // The rules as they are now: a policy pushed since an instance was
    // placed may exclude its node. Reputation is not weighed here (it moves;
    // placement weighs it), only what the owner said of operators and labels.
    let rules = match &workload {
        Some(w) if !records.is_empty() => {
            crate::api::trust::effective(store.as_ref(), w).await.ok()
        }
        _ => None,
    };
    let rules = &rules;
    let instances = join_all(records.into_iter().map(|record| async move {
        let node_lost = ctx.nodes.is_lost(&record.node_id);
        let untrusted = rules.as_ref().is_some_and(|r| {
            !r.is_empty()
                && ctx
                    .nodes
                    .get(&record.node_id)
                    .is_some_and(|n| r.excludes(&n.operator, &n.labels))
        });
        let draining = untrusted || ctx.drains.contains(&record.node_id);
        let containers = if node_lost {
            Containers::Unreachable("node lost".into())
        } else {
            observe_containers(ctx, &record).await
        };
        ObservedInstance {
            record,
            node_lost,
            draining,
            containers,
        }
    }))
    .await;
    Ok(Observed {
        workload,
        instances,
        now: Utc::now(),
    })
}
