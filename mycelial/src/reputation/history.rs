//! [`NodeHistory`]: what was observed of one node, kept per observer
//! operator, and the lower-median vote that turns it into the node's
//! components (see the parent module's doc).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orchestrator_shared_types::PublicKey;

use super::{
    active_days, age, honesty, probe_score, reliability, uptime, Heartbeat, NodeComponents,
    Outcome, Probe,
};
use crate::evidence::{EntryHash, ObservationKind};

/// Observations of a kind an observer operator needs of a node before it
/// votes on the components that kind bears on (unless no operator has that
/// many yet: then those with the most vote). Three: a liar must at least keep
/// reporting, and honest observers reach it within a few heartbeats.
pub const MIN_VOTES: usize = 3;

/// Ordering key of evidence: time, then content hash (so the order, and the
/// floating-point results, do not depend on arrival order).
type Key = (DateTime<Utc>, EntryHash);

/// Everything one observer operator (all its nodes) saw of one node, kept
/// sorted by (time, content hash).
#[derive(Clone, Debug, Default)]
pub struct ObserverHistory {
    heartbeats: Vec<(Key, bool)>,
    outcomes: Vec<(Key, (bool, bool))>,
    probes: Vec<(Key, f64)>,
}

fn insert_sorted<T>(v: &mut Vec<(Key, T)>, key: Key, value: T) {
    let at = v.partition_point(|(k, _)| *k < key);
    v.insert(at, (key, value));
}

/// How many of `v` are dated at or before `now` (`v` is sorted by time).
fn count_until<T>(v: &[(Key, T)], now: DateTime<Utc>) -> usize {
    v.partition_point(|((at, _), _)| *at <= now)
}

impl ObserverHistory {
    fn record(&mut self, at: DateTime<Utc>, hash: EntryHash, kind: &ObservationKind) {
        let key = (at, hash);
        match *kind {
            ObservationKind::Heartbeat { answered } => {
                insert_sorted(&mut self.heartbeats, key, answered);
            }
            ObservationKind::Outcome {
                success,
                ran_elsewhere,
            } => insert_sorted(&mut self.outcomes, key, (success, ran_elsewhere)),
            ObservationKind::Probe { cpu, memory, disk } => {
                insert_sorted(&mut self.probes, key, probe_score(cpu, memory, disk));
            }
        }
    }

    /// Heartbeats in time order.
    pub fn heartbeats(&self) -> impl Iterator<Item = Heartbeat> + '_ {
        self.heartbeats.iter().map(|((at, _), answered)| Heartbeat {
            at: *at,
            answered: *answered,
        })
    }

    /// Outcomes in time order.
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome> + '_ {
        self.outcomes
            .iter()
            .map(|((at, _), (success, elsewhere))| Outcome {
                at: *at,
                success: *success,
                charged: *elsewhere,
            })
    }

    /// Probe scores in time order.
    pub fn probes(&self) -> impl Iterator<Item = Probe> + '_ {
        self.probes.iter().map(|((at, _), score)| Probe {
            at: *at,
            score: *score,
        })
    }

    /// Heartbeats up to `now`: this operator's evidence for U and active days.
    fn heartbeat_votes(&self, now: DateTime<Utc>) -> usize {
        count_until(&self.heartbeats, now)
    }

    /// Successes and charged failures up to `now`: its evidence for R.
    fn outcome_votes(&self, now: DateTime<Utc>) -> usize {
        let n = count_until(&self.outcomes, now);
        self.outcomes
            .iter()
            .take(n)
            .filter(|(_, (success, charged))| *success || *charged)
            .count()
    }

    /// Probes up to `now`: its evidence for H.
    fn probe_votes(&self, now: DateTime<Utc>) -> usize {
        count_until(&self.probes, now)
    }

    /// The components at `now` from this operator's evidence alone (a
    /// component it has no evidence for is the prior).
    pub fn components(&self, now: DateTime<Utc>) -> NodeComponents {
        let active_days = active_days(self.heartbeats(), now);
        NodeComponents {
            uptime: uptime(self.heartbeats(), now),
            reliability: reliability(self.outcomes(), now),
            honesty: honesty(self.probes(), now),
            age: age(active_days),
            active_days,
        }
    }
}

/// Everything observed of one node, per observer operator.
#[derive(Clone, Debug, Default)]
pub struct NodeHistory {
    by_operator: BTreeMap<PublicKey, ObserverHistory>,
}

impl NodeHistory {
    /// Records one observation (already verified) made by a node of
    /// `observer_operator`.
    pub(crate) fn record(
        &mut self,
        observer_operator: PublicKey,
        at: DateTime<Utc>,
        hash: EntryHash,
        kind: &ObservationKind,
    ) {
        self.by_operator
            .entry(observer_operator)
            .or_default()
            .record(at, hash, kind);
    }

    /// What each observer operator saw, by operator key.
    pub fn observers(&self) -> impl Iterator<Item = (&PublicKey, &ObserverHistory)> {
        self.by_operator.iter()
    }

    /// What `operator`'s nodes saw (none: nothing).
    pub fn observer(&self, operator: &PublicKey) -> Option<&ObserverHistory> {
        self.by_operator.get(operator)
    }

    /// The components at `now`: per component, the lower median of the
    /// votes of the operators that qualify (see the module doc).
    pub fn components(&self, now: DateTime<Utc>) -> NodeComponents {
        let prior = NodeComponents::PRIOR;
        let by_value = |a: &f64, b: &f64| a.total_cmp(b);
        let active_days = self
            .vote(
                |o| o.heartbeat_votes(now),
                |o| active_days(o.heartbeats(), now),
                Ord::cmp,
            )
            .unwrap_or(prior.active_days);
        NodeComponents {
            uptime: self
                .vote(
                    |o| o.heartbeat_votes(now),
                    |o| uptime(o.heartbeats(), now),
                    by_value,
                )
                .unwrap_or(prior.uptime),
            reliability: self
                .vote(
                    |o| o.outcome_votes(now),
                    |o| reliability(o.outcomes(), now),
                    by_value,
                )
                .unwrap_or(prior.reliability),
            honesty: self
                .vote(
                    |o| o.probe_votes(now),
                    |o| honesty(o.probes(), now),
                    by_value,
                )
                .unwrap_or(prior.honesty),
            age: age(active_days),
            active_days,
        }
    }

    /// The lower median of `value` over the operators whose evidence count
    /// (`count`) is at least `min(MIN_VOTES, the largest count)`, and above
    /// 0; `None` when no operator has evidence.
    fn vote<T>(
        &self,
        count: impl Fn(&ObserverHistory) -> usize,
        value: impl Fn(&ObserverHistory) -> T,
        order: impl Fn(&T, &T) -> Ordering,
    ) -> Option<T> {
        let counted: Vec<(usize, &ObserverHistory)> = self
            .by_operator
            .values()
            .map(|o| (count(o), o))
            .filter(|(n, _)| *n > 0)
            .collect();
        let threshold = counted.iter().map(|(n, _)| *n).max()?.min(MIN_VOTES);
        let mut votes: Vec<T> = counted
            .into_iter()
            .filter(|(n, _)| *n >= threshold)
            .map(|(_, o)| value(o))
            .collect();
        votes.sort_by(order);
        let lower_median = votes.len().saturating_sub(1) / 2;
        votes.into_iter().nth(lower_median)
    }
}
