//! Drain intents: nodes whose instances are to move elsewhere.
//!
//! Draining is not an action of its own. [`Orchestrator::drain_node`]
//! cordons the node and asks the reconciler loop to record the intent here;
//! the loop then queues every workload with an instance on the node, and each
//! workload's own pass replaces those instances the way a rolling update
//! replaces an old generation: replacements elsewhere first (within
//! `max_surge`), removals only while no more than `max_unavailable` replicas
//! are unavailable. The queue never runs two passes of one workload at once,
//! so an eviction can never race another pass of the same workload.
//!
//! The intent lives until the node is uncordoned or leaves; it is not
//! durable (after a restart the node stays cordoned, and a second drain
//! finishes the job).
//!
//! [`Orchestrator::drain_node`]: crate::api::Orchestrator::drain_node

use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};

use orchestrator_shared_types::{Node, NodeId};

/// The nodes being drained.
#[derive(Debug, Default)]
pub struct Drains {
    nodes: RwLock<HashSet<NodeId>>,
}

impl Drains {
    /// Records the intent to drain `node`; returns whether it is new.
    pub(crate) fn insert(&self, node: NodeId) -> bool {
        self.nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node)
    }

    /// Drops the intent to drain `node`; returns whether there was one.
    pub(crate) fn remove(&self, node: &NodeId) -> bool {
        self.nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(node)
    }

    /// Whether `node` is being drained.
    pub fn contains(&self, node: &NodeId) -> bool {
        self.nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(node)
    }

    /// Whether no node is being drained.
    pub fn is_empty(&self) -> bool {
        self.nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// `nodes` with every node being drained marked unschedulable, so that a
    /// pass never places a replacement on a node it drains, even before the
    /// cordon has come back as a cluster event.
    pub fn cordon_view(&self, nodes: &[Node]) -> Vec<Node> {
        let draining = self.nodes.read().unwrap_or_else(PoisonError::into_inner);
        nodes
            .iter()
            .map(|n| {
                let mut n = n.clone();
                if draining.contains(&n.id) {
                    n.unschedulable = true;
                }
                n
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_node_is_unschedulable_to_the_scheduler_until_the_intent_goes() {
        let a = cluster_manager::mock::test_node(1, 4000, 8 << 30);
        let b = cluster_manager::mock::test_node(2, 4000, 8 << 30);
        let drains = Drains::default();
        assert!(drains.insert(a.id));
        assert!(!drains.insert(a.id), "a second drain is the same intent");
        let view = drains.cordon_view(&[a.clone(), b.clone()]);
        assert!(view[0].unschedulable);
        assert!(!view[1].unschedulable);
        assert!(drains.remove(&a.id));
        assert!(drains.is_empty());
        assert!(!drains.cordon_view(&[a])[0].unschedulable);
    }
}
