//! Workloads and nodes shared by the mycelial scheduler's test files.

use std::sync::Arc;

use orchestrator_shared_types::{Node, PublicKey, Resources, TrustRules, WorkloadDefinition};
use scheduler_interface::testsuite::{ready_node, workload, MIB};

/// What one instance of the tests' workloads requests.
pub fn small() -> Resources {
    Resources::new(100, 64 * MIB)
}

/// A workload of [`small`] instances with trust rules `rules`.
pub fn with_rules(name: &str, rules: TrustRules) -> Arc<WorkloadDefinition> {
    let mut w = workload(name, small());
    w.spec.trust = rules;
    Arc::new(w)
}

/// Big nodes (nothing fills up in these tests), one operator each.
pub fn big_nodes(n: usize) -> Vec<Node> {
    (0..n)
        .map(|i| {
            let mut node = ready_node(1_000_000, 1 << 24);
            node.operator = PublicKey([i as u8 + 1; 32]);
            node
        })
        .collect()
}
