//! The walk that finds a call's candidates: round the node list from a
//! rotating offset, a step at a time, and only as far as the call needs.
//!
//! A step examines consecutive nodes (wrapping round the end of the list at
//! most once): first the filters that do not depend on reservations, then —
//! for the nodes that passed — their standings as the owner sees them, asked
//! of the [`TrustSource`] in slices of the node list (one per run of nodes
//! that passed close together: usually one per step), the owner's trust rules
//! and, on the nodes of other operators, credit. Each node examined is
//! counted once: under the first filter or rule that excluded it, or as a
//! candidate.

use std::ops::Range;

use ::mycelial::rules::{self, Broken};
use ::mycelial::{NodeStanding, TrustSource};
use orchestrator_shared_types::{Node, PublicKey, TrustRules};
use tracing::warn;

use super::candidates::{sanitize, Candidate, Candidates};
use crate::simple::filter::Filter;

/// Fewest nodes a step examines: a step asks the trust source at least
/// once, and a few more nodes cost less than one more question.
const MIN_STEP: usize = 16;

/// Most nodes between two that passed the filters for which the trust source
/// is still asked in one slice with both, rather than in two: a few nodes'
/// standings cost less than one more question.
const MAX_GAP: usize = 16;

/// What one call asks of the nodes.
pub(super) struct Scope<'a> {
    /// The call's nodes.
    pub(super) nodes: &'a [Node],
    /// The workload's filters.
    pub(super) filter: &'a Filter<'a>,
    /// The owner's trust rules.
    pub(super) rules: &'a TrustRules,
    /// The workload's owner.
    pub(super) owner: &'a PublicKey,
    /// What one instance requests of cpu, to price its pledge.
    pub(super) cpu_millis: u64,
    /// Standings, pledge headroom and pledge costs.
    pub(super) trust: &'a dyn TrustSource,
}

/// A walk round the node list, and what it found so far.
pub(super) struct Walk<'a> {
    scope: Scope<'a>,
    /// Index of the first node examined.
    start: usize,
    /// How many nodes were examined, from `start` on.
    examined: usize,
    /// The nodes of the current step that passed the filters, with their
    /// untolerated `PreferNoSchedule` taints (kept to reuse its allocation).
    passed: Vec<(usize, u32)>,
    /// The owner's pledge headroom once asked (asked at most once, when the
    /// first node of another operator passes the trust rules).
    headroom: Option<Option<i64>>,
    /// Candidates and exclusions of the nodes examined.
    pub(super) found: Candidates,
}

impl<'a> Walk<'a> {
    /// A walk over `scope` that begins at node `start` (modulo the number of
    /// nodes) and has examined nothing yet.
    pub(super) fn new(scope: Scope<'a>, start: u64) -> Self {
        let n = scope.nodes.len() as u64;
        let start = if n == 0 { 0 } else { (start % n) as usize };
        Self {
            scope,
            start,
            examined: 0,
            passed: Vec::new(),
            headroom: None,
            found: Candidates::default(),
        }
    }

    /// Whether every node was examined.
    pub(super) fn done(&self) -> bool {
        self.examined >= self.scope.nodes.len()
    }

    /// How many nodes were examined.
    pub(super) fn examined(&self) -> usize {
        self.examined
    }

    /// What the owner could pledge when it was asked (`None`: unlimited, or
    /// not asked yet because no node of another operator passed the rules —
    /// so no candidate costs anything yet).
    pub(super) fn headroom(&self) -> Option<i64> {
        self.headroom.flatten()
    }

    /// Walks on until `wanted` more candidates were found or every node was
    /// examined. A step may find more than asked; they are kept.
    pub(super) fn gather(&mut self, wanted: usize) {
        let n = self.scope.nodes.len();
        let target = self.found.eligible.len().saturating_add(wanted);
        while self.found.eligible.len() < target && !self.done() {
            let len = self
                .step_len(target - self.found.eligible.len())
                .min(n - self.examined);
            self.step(len);
        }
    }

    /// How many nodes to examine to find `wanted` more candidates: as many at
    /// first; then as many as the share of candidates among the nodes examined
    /// so far says, plus a quarter (so one more step usually suffices); twice
    /// as many as so far when none was found yet.
    fn step_len(&self, wanted: usize) -> usize {
        let found = self.found.eligible.len();
        let len = if self.examined == 0 {
            wanted
        } else if found == 0 {
            self.examined
        } else {
            let guess = wanted as u128 * self.examined as u128 * 5 / (found as u128 * 4) + 1;
            usize::try_from(guess).unwrap_or(usize::MAX)
        };
        len.max(MIN_STEP)
    }

    /// Examines the next `len` nodes (`len` at most those left).
    fn step(&mut self, len: usize) {
        let nodes = self.scope.nodes;
        let n = nodes.len();
        let first = (self.start + self.examined) % n;
        self.examined += len;
        let mut passed = std::mem::take(&mut self.passed);
        passed.clear();
        for k in 0..len {
            let i = if first + k < n {
                first + k
            } else {
                first + k - n
            };
            match self.scope.filter.check_node(&nodes[i]) {
                Ok(soft_taints) => passed.push((i, soft_taints)),
                Err(e) => self.found.filtered.add(e),
            }
        }
        // In list order: a step that wrapped round the end of the list has
        // its nodes from the list's start last.
        if let Some(&(first_passed, _)) = passed.first() {
            if let Some(w) = passed.iter().position(|&(i, _)| i < first_passed) {
                passed.rotate_left(w);
            }
        }
        // `standings` takes a slice (`&[Node]`): one question per run of
        // nodes that passed at most `MAX_GAP` apart, for the nodes from its
        // first to its last.
        let mut from = 0;
        for k in 1..=passed.len() {
            if k == passed.len() || passed[k].0 > passed[k - 1].0 + MAX_GAP {
                let run = &passed[from..k];
                self.judge(run, run[0].0..run[run.len() - 1].0 + 1);
                from = k;
            }
        }
        self.passed = passed;
    }

    /// Asks the standings of the nodes in `span` (which holds every node of
    /// `passed`) once, then checks the trust rules and credit on `passed`.
    fn judge(&mut self, passed: &[(usize, u32)], span: Range<usize>) {
        let Scope {
            nodes,
            rules,
            owner,
            cpu_millis,
            trust,
            ..
        } = self.scope;
        let standings = trust.standings(owner, &rules.trusted_operators, &nodes[span.clone()]);
        if standings.len() != span.len() {
            warn!(
                asked = span.len(),
                answered = standings.len(),
                "the trust source answered for a different number of nodes; \
                 the nodes without an answer count as unknown"
            );
        }
        let has_rules = !rules.is_empty();
        for &(i, soft_taints) in passed {
            let standing = standings
                .get(i - span.start)
                .map_or(NodeStanding::UNKNOWN, |s| sanitize(*s));
            if has_rules {
                if let Err(broken) = rules::check(rules, &nodes[i], &standing) {
                    self.found.exclude(broken);
                    continue;
                }
            }
            let mut pledge = 0;
            if nodes[i].operator != *owner {
                if let Some(h) = *self
                    .headroom
                    .get_or_insert_with(|| trust.pledge_headroom(owner))
                {
                    let cost = trust.pledge_cost(&nodes[i], cpu_millis);
                    if cost > h {
                        self.found.exclude(Broken::Credit);
                        continue;
                    }
                    pledge = cost.max(0);
                }
            }
            self.found.eligible.push(Candidate {
                node: i,
                composite: standing.composite,
                soft_taints,
                pledge,
            });
        }
    }
}
