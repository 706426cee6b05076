//! Attestation trust, personalised per user (MYCELIAL.md §3): EigenTrust over
//! operators seeded from the user's trusted operators, so trust flows only
//! along attestations from what the user already trusts. Cheng & Friedman
//! show no global reputation can be Sybil-proof; a personalised one can: a
//! cluster of Sybils that only attest each other gets exactly 0.
//!
//! - Local trust `c_ij = normalise_j(0.5·v_ij + 0.5·R̄_j)` over the operators
//!   `j` that `i` attests, where `v_ij` is the weight of `i`'s current
//!   attestation of `j` (the latest, unexpired, not revoked) halved every 90
//!   days since it was issued. "R of j's nodes on i's work" is approximated
//!   by `R̄_j`, the mean reliability of `j`'s registered nodes (0.5, the
//!   prior, when it has none): outcomes do not say whose work ran, and an R
//!   term on pairs without an attestation would give every operator —
//!   Sybils included — an edge from everyone.
//! - `t = 0.85·Cᵀt + 0.15·p_u`, `p_u` uniform over the user and its seeds;
//!   the mass of operators without outgoing edges also returns to `p_u`.
//!   Stop when the L1 change is below 1e-9, or after 50 iterations.
//! - `T̂ = 1 − exp(−2N·t)`, with `N` the operators the user's trust reaches
//!   (`t > 0`, the user included): an equal share gives 0.86, no path 0.
//!
//! The graph is sparse (compressed rows); an iteration costs one pass over
//! the attestations.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use orchestrator_shared_types::PublicKey;

use crate::evidence::EvidenceLog;
use crate::reputation::decay;

/// Weight of the propagated trust `Cᵀt` (1 − teleport).
pub const PROPAGATION: f64 = 0.85;
/// Iterations at most.
pub const MAX_ITERATIONS: usize = 50;
/// Stop when the L1 change of `t` is below this.
pub const TOLERANCE: f64 = 1e-9;
/// An attestation's weight halves every 90 days.
pub const ATTESTATION_HALF_LIFE_SECS: f64 = 90.0 * 86_400.0;
/// An attester qualifies only when its oldest node joined this long ago.
pub const MIN_ATTESTER_AGE_DAYS: i64 = 30;
/// An attester qualifies only with `T̂_u(attester)` at least this.
pub const MIN_ATTESTER_TRUST: f64 = 0.2;

/// Operators and their normalised local trust, as compressed rows.
#[derive(Clone, Debug, Default)]
pub struct TrustGraph {
    keys: Vec<PublicKey>,
    index: HashMap<PublicKey, u32>,
    offsets: Vec<usize>,
    targets: Vec<u32>,
    weights: Vec<f64>,
}

impl TrustGraph {
    /// A graph from raw local trust values `(from, to, value)`: values of one
    /// pair are summed, self-loops and values that are not positive and
    /// finite dropped, and each operator's row normalised to sum 1.
    pub fn from_local_trust(edges: impl IntoIterator<Item = (PublicKey, PublicKey, f64)>) -> Self {
        let raw: Vec<(PublicKey, PublicKey, f64)> = edges
            .into_iter()
            .filter(|(from, to, v)| from != to && v.is_finite() && *v > 0.0)
            .collect();
        let mut keys: Vec<PublicKey> = raw.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
        keys.sort_unstable();
        keys.dedup();
        let index: HashMap<PublicKey, u32> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        // Edges by (from, to) index; one pair's values summed in a fixed
        // order, so the result does not depend on the input order.
        let mut numbered: Vec<(u32, u32, f64)> = raw
            .iter()
            .map(|(a, b, v)| (index[a], index[b], *v))
            .collect();
        numbered.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
        numbered.dedup_by(|later, kept| {
            let same = (later.0, later.1) == (kept.0, kept.1);
            if same {
                kept.2 += later.2;
            }
            same
        });
        let mut offsets = Vec::with_capacity(keys.len() + 1);
        let (mut targets, mut weights) = (
            Vec::with_capacity(numbered.len()),
            Vec::with_capacity(numbered.len()),
        );
        let mut edges = numbered.into_iter().peekable();
        for i in 0..keys.len() {
            offsets.push(targets.len());
            let start = weights.len();
            while let Some((_, to, v)) = edges.next_if(|(from, _, _)| *from as usize == i) {
                targets.push(to);
                weights.push(v);
            }
            let sum: f64 = weights[start..].iter().sum();
            weights[start..].iter_mut().for_each(|w| *w /= sum);
        }
        offsets.push(targets.len());
        Self {
            keys,
            index,
            offsets,
            targets,
            weights,
        }
    }

