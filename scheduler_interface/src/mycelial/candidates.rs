//! The part of a call that holds for all its instances: the filters that do
//! not depend on reservations, the standings and the owner's pledge headroom
//! (each asked of the [`TrustSource`] once per call), the owner's trust rules
//! and what a pledge costs on each node.

use std::collections::BTreeMap;

use ::mycelial::rules::{self, Broken};
use ::mycelial::{NodeStanding, TrustSource};
use orchestrator_shared_types::{Node, PublicKey, TrustRules};
use tracing::warn;

use crate::simple::filter::{Exclusions, Filter};

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

/// The nodes one call may use, and how many the others were excluded by.
#[derive(Debug, Default)]
pub(super) struct Candidates {
    /// Nodes that passed, in node-list order.
    pub(super) eligible: Vec<Candidate>,
    /// Nodes excluded per filter (status, cordon, taints, labels).
    pub(super) filtered: Exclusions,
    /// Nodes excluded per trust rule (the first rule each broke).
    pub(super) broken: BTreeMap<Broken, usize>,
    /// What the owner could pledge when the call began (`None`: unlimited,
    /// or not asked because no node of another operator passed the rules).
    pub(super) headroom: Option<i64>,
}

impl Candidates {
    /// Runs the per-node filters of `filter` over `nodes`, asks `trust` once
    /// for the standings as `owner` sees them (unless no node passed), then
    /// checks `rules` on the nodes that passed. Last, on those of other
    /// operators, it asks `trust` once for the owner's pledge headroom and,
    /// when pledges are priced, excludes (`credit`) each node where the
    /// pledge of an instance of `cpu_millis` costs more than that headroom.
    pub(super) fn gather(
        nodes: &[Node],
        filter: &Filter<'_>,
        rules: &TrustRules,
        owner: &PublicKey,
        cpu_millis: u64,
        trust: &dyn TrustSource,
    ) -> Self {
        let mut out = Candidates::default();
        let mut passed: Vec<(usize, u32)> = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            match filter.check_node(node) {
                Ok(soft_taints) => passed.push((i, soft_taints)),
                Err(e) => out.filtered.add(e),
            }
        }
        if passed.is_empty() {
            return out;
        }
        // Asked for every node of the call, in its own slice (`standings`
        // takes `&[Node]`): copying out the nodes that passed cost more than
        // the standings of those that did not (see the mycelial bench).
        let standings = trust.standings(owner, &rules.trusted_operators, nodes);
        if standings.len() != nodes.len() {
            warn!(
                asked = nodes.len(),
                answered = standings.len(),
                "the trust source answered for a different number of nodes; \
                 the nodes without an answer count as unknown"
            );
        }
        let has_rules = !rules.is_empty();
        // Asked once, and only if a node of another operator gets this far.
        let mut headroom: Option<Option<i64>> = None;
        out.eligible.reserve(passed.len());
        for &(i, soft_taints) in &passed {
            let standing = standings
                .get(i)
                .map_or(NodeStanding::UNKNOWN, |s| sanitize(*s));
            if has_rules {
                if let Err(broken) = rules::check(rules, &nodes[i], &standing) {
                    out.exclude(broken);
                    continue;
                }
            }
            let mut pledge = 0;
            if nodes[i].operator != *owner {
                if let Some(h) = *headroom.get_or_insert_with(|| trust.pledge_headroom(owner)) {
                    let cost = trust.pledge_cost(&nodes[i], cpu_millis);
                    if cost > h {
                        out.exclude(Broken::Credit);
                        continue;
                    }
                    pledge = cost.max(0);
                }
            }
            out.eligible.push(Candidate {
                node: i,
                composite: standing.composite,
                soft_taints,
                pledge,
            });
        }
        out.headroom = headroom.flatten();
        out
    }

    fn exclude(&mut self, broken: Broken) {
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
fn sanitize(s: NodeStanding) -> NodeStanding {
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
