//! Network health (SPEC §17): how concentrated and how new the cluster is.

use std::collections::BTreeMap;

use crate::{Node, PublicKey};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A node younger than this many days is still bootstrapping: it cannot yet
/// attest (MYCELIAL.md §3 "Rules": attesters are ≥ 30 days old) and an
/// unvouched one has not yet earned the age to clear C > 0.8.
pub const BOOTSTRAP_DAYS: i64 = 30;

/// Network health figures, each 0–1 (all 0 for no nodes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkHealth {
    /// `1 − largest operator's share of the nodes`: 0 when one operator runs
    /// everything.
    pub decentralization: f64,
    /// Share of nodes that joined less than [`BOOTSTRAP_DAYS`] ago (by their
    /// `joined_at`): high during growth or a Sybil influx, low when settled.
    pub bootstrap_ratio: f64,
    /// Distinct operators / nodes: 1 when every node has its own operator.
    pub operator_diversity: f64,
    /// Nodes counted.
    pub nodes: usize,
    /// Distinct operators among them.
    pub operators: usize,
}

/// The health figures of `nodes` at `now`.
pub fn network_health(nodes: &[Node], now: DateTime<Utc>) -> NetworkHealth {
    if nodes.is_empty() {
        return NetworkHealth::default();
    }
    let mut per_operator: BTreeMap<&PublicKey, usize> = BTreeMap::new();
    for n in nodes {
        *per_operator.entry(&n.operator).or_default() += 1;
    }
    let total = nodes.len() as f64;
    let largest = per_operator.values().copied().max().unwrap_or(0) as f64;
    let cutoff = now - Duration::days(BOOTSTRAP_DAYS);
    let young = nodes.iter().filter(|n| n.joined_at > cutoff).count() as f64;
    NetworkHealth {
        decentralization: 1.0 - largest / total,
        bootstrap_ratio: young / total,
        operator_diversity: per_operator.len() as f64 / total,
        nodes: nodes.len(),
        operators: per_operator.len(),
    }
}

#[cfg(test)]
mod tests {
    use crate::{NodeId, NodeStatus, Resources};
    use chrono::TimeZone;

    use super::*;

    fn node(id: u8, op: u8, age_days: i64, now: DateTime<Utc>) -> Node {
        Node {
            id: NodeId([id; 32]),
            address: String::new(),
            status: NodeStatus::Ready,
            unschedulable: false,
            labels: BTreeMap::new(),
            taints: vec![],
            resources_capacity: Resources::default(),
            resources_allocatable: Resources::default(),
            operator: PublicKey([op; 32]),
            joined_at: now - Duration::days(age_days),
        }
    }

    #[test]
    fn figures_of_a_small_cluster() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let nodes = [
            node(1, 1, 100, now),
            node(2, 1, 100, now),
            node(3, 2, 5, now),
            node(4, 3, 40, now),
        ];
        let h = network_health(&nodes, now);
        assert_eq!(h.decentralization, 0.5);
        assert_eq!(h.bootstrap_ratio, 0.25);
        assert_eq!(h.operator_diversity, 0.75);
        assert_eq!((h.nodes, h.operators), (4, 3));
        assert_eq!(network_health(&[], now), NetworkHealth::default());
        let one = network_health(&nodes[..2], now);
        assert_eq!(one.decentralization, 0.0);
    }
}
