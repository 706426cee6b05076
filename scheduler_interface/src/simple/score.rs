//! Score: how good a feasible node is for one more instance (higher is better).
//!
//! `score = resources + spread_weight × spread − PREFER_NO_SCHEDULE_PENALTY × soft_taints`
//!
//! - resources (0–100), from the free fraction of the node after placing the
//!   instance, averaged over cpu and memory: `Spread` scores the free fraction
//!   (least-allocated), `BinPack` the used fraction (most-allocated);
//! - spread (0–100): `100 / (1 + n)` where `n` is how many instances of the same
//!   workload the node already holds, so replicas prefer distinct nodes;
//! - every untolerated `PreferNoSchedule` taint costs
//!   [`PREFER_NO_SCHEDULE_PENALTY`](super::PREFER_NO_SCHEDULE_PENALTY).

use orchestrator_shared_types::Resources;

use super::filter::Feasible;
use super::{ScoringStrategy, PREFER_NO_SCHEDULE_PENALTY};

/// Weights of one scoring pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scorer {
    pub(crate) strategy: ScoringStrategy,
    pub(crate) spread_weight: f64,
}

impl Scorer {
    /// The score of placing one instance that needs `request` on a node with
    /// `allocatable`, given what the filters learnt about it.
    #[inline]
    pub(crate) fn score(&self, allocatable: Resources, request: Resources, f: &Feasible) -> f64 {
        let free = free_fraction_after(allocatable, f.reserved.saturating_add(request));
        let resources = match self.strategy {
            ScoringStrategy::Spread => 100.0 * free,
            ScoringStrategy::BinPack => 100.0 * (1.0 - free),
        };
        let spread = if self.spread_weight == 0.0 {
            0.0
        } else {
            self.spread_weight * 100.0 / f64::from(f.same_workload.saturating_add(1))
        };
        resources + spread - PREFER_NO_SCHEDULE_PENALTY * f64::from(f.soft_taints)
    }
}

/// Mean over cpu and memory of `(allocatable − used) / allocatable`, in 0–1;
/// a dimension the node does not offer at all (allocatable 0) is left out.
#[inline]
pub(crate) fn free_fraction_after(allocatable: Resources, used: Resources) -> f64 {
    let dim = |alloc: u64, used: u64| {
        (alloc > 0).then(|| alloc.saturating_sub(used) as f64 / alloc as f64)
    };
    match (
        dim(allocatable.cpu_millis, used.cpu_millis),
        dim(allocatable.memory_bytes, used.memory_bytes),
    ) {
        (Some(c), Some(m)) => (c + m) / 2.0,
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn feasible(reserved: Resources, same_workload: u32, soft_taints: u32) -> Feasible {
        Feasible {
            reserved,
            soft_taints,
            same_workload,
        }
    }

    fn scorer(strategy: ScoringStrategy, spread_weight: f64) -> Scorer {
        Scorer {
            strategy,
            spread_weight,
        }
    }

    const ALLOC: Resources = Resources::new(4000, 8 * GIB);
    const REQ: Resources = Resources::new(1000, 2 * GIB);

    #[test]
    fn free_fraction_averages_dimensions() {
        assert_eq!(free_fraction_after(ALLOC, Resources::ZERO), 1.0);
        assert_eq!(
            free_fraction_after(ALLOC, Resources::new(2000, 8 * GIB)),
            0.25
        );
        assert_eq!(
            free_fraction_after(ALLOC, Resources::new(9000, 9 * GIB)),
            0.0
        );
        assert_eq!(
            free_fraction_after(Resources::new(1000, 0), Resources::new(500, 0)),
            0.5
        );
        assert_eq!(free_fraction_after(Resources::ZERO, Resources::ZERO), 0.0);
    }

    #[test]
    fn spread_prefers_the_emptier_node_and_binpack_the_fuller() {
        let empty = feasible(Resources::ZERO, 0, 0);
        let half = feasible(Resources::new(2000, 4 * GIB), 0, 0);
        let s = scorer(ScoringStrategy::Spread, 0.0);
        assert_eq!(s.score(ALLOC, REQ, &empty), 75.0);
        assert_eq!(s.score(ALLOC, REQ, &half), 25.0);
        let b = scorer(ScoringStrategy::BinPack, 0.0);
        assert_eq!(b.score(ALLOC, REQ, &empty), 25.0);
        assert_eq!(b.score(ALLOC, REQ, &half), 75.0);
    }

    #[test]
    fn spread_term_prefers_fewer_instances_of_the_workload() {
        let s = scorer(ScoringStrategy::Spread, 1.0);
        let none = s.score(ALLOC, REQ, &feasible(Resources::ZERO, 0, 0));
        let one = s.score(ALLOC, REQ, &feasible(Resources::ZERO, 1, 0));
        let two = s.score(ALLOC, REQ, &feasible(Resources::ZERO, 2, 0));
        assert!(none > one && one > two, "{none} {one} {two}");
        assert_eq!(none - one, 50.0);
    }

    #[test]
    fn prefer_no_schedule_taints_cost_points() {
        let s = scorer(ScoringStrategy::Spread, 1.0);
        let clean = s.score(ALLOC, REQ, &feasible(Resources::ZERO, 0, 0));
        let tainted = s.score(ALLOC, REQ, &feasible(Resources::ZERO, 0, 2));
        assert_eq!(clean - tainted, 2.0 * PREFER_NO_SCHEDULE_PENALTY);
        // A soft taint outweighs an empty node versus a half-full one.
        let half = s.score(ALLOC, REQ, &feasible(Resources::new(2000, 4 * GIB), 0, 0));
        assert!(half > s.score(ALLOC, REQ, &feasible(Resources::ZERO, 0, 1)));
    }
}
