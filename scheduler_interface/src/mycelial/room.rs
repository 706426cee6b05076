//! The part of a call that changes with every placement: whether one more
//! instance fits each candidate (`max_per_node`, resource fit) and its weight
//! `C² × fit`, and the draw among them.

use ::mycelial::sample::{weight, weighted_index};
use orchestrator_shared_types::{Node, NodeId, Resources};
use rand::Rng;

use super::candidates::Candidate;
use crate::simple::filter::{Exclusion, Exclusions, Filter};
use crate::simple::ledger::{IdMap, Ledger};
use crate::simple::score::free_fraction_after;

/// How well one more instance that needs `request` fits a node, 0–1: the
/// share of the node's allocatable left free after placing it (the mean over
/// cpu and memory, as the simple scheduler's spread score), divided by one
/// plus the number of untolerated `PreferNoSchedule` taints, so such nodes
/// are drawn less often but not never.
pub(crate) fn fit(
    allocatable: Resources,
    reserved: Resources,
    request: Resources,
    soft_taints: u32,
) -> f64 {
    free_fraction_after(allocatable, reserved.saturating_add(request))
        / f64::from(soft_taints.saturating_add(1))
}

/// What one call places, and where things stand.
pub(super) struct Ctx<'a> {
    /// The call's nodes.
    pub(super) nodes: &'a [Node],
    /// The workload's filters.
    pub(super) filter: &'a Filter<'a>,
    /// What one instance needs.
    pub(super) request: Resources,
    /// The reservations.
    pub(super) ledger: &'a Ledger,
    /// Instances of the workload per node: existing, then placed in the call.
    pub(super) counts: &'a IdMap<NodeId, u32>,
}

/// Per candidate: its weight (0 where one more instance does not fit) and,
/// where it does not fit, why.
#[derive(Debug)]
pub(super) struct Room {
    weights: Vec<f64>,
    fits: Vec<Result<(), Exclusion>>,
    /// How many candidates one more instance fits.
    feasible: usize,
}

impl Room {
    /// The room on every candidate now.
    pub(super) fn new(candidates: &[Candidate], ctx: &Ctx<'_>) -> Self {
        let mut room = Room {
            weights: Vec::with_capacity(candidates.len()),
            fits: Vec::with_capacity(candidates.len()),
            feasible: 0,
        };
        for c in candidates {
            let (w, f) = assess(c, ctx);
            room.feasible += usize::from(f.is_ok());
            room.weights.push(w);
            room.fits.push(f);
        }
        room
    }

    /// Reassesses candidate `k` (after an instance was placed on it).
    pub(super) fn refresh(&mut self, k: usize, c: &Candidate, ctx: &Ctx<'_>) {
        let (w, f) = assess(c, ctx);
        self.feasible = self.feasible - usize::from(self.fits[k].is_ok()) + usize::from(f.is_ok());
        self.weights[k] = w;
        self.fits[k] = f;
    }

    /// A candidate for one more instance, or `None` when it fits none. With
    /// probability `explore` it is drawn uniformly among those it fits;
    /// otherwise with probability proportional to its weight, or uniformly
    /// when every weight is 0 (no evidence yet: the cluster must still run).
    pub(super) fn draw<R: Rng + ?Sized>(&self, rng: &mut R, explore: f64) -> Option<usize> {
        if self.feasible == 0 {
            return None;
        }
        if explore > 0.0 && rng.gen::<f64>() < explore {
            return self.uniform(rng);
        }
        weighted_index(&self.weights, rng).or_else(|| self.uniform(rng))
    }

    fn uniform<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<usize> {
        let nth = rng.gen_range(0..self.feasible);
        self.fits
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_ok())
            .nth(nth)
            .map(|(k, _)| k)
    }

    /// `filtered` plus the candidates one more instance does not fit, per reason.
    pub(super) fn exclusions(&self, filtered: Exclusions) -> Exclusions {
        let mut all = filtered;
        for e in self.fits.iter().filter_map(|f| f.err()) {
            all.add(e);
        }
        all
    }
}

/// The weight of one more instance on `c` and whether it fits.
#[inline]
fn assess(c: &Candidate, ctx: &Ctx<'_>) -> (f64, Result<(), Exclusion>) {
    let node = &ctx.nodes[c.node];
    let count = || {
        if ctx.counts.is_empty() {
            0
        } else {
            ctx.counts.get(&node.id).copied().unwrap_or(0)
        }
    };
    match ctx
        .filter
        .check_room(node, c.soft_taints, || ctx.ledger.reserved(&node.id), count)
    {
        Ok(f) => {
            let fit = fit(
                node.resources_allocatable,
                f.reserved,
                ctx.request,
                c.soft_taints,
            );
            (weight(c.composite, fit), Ok(()))
        }
        Err(e) => (0.0, Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn fit_is_the_free_share_after_placing_less_for_soft_taints() {
        let alloc = Resources::new(4000, 4000);
        let req = Resources::new(1000, 1000);
        assert_eq!(fit(alloc, Resources::ZERO, req, 0), 0.75);
        assert_eq!(fit(alloc, Resources::new(2000, 2000), req, 0), 0.25);
        assert_eq!(fit(alloc, Resources::new(3000, 3000), req, 0), 0.0);
        assert_eq!(fit(alloc, Resources::ZERO, req, 2), 0.25);
    }

    fn room(weights: &[f64], fits: &[bool]) -> Room {
        Room {
            weights: weights.to_vec(),
            fits: fits
                .iter()
                .map(|&ok| {
                    if ok {
                        Ok(())
                    } else {
                        Err(Exclusion::InsufficientCpu)
                    }
                })
                .collect(),
            feasible: fits.iter().filter(|&&ok| ok).count(),
        }
    }

    #[test]
    fn zero_weights_fall_back_to_uniform_over_what_fits() {
        let mut rng = StdRng::seed_from_u64(3);
        let r = room(&[0.0, 0.0, 0.0], &[true, false, true]);
        let mut seen = [0usize; 3];
        for _ in 0..1000 {
            seen[r.draw(&mut rng, 0.0).unwrap_or(9)] += 1;
        }
        assert_eq!(seen[1], 0, "never a candidate it does not fit");
        assert!(seen[0] > 400 && seen[2] > 400, "{seen:?}");
        assert_eq!(room(&[0.0], &[false]).draw(&mut rng, 1.0), None);
    }

    #[test]
    fn exploration_reaches_zero_weight_candidates() {
        let mut rng = StdRng::seed_from_u64(4);
        let r = room(&[1.0, 0.0], &[true, true]);
        let draws = 20_000;
        let zero = (0..draws)
            .filter(|_| r.draw(&mut rng, 0.1) == Some(1))
            .count();
        // Half of the 10 % explored draws land on the zero-weight node.
        let share = zero as f64 / draws as f64;
        assert!((0.04..0.06).contains(&share), "{share}");
        assert!((0..1000).all(|_| r.draw(&mut rng, 0.0) == Some(0)));
    }
}
