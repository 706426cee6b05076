//! Plan: the ordered actions that move a workload toward its desired state.
//!
//! Order: write observed statuses; remove what must go; restart and start
//! what is placed; place new instances. Rolling updates and drains respect
//! `max_surge` (never more than `replicas + max_surge` active) and
//! `max_unavailable` (never fewer than `replicas - max_unavailable` running
//! because of a removal). A drain is planned like a rolling update: the
//! instances on a node being drained are replaced as an old generation is.

use std::collections::HashMap;
use std::time::Duration;

use orchestrator_shared_types::{
    InstanceId, InstanceStatus, NodeId, WorkloadDefinition, WorkloadInstance,
};

use super::compare::{Compared, Drift, Verdict};

/// Why an instance is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveReason {
    /// The workload was deleted.
    WorkloadDeleted,
    /// More instances than replicas.
    ScaleDown,
    /// Replaced by an instance of the current generation.
    Replaced,
    /// Its node is gone for good.
    Forgotten,
    /// Its node is being drained; a replacement runs elsewhere.
    Drained,
}

impl RemoveReason {
    /// Text for events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoveReason::WorkloadDeleted => "WorkloadDeleted",
            RemoveReason::ScaleDown => "ScaleDown",
            RemoveReason::Replaced => "Replaced",
            RemoveReason::Forgotten => "NodeGone",
            RemoveReason::Drained => "Drained",
        }
    }
}

/// The actions of one pass.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Records whose observed status changed.
    pub status_writes: Vec<WorkloadInstance>,
    /// Instances whose reservation is no longer needed (terminal or lost).
    pub release: Vec<InstanceId>,
    /// Instances back on a returned node whose reservation must count again.
    pub re_reserve: Vec<WorkloadInstance>,
    /// Instances to remove with their containers.
    pub remove: Vec<(WorkloadInstance, RemoveReason)>,
    /// Instances whose containers restart now.
    pub restart: Vec<WorkloadInstance>,
    /// Placed instances whose containers must be created.
    pub start: Vec<WorkloadInstance>,
    /// New instances to place.
    pub create: usize,
    /// Roll back to the previous template instead of everything else.
    pub rollback: bool,
    /// When to look again, if not only on the next change.
    pub requeue: Option<Duration>,
}

impl Plan {
    /// Number of actions (status writes included).
    pub fn len(&self) -> usize {
        self.status_writes.len()
            + self.remove.len()
            + self.restart.len()
            + self.start.len()
            + self.create
            + usize::from(self.rollback)
    }

    /// Whether the pass has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Plans the removal of every instance of a deleted workload.
pub fn plan_deletion(instances: Vec<WorkloadInstance>) -> Plan {
    Plan {
        remove: instances
            .into_iter()
            .map(|i| (i, RemoveReason::WorkloadDeleted))
            .collect(),
        ..Plan::default()
    }
}

/// Order in which surplus instances are removed: not running first, then from
/// the most crowded node, then ones that came back from a lost node, then newest.
fn removal_order(victims: &mut [&Compared], per_node: &HashMap<NodeId, u32>) {
    victims.sort_by_key(|c| {
        (
            c.record.status == InstanceStatus::Running,
            std::cmp::Reverse(per_node.get(&c.record.node_id).copied().unwrap_or(0)),
            !c.was_lost,
            std::cmp::Reverse(c.record.created_at),
        )
    });
}

fn rollout_failures(current: &[&Compared]) -> u32 {
    current
        .iter()
        .map(|c| c.record.restarts + u32::from(c.record.status == InstanceStatus::Failed))
        .sum()
}

/// Plans one pass over a live workload.
pub fn plan(workload: &WorkloadDefinition, compared: &[Compared], drift: Drift) -> Plan {
    let mut plan = Plan::default();
    let mut wait: Option<Duration> = None;
    for c in compared {
        if c.changed {
            plan.status_writes.push(c.record.clone());
        }
        match &c.verdict {
            Verdict::Lost => plan.release.push(c.record.id),
            Verdict::Terminal => plan.release.push(c.record.id),
            Verdict::Forget => plan
                .remove
                .push((c.record.clone(), RemoveReason::Forgotten)),
            Verdict::Healthy if c.was_lost => plan.re_reserve.push(c.record.clone()),
            _ => {}
        }
    }

    let replicas = workload.spec.replicas as usize;
    let strategy = workload.spec.update_strategy;
    let active: Vec<&Compared> = compared.iter().filter(|c| c.is_active()).collect();
    let (current, old): (Vec<&Compared>, Vec<&Compared>) = active
        .iter()
        .partition(|c| c.record.generation == workload.generation);

    if strategy.auto_rollback
        && !old.is_empty()
        && workload.previous.is_some()
        && rollout_failures(&current) >= strategy.rollback_after_failures
    {
        plan.rollback = true;
        return plan;
    }

    // Instances to keep, and those to replace: of an older generation, or on
    // a node being drained.
    let (keep, replace): (Vec<&Compared>, Vec<&Compared>) = active
        .iter()
        .partition(|c| c.record.generation == workload.generation && !c.is_evicted());

    let mut per_node: HashMap<NodeId, u32> = HashMap::new();
    for c in &active {
        *per_node.entry(c.record.node_id).or_default() += 1;
    }
    let mut removed: Vec<&Compared> = Vec::new();

    if replace.is_empty() {
        plan.create = replicas.saturating_sub(keep.len());
    } else {
        let max_total = replicas + strategy.max_surge as usize;
        let min_available = replicas.saturating_sub(strategy.max_unavailable as usize);
        plan.create = replicas
            .saturating_sub(keep.len())
            .min(max_total.saturating_sub(active.len()));
        let mut budget = (drift.available as usize).saturating_sub(min_available);
        let mut sorted = replace.clone();
        removal_order(&mut sorted, &per_node);
        for c in sorted {
            if c.record.status != InstanceStatus::Running {
                removed.push(c);
            } else if budget > 0 {
                budget -= 1;
                removed.push(c);
            }
        }
        // Keep looking until the rollout or drain is done.
        wait = Some(Duration::from_millis(50));
    }
    if keep.len() > replicas {
        let mut surplus = keep.clone();
        removal_order(&mut surplus, &per_node);
        removed.extend(surplus.into_iter().take(keep.len() - replicas));
    }
    for c in removed {
        let reason = if c.is_evicted() {
            RemoveReason::Drained
        } else if c.record.generation == workload.generation {
            RemoveReason::ScaleDown
        } else {
            RemoveReason::Replaced
        };
        plan.remove.push((c.record.clone(), reason));
    }

    let removing: Vec<InstanceId> = plan.remove.iter().map(|(i, _)| i.id).collect();
    for c in compared.iter().filter(|c| !removing.contains(&c.record.id)) {
        match &c.verdict {
            Verdict::NeedsStart => plan.start.push(c.record.clone()),
            Verdict::RestartDue => plan.restart.push(c.record.clone()),
            Verdict::RestartLater(d) => wait = Some(wait.map_or(*d, |w| w.min(*d))),
            _ => {}
        }
    }
    plan.requeue = wait;
    plan
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
