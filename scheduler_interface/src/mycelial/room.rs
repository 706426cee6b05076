//! The part of a call that changes with every placement: whether one more
//! instance fits each candidate (`max_per_node`, resource fit) and its weight
//! `C² × fit`, what the owner has left to pledge on other operators' nodes,
//! and the draw among the candidates.

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

/// Why one more instance cannot go on a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unfit {
    /// It does not fit there (`max_per_node`, resources).
    Room(Exclusion),
    /// Its pledge there costs more than the owner has left in the call.
    Credit,
}

/// Per candidate: its weight (0 where one more instance cannot go) and,
/// where it cannot, why; and what the owner has left to pledge.
#[derive(Debug)]
pub(super) struct Room {
    weights: Vec<f64>,
    fits: Vec<Result<(), Unfit>>,
    /// How many candidates one more instance can go on.
    feasible: usize,
    /// What the owner can still pledge in the call (`None`: unlimited). It
    /// only shrinks, as instances are placed on other operators' nodes.
    budget: Option<i64>,
    /// The dearest pledge of the candidates not priced out: while the
    /// budget covers it, a placement prices out no candidate.
    dearest: i64,
}

impl Room {
    /// The room on each of `candidates` now, for an owner who can pledge
    /// `headroom` in the call (`None`: unlimited, or not asked yet).
    pub(super) fn new(candidates: &[Candidate], ctx: &Ctx<'_>, headroom: Option<i64>) -> Self {
        let mut room = Room {
            weights: Vec::with_capacity(candidates.len()),
            fits: Vec::with_capacity(candidates.len()),
            feasible: 0,
            budget: None,
            dearest: 0,
        };
        room.extend(candidates, ctx, headroom);
        room
    }

    /// Adds the room on `more` candidates (those the walk found since), for
    /// an owner who could pledge `headroom` when the call asked (`None`:
    /// unlimited, or not asked yet). The headroom is asked when the first
    /// node of another operator passes the rules, so until then no candidate
    /// cost anything and none of it was spent: the budget starts from it.
    pub(super) fn extend(&mut self, more: &[Candidate], ctx: &Ctx<'_>, headroom: Option<i64>) {
        if self.budget.is_none() {
            // Candidates whose pledge exceeds the headroom were excluded
            // already; the rest cost at least 0, and free ones stay free.
            self.budget = headroom.map(|h| h.max(0));
        }
        for c in more {
            let (w, f) = assess(c, ctx, self.budget);
            if f != Err(Unfit::Credit) {
                self.dearest = self.dearest.max(c.pledge);
            }
            self.feasible += usize::from(f.is_ok());
            self.weights.push(w);
            self.fits.push(f);
        }
    }

    /// How many candidates one more instance can go on.
    pub(super) fn feasible(&self) -> usize {
        self.feasible
    }

    /// Takes account of an instance placed on candidate `k` of
    /// `candidates`: spends its pledge, which prices out every candidate
    /// whose pledge now exceeds what is left, and reassesses `k`.
    pub(super) fn placed(&mut self, k: usize, candidates: &[Candidate], ctx: &Ctx<'_>) {
        let c = &candidates[k];
        if let Some(budget) = self.budget.as_mut().filter(|_| c.pledge > 0) {
            *budget = budget.saturating_sub(c.pledge);
            if self.dearest > *budget {
                self.price_out(candidates);
            }
        }
        if self.fits[k] != Err(Unfit::Credit) {
            let (w, f) = assess(c, ctx, self.budget);
            self.set(k, w, f);
        }
    }

    /// Marks every candidate whose pledge exceeds the budget as priced out,
    /// and finds the dearest pledge of those left.
    fn price_out(&mut self, candidates: &[Candidate]) {
        let Some(budget) = self.budget else {
            return;
        };
        self.dearest = 0;
        for (j, c) in candidates.iter().enumerate() {
            if self.fits[j] == Err(Unfit::Credit) {
                continue;
            }
            if c.pledge > budget {
                self.set(j, 0.0, Err(Unfit::Credit));
            } else {
                self.dearest = self.dearest.max(c.pledge);
            }
        }
    }

    fn set(&mut self, k: usize, weight: f64, fit: Result<(), Unfit>) {
        self.feasible =
            self.feasible - usize::from(self.fits[k].is_ok()) + usize::from(fit.is_ok());
        self.weights[k] = weight;
        self.fits[k] = fit;
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

    /// `filtered` plus the candidates one more instance does not fit, per
    /// reason (those priced out are counted by [`Room::priced_out`]).
    pub(super) fn exclusions(&self, filtered: Exclusions) -> Exclusions {
        let mut all = filtered;
        for f in &self.fits {
            if let Err(Unfit::Room(e)) = f {
                all.add(*e);
            }
        }
        all
    }

    /// How many candidates are priced out: their pledge exceeds what the
    /// owner has left in the call.
    pub(super) fn priced_out(&self) -> usize {
        self.fits
            .iter()
            .filter(|f| **f == Err(Unfit::Credit))
            .count()
    }
}

/// The weight of one more instance on `c` and whether it can go there, for
/// an owner who can still pledge `budget` (`None`: unlimited).
#[inline]
fn assess(c: &Candidate, ctx: &Ctx<'_>, budget: Option<i64>) -> (f64, Result<(), Unfit>) {
    if budget.is_some_and(|b| c.pledge > b) {
        return (0.0, Err(Unfit::Credit));
    }
    let node = &ctx.nodes[c.node];
    let count = || {
        if ctx.counts.is_empty() {
            0
        } else {
            ctx.counts.get(&node.id).copied().unwrap_or(0)
        }
    };
    match ctx.filter.check_room(
        node,
        c.soft_taints,
        || ctx.ledger.reserved(&node.id),
        count,
        |ports| ctx.ledger.ports_in_use(&node.id, ports),
    ) {
        Ok(f) => {
            let fit = fit(
                node.resources_allocatable,
                f.reserved,
                ctx.request,
                c.soft_taints,
            );
            (weight(c.composite, fit), Ok(()))
        }
        Err(e) => (0.0, Err(Unfit::Room(e))),
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
                        Err(Unfit::Room(Exclusion::InsufficientCpu))
                    }
                })
                .collect(),
            feasible: fits.iter().filter(|&&ok| ok).count(),
            budget: None,
            dearest: 0,
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
