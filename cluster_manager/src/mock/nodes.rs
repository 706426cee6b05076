//! Deterministic node records for tests and demos.

use std::collections::BTreeMap;

use chrono::DateTime;
use orchestrator_shared_types::{Node, NodeId, NodeStatus, PublicKey, Resources};

/// A `Ready`, schedulable node record derived from `seed`, for tests and demos.
///
/// The same seed always gives the same record:
/// - id: the 8 little-endian bytes of `seed` repeated four times, so small seeds
///   differ in [`NodeId::short`] (seed 1 prints `010000000000…`);
/// - operator: the id's bytes with every bit flipped;
/// - address `node-<seed>.mock:7946`; labels `hostname=node-<seed>` and
///   `zone=zone-<seed % 3>` (`zone-0`, `zone-1`, `zone-2`);
/// - capacity and allocatable both `cpu_millis` / `memory_bytes`; no taints;
///   joined at the Unix epoch.
pub fn test_node(seed: u64, cpu_millis: u64, memory_bytes: u64) -> Node {
    let mut id = [0u8; 32];
    for chunk in id.chunks_exact_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let labels = BTreeMap::from([
        ("hostname".to_owned(), format!("node-{seed}")),
        ("zone".to_owned(), format!("zone-{}", seed % 3)),
    ]);
    let resources = Resources::new(cpu_millis, memory_bytes);
    Node {
        id: NodeId(id),
        address: format!("node-{seed}.mock:7946"),
        status: NodeStatus::Ready,
        unschedulable: false,
        labels,
        taints: Vec::new(),
        resources_capacity: resources,
        resources_allocatable: resources,
        operator: PublicKey(id.map(|b| !b)),
        joined_at: DateTime::UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_nodes_are_deterministic_and_distinct() {
        assert_eq!(test_node(7, 1000, 1 << 30), test_node(7, 1000, 1 << 30));
        let a = test_node(1, 1000, 1 << 30);
        let b = test_node(2, 1000, 1 << 30);
        assert_ne!(a.id, b.id);
        assert_ne!(a.id.short(), b.id.short());
        assert_eq!(a.labels["zone"], "zone-1");
        assert!(a.is_schedulable());
        assert_eq!(test_node(257, 1, 1).id.short(), "010100000000");
    }
}