    /// The graph of the attestations that count at `now`, with
    /// `reliability(j)` giving `R̄_j` (see the module doc).
    pub fn from_log(
        log: &EvidenceLog,
        now: DateTime<Utc>,
        mut reliability: impl FnMut(&PublicKey) -> f64,
    ) -> Self {
        let mut r_cache: HashMap<PublicKey, f64> = HashMap::new();
        let edges: Vec<_> = log
            .current_attestations(now)
            .map(|a| {
                let v = a.weight * decay(a.issued_at, now, ATTESTATION_HALF_LIFE_SECS);
                let r = *r_cache
                    .entry(a.subject)
                    .or_insert_with(|| reliability(&a.subject).clamp(0.0, 1.0));
                (a.issuer, a.subject, 0.5 * v + 0.5 * r)
            })
            .collect();
        Self::from_local_trust(edges)
    }

    /// How many operators it has.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many edges it has.
    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// Normalised local trust `c_ij` (0 without an edge).
    pub fn local_trust(&self, from: &PublicKey, to: &PublicKey) -> f64 {
        let (Some(&i), Some(&j)) = (self.index.get(from), self.index.get(to)) else {
            return 0.0;
        };
        let row = self.offsets[i as usize]..self.offsets[i as usize + 1];
        self.targets[row.clone()]
            .iter()
            .zip(&self.weights[row])
            .find(|(t, _)| **t == j)
            .map_or(0.0, |(_, w)| *w)
    }

    /// The user's personalised trust: `p_u` uniform over `user` and `seeds`.
    pub fn personalised(&self, user: &PublicKey, seeds: &[PublicKey]) -> TrustVector {
        let members: BTreeSet<PublicKey> = std::iter::once(*user)
            .chain(seeds.iter().copied())
            .collect();
        self.iterate(&members.into_iter().collect::<Vec<_>>())
    }

    /// Unpersonalised EigenTrust (uniform `p` over every operator): the
    /// baseline, which Sybils can game.
    pub fn global(&self) -> TrustVector {
        self.iterate(&self.keys)
    }

    fn iterate(&self, members: &[PublicKey]) -> TrustVector {
        let n = self.keys.len();
        let share = 1.0 / members.len().max(1) as f64;
        let mut p_in: Vec<(usize, f64)> = Vec::new();
        let mut outside: Vec<PublicKey> = Vec::new();
        for m in members {
            match self.index.get(m) {
                Some(&i) => p_in.push((i as usize, share)),
                None => outside.push(*m),
            }
        }
        let p_out = share * outside.len() as f64;
        let mut t = vec![0.0; n];
        for &(i, s) in &p_in {
            t[i] += s;
        }
        let mut out = p_out;
        let mut next = vec![0.0; n];
        let (mut iterations, mut change) = (0, f64::INFINITY);
        while iterations < MAX_ITERATIONS && change >= TOLERANCE {
            next.iter_mut().for_each(|x| *x = 0.0);
            let mut dangling = out;
            for (i, &ti) in t.iter().enumerate() {
                let row = self.offsets[i]..self.offsets[i + 1];
                if row.is_empty() {
                    dangling += ti;
                } else if ti != 0.0 {
                    let m = PROPAGATION * ti;
                    for (&j, &w) in self.targets[row.clone()].iter().zip(&self.weights[row]) {
                        next[j as usize] += m * w;
                    }
                }
            }
            let back = (1.0 - PROPAGATION) + PROPAGATION * dangling;
            for &(i, s) in &p_in {
                next[i] += back * s;
            }
            let next_out = back * p_out;
            change = t.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum::<f64>()
                + (out - next_out).abs();
            std::mem::swap(&mut t, &mut next);
            out = next_out;
            iterations += 1;
        }
        let mut values: BTreeMap<PublicKey, f64> = self
            .keys
            .iter()
            .zip(&t)
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, v)| (*k, *v))
            .collect();
        for k in &outside {
            values.insert(*k, out / outside.len() as f64);
        }
        TrustVector {
            reach: values.len(),
            values,
            iterations,
            change,
        }
    }
}

