//! Removes containers on a node that no stored instance owns: left by a crash
//! between container removal and record deletion, or by instances that were
//! replaced while their node was away.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use container_runtime_interface::RuntimeError;
use orchestrator_shared_types::{NodeId, WorkloadId};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::context::Ctx;
use crate::error::Result;

/// How long a system container (a probe) may run before a sweep removes it.
const SYSTEM_CONTAINER_MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Sweeps `node` once; returns how many containers were removed.
pub async fn sweep_node(ctx: &Ctx, node: NodeId) -> Result<usize> {
    let containers = ctx.deps.runtime.list_containers(node).await?;
    let mut removed = 0;
    let grace = chrono::Duration::from_std(ctx.config.sweep_grace).unwrap_or(chrono::Duration::MAX);
    for c in containers {
        let age = c.started_at.map(|at| Utc::now() - at);
        // A container started moments ago may belong to a creation whose
        // instance record is not written (or not updated with its id) yet:
        // only containers older than the grace are judged.
        if age.is_none_or(|a| a < grace) {
            continue;
        }
        // The orchestrator's own containers (honesty probes) are removed by
        // whoever started them; only one left far too long is swept.
        if c.workload_id == WorkloadId::SYSTEM && age.is_some_and(|a| a < SYSTEM_CONTAINER_MAX_AGE)
        {
            continue;
        }
        let owned = ctx
            .deps
            .store
            .get_instance(&c.instance_id)
            .await?
            .is_some_and(|i| {
                i.node_id == node && (i.container_ids.is_empty() || i.container_ids.contains(&c.id))
            });
        if !owned {
            info!(container = %c.id, instance = %c.instance_id, node = %node.short(), "removing orphaned container");
            match ctx.deps.runtime.remove_container(&c.id).await {
                Ok(()) => removed += 1,
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(removed)
}

/// Attempts of a sweep of a node that just became usable, the first at once.
const SWEEP_ATTEMPTS: u32 = 6;
/// Pause after the first failed attempt, doubled after each.
const SWEEP_RETRY: Duration = Duration::from_millis(250);

/// Runs [`sweep_node`] in the background. A node that just came back often
/// does not answer its first calls (its agent's connections are still being
/// re-established), so a failed sweep is retried with back-off — 0.25 s,
/// 0.5 s, … 4 s — while the node stays known and not lost, rather than
/// leaving what it ran before it left for the next periodic resync.
pub fn spawn_sweep(tracker: &TaskTracker, ctx: Arc<Ctx>, node: NodeId) {
    tracker.spawn(async move {
        let mut pause = SWEEP_RETRY;
        for attempt in 1..=SWEEP_ATTEMPTS {
            match sweep_node(&ctx, node).await {
                Ok(_) => return,
                Err(e) if attempt == SWEEP_ATTEMPTS || ctx.nodes.is_lost(&node) => {
                    warn!(node = %node.short(), attempt, error = %e, "sweeping orphaned containers failed");
                    return;
                }
                Err(e) => {
                    debug!(node = %node.short(), attempt, error = %e, "sweeping orphaned containers failed; retrying");
                }
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    });
}
