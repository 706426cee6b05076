//! Removes containers on a node that no stored instance owns: left by a crash
//! between container removal and record deletion, or by instances that were
//! replaced while their node was away.

use std::sync::Arc;

use container_runtime_interface::RuntimeError;
use orchestrator_shared_types::NodeId;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::context::Ctx;
use crate::error::Result;

/// Sweeps `node` once; returns how many containers were removed.
pub async fn sweep_node(ctx: &Ctx, node: NodeId) -> Result<usize> {
    let containers = ctx.deps.runtime.list_containers(node).await?;
    let mut removed = 0;
    for c in containers {
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

/// Runs [`sweep_node`] in the background.
pub fn spawn_sweep(tracker: &TaskTracker, ctx: Arc<Ctx>, node: NodeId) {
    tracker.spawn(async move {
        if let Err(e) = sweep_node(&ctx, node).await {
            warn!(node = %node.short(), error = %e, "sweeping orphaned containers failed");
        }
    });
}
