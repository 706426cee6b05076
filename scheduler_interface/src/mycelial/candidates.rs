//! What a call has found on the nodes its walk examined (see `walk`): the
//! candidates — nodes that passed the filters that do not depend on
//! reservations, the owner's trust rules and credit — and how many nodes each
//! filter and rule excluded, for the `NoPlacement` reason.

use std::collections::BTreeMap;

use ::mycelial::rules::{self, Broken};
use ::mycelial::NodeStanding;
use orchestrator_shared_types::TrustRules;

use crate::simple::filter::Exclusions;

/// A node that passed the filters and the trust rules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Candidate {
    /// Its index in the call's node list.
    pub(super) node: usize,
    /// Its composite reputation `C` as the owner sees it, 0–1.
    pub(super) composite: f64,
    /// `PreferNoSchedule` taints the workload does not tolerate.
    pub(super) soft_taints: u32,
    /// What the pledge of an instance here costs the owner (at least 0): 0
    /// on the owner's operator's nodes, or when pledges are not priced.
    pub(super) pledge: i64,
}

/// The nodes one call may use among those it examined, and how many of the
/// others each filter and rule excluded.
#[derive(Debug, Default)]
pub(super) struct Candidates {
    /// Nodes that passed, in the order the walk found them (step by step;
    /// within a step, in node-list order).
    pub(super) eligible: Vec<Candidate>,
    /// Nodes excluded per filter (status, cordon, taints, labels).
    pub(super) filtered: Exclusions,
    /// Nodes excluded per trust rule (the first rule each broke).
    pub(super) broken: BTreeMap<Broken, usize>,
}

impl Candidates {
    /// Counts one node excluded by `broken`.
    pub(super) fn exclude(&mut self, broken: Broken) {
        *self.broken.entry(broken).or_insert(0) += 1;
    }

    /// Why no node takes an instance, given `filtered` (the per-node filter
    /// counts plus those of `max_per_node` and resource fit) and `priced_out`
    /// (candidates whose pledge now exceeds what the owner has left in the
    /// call, counted under `credit`): the trust-rule reason alone when only
    /// trust rules excluded nodes, the simple scheduler's `0/N nodes fit: …`
    /// alone when no trust rule did, else both, filters first: `0/5 nodes
    /// fit: 2 not ready; no node satisfies the owner's trust rules: 3 nodes
    /// excluded by trust.min_reputation (needs ≥ 0.9)`.
    pub(super) fn reason(
        &self,
        rules: &TrustRules,
        filtered: &Exclusions,
        priced_out: usize,
        total_nodes: usize,
    ) -> String {
        let mut priced;
        let broken = if priced_out == 0 {
            &self.broken
        } else {
            priced = self.broken.clone();
            *priced.entry(Broken::Credit).or_insert(0) += priced_out;
            &priced
        };
        if broken.is_empty() {
            filtered.reason(total_nodes)
        } else if filtered.is_empty() {
            rules::reason(rules, broken)
        } else {
            format!(
                "{}; {}",
                filtered.reason(total_nodes),
                rules::reason(rules, broken)
            )
        }
    }
}

/// A composite outside 0–1 is clamped; one that is not a number counts as 0,
/// so that it can neither pass `min_reputation` nor weigh anything.
pub(super) fn sanitize(s: NodeStanding) -> NodeStanding {
    NodeStanding {
        composite: if s.composite.is_nan() {
            0.0
        } else {
            s.composite.clamp(0.0, 1.0)
        },
        ..s
    }
}

#[cfg(test)]
mod tests {
    use crate::simple::filter::Exclusion;

    use super::*;

    #[test]
    fn reasons_name_filters_and_rules() {
        let rules = TrustRules {
            min_reputation: 0.9,
            ..TrustRules::default()
        };
        let mut c = Candidates::default();
        let mut filtered = Exclusions::default();
        assert_eq!(
            c.reason(&rules, &filtered, 0, 0),
            "0/0 nodes fit: the cluster has no nodes"
        );
        filtered.add(Exclusion::NotReady);
        filtered.add(Exclusion::NotReady);
        assert_eq!(
            c.reason(&rules, &filtered, 0, 2),
            "0/2 nodes fit: 2 not ready"
        );
        for _ in 0..3 {
            c.exclude(Broken::MinReputation);
        }
        assert_eq!(
            c.reason(&rules, &filtered, 0, 5),
            "0/5 nodes fit: 2 not ready; no node satisfies the owner's trust rules: \
             3 nodes excluded by trust.min_reputation (needs ≥ 0.9)"
        );
        assert_eq!(
            c.reason(&rules, &Exclusions::default(), 0, 3),
            "no node satisfies the owner's trust rules: \
             3 nodes excluded by trust.min_reputation (needs ≥ 0.9)"
        );
        // Candidates priced out during the call count under credit, with
        // the nodes excluded by it before the call began.
        c.exclude(Broken::Credit);
        assert_eq!(
            c.reason(&rules, &Exclusions::default(), 2, 6),
            "no node satisfies the owner's trust rules: \
             3 nodes excluded by trust.min_reputation (needs ≥ 0.9), \
             3 nodes excluded by credit (the owner's available credit does not cover the pledge)"
        );
        assert_eq!(c.broken.get(&Broken::Credit), Some(&1), "left as it was");
    }

    #[test]
    fn odd_composites_are_made_safe() {
        let s = |composite| {
            sanitize(NodeStanding {
                composite,
                qualifying_attestations: 2,
            })
            .composite
        };
        assert_eq!(s(f64::NAN), 0.0);
        assert_eq!(s(-1.0), 0.0);
        assert_eq!(s(7.0), 1.0);
        assert_eq!(s(0.5), 0.5);
    }
}