/// A user's trust in operators: `t` and `T̂`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrustVector {
    values: BTreeMap<PublicKey, f64>,
    reach: usize,
    iterations: usize,
    change: f64,
}

impl TrustVector {
    /// `t` of an operator (0 when no path from the user reaches it).
    pub fn trust(&self, operator: &PublicKey) -> f64 {
        self.values.get(operator).copied().unwrap_or(0.0)
    }

    /// `T̂ = 1 − exp(−2N·t)`, in [0, 1).
    pub fn normalised(&self, operator: &PublicKey) -> f64 {
        let t = self.trust(operator);
        (1.0 - (-2.0 * self.reach as f64 * t).exp()).clamp(0.0, 1.0)
    }

    /// `N`: how many operators have `t > 0`.
    pub fn reach(&self) -> usize {
        self.reach
    }

    /// Iterations run.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// The L1 change of the last iteration.
    pub fn last_change(&self) -> f64 {
        self.change
    }

    /// Operators with `t > 0`, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&PublicKey, f64)> {
        self.values.iter().map(|(k, v)| (k, *v))
    }
}

/// The attesters of `subject` that qualify for the user whose trust is
/// `trust` (MYCELIAL.md §3 "Rules"), at `now`. An attester qualifies when
/// its attestation counts (valid — verified on receipt —, the latest of its
/// issuer, unexpired, not revoked), it is another operator than the subject,
/// it is at least 30 days old (its oldest registered node joined 30 days
/// ago; an operator with no registered node has no age and never qualifies),
/// and `T̂_u(attester) ≥ 0.2`. Among those, the chosen attesters are pairwise
/// distinct operators on distinct ASNs: taken by `T̂` (highest first, then
/// key), an attester is skipped when one of its nodes' ASNs is already used
/// (unknown ASNs never conflict).
pub fn qualifying_attesters(
    log: &EvidenceLog,
    trust: &TrustVector,
    subject: &PublicKey,
    now: DateTime<Utc>,
) -> Vec<PublicKey> {
    let oldest_allowed = now - Duration::days(MIN_ATTESTER_AGE_DAYS);
    let mut candidates: Vec<(f64, &PublicKey, &BTreeSet<String>)> = log
        .attestations_of(subject, now)
        .filter(|a| a.issuer != *subject)
        .filter_map(|a| {
            let record = log
                .operator(&a.issuer)
                .filter(|r| r.first_joined.is_some_and(|t| t <= oldest_allowed))?;
            let t_hat = trust.normalised(&a.issuer);
            (t_hat >= MIN_ATTESTER_TRUST).then_some((t_hat, &a.issuer, &record.asns))
        })
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let mut used_asns: BTreeSet<&str> = BTreeSet::new();
    let mut chosen = Vec::new();
    for (_, issuer, asns) in candidates {
        if asns.iter().any(|a| used_asns.contains(a.as_str())) {
            continue;
        }
        used_asns.extend(asns.iter().map(String::as_str));
        chosen.push(*issuer);
    }
    chosen
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
