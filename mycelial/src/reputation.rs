//! Per-node reputation components from evidence, exactly as MYCELIAL.md §3
//! says, at a time `now` that the caller passes in. Each is in [0, 1]:
//!
//! - uptime `U = (u+1)/(u+d+2)`, `u`/`d` answered/missed heartbeats decayed
//!   with a 7-day half-life;
//! - reliability `R = (s+1)/(s+f+2)`, a Beta reputation whose counts decay
//!   ×0.95 per outcome and with a 30-day staleness half-life; a failure is
//!   charged only when the same spec ran fine elsewhere;
//! - honesty `H`: starts at 1 (no probe yet) and moves `H ← 0.9·H + 0.1·x`
//!   per probe, `x = min over cpu/mem/disk of min(1, measured/(0.95·promised))`
//!   — the decayed mean with λ = 0.9 whose closed form is MYCELIAL.md §4.4's
//!   `H = x + (1−x)·0.9ⁿ`;
//! - age `A = min(1, ln(1+d)/ln 366)`, `d` the active days.
//!
//! A node with no evidence has the priors `U = R = 0.5`, `H = 1`, `A = 0`.
//! Evidence dated after `now` is ignored.
//!
//! **Active days** (MYCELIAL.md: "days with U ≥ 0.5") are approximated from
//! heartbeats per UTC day: a day is active when the node answered at least one
//! heartbeat that day and at least as many as it missed — the day's own counts
//! standing in for U on that day, since `(a+1)/(a+m+2) ≥ 0.5 ⇔ a ≥ m`. A day
//! without heartbeats is not active; observations cannot predate the node's
//! registration, so a node can never have more active days than days since it
//! joined (plus the day it joined).
//!
//! **Many observers, one voice per operator.** Evidence reaches every control
//! plane by gossip from every observer, and an observer may lie (report every
//! heartbeat of a competitor missed, or every heartbeat of a friend answered).
//! So evidence is not pooled: [`NodeHistory`] keeps it per observer
//! *operator* (the observer node's registered operator; an operator's nodes
//! pool together), each operator's evidence gives its own U, R, H and active
//! days with the formulas above, and each component of the node is the
//! **lower median** of those votes (the ⌈k/2⌉-th smallest of k; A is computed
//! from the median active days). One liar among three honest operators moves
//! nothing: its vote is an extreme, and the median skips it.
//!
//! - An operator votes on a component only with evidence for it, at or before
//!   `now`: heartbeats for U and active days, successes and charged failures
//!   for R (an uncharged failure bears on nothing), probes for H. No voter at
//!   all: the prior.
//! - It votes only once it has [`MIN_VOTES`] such observations of the node —
//!   or, while no operator has that many yet, as many as the best-informed
//!   operator has. So a node seen by a single observer (the control plane
//!   alone: every simulation of MYCELIAL.md §4) is scored from what that
//!   observer saw, exactly as if pooled, while an operator that has seen the
//!   node only once or twice cannot outvote those that watched it.
//! - *Lower* median, for an even number of votes: with two voters (one honest,
//!   one lying) one of them decides whichever median is taken, and the lower
//!   one decides against the node. That is the safer error for the scheduler,
//!   which would otherwise place workloads on a node that is down; and it
//!   defeats the cheapest attack — an operator registering one friendly
//!   observer to praise its own node against the control plane's honest
//!   view. The price is that a bad-mouthing liar wins a 2-voter tie; a third
//!   honest observer (in a gossiped cluster every node observes every other)
//!   breaks it.
//!
//! **What remains.** Operators are free keys, but an observer must be a
//! registered node, and registrations come only from cluster membership,
//! never from gossip; each fake observer operator costs an admitted node.
//! Beyond that, a majority of the voting observer operators, colluding, sets
//! any component to whatever they agree on (half of them suffice to pull it
//! down); the control plane's own observations are one vote like any other.
//! The next step is to weight each vote by the asking user's attestation
//! trust in the observer operator (a weighted median, so observers nobody the
//! user trusts vouches for carry no weight); it is not done yet because the
//! components would then be per user, not per node, multiplying the cache.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

mod history;

pub use history::{NodeHistory, ObserverHistory, MIN_VOTES};

/// Uptime half-life: 7 days, in seconds.
pub const UPTIME_HALF_LIFE_SECS: f64 = 7.0 * 86_400.0;
/// Reliability counts are multiplied by this at every outcome.
pub const RELIABILITY_DECAY: f64 = 0.95;
/// Reliability staleness half-life: 30 days, in seconds.
pub const STALENESS_HALF_LIFE_SECS: f64 = 30.0 * 86_400.0;
/// Honesty keeps this much of its previous value at every probe.
pub const HONESTY_DECAY: f64 = 0.9;
/// A node delivering 95 % of what it promised counts as fully honest.
pub const HONESTY_TOLERANCE: f64 = 0.95;
/// Active days at which age reaches 1.
pub const FULL_AGE_DAYS: f64 = 365.0;
/// `S = SUPPORT_BASE + SUPPORT_WEIGHT·max(A, T̂)`.
pub const SUPPORT_BASE: f64 = 0.65;
/// See [`SUPPORT_BASE`].
pub const SUPPORT_WEIGHT: f64 = 0.35;

/// A heartbeat: answered or missed, at a time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Heartbeat {
    /// When.
    pub at: DateTime<Utc>,
    /// Whether it was answered.
    pub answered: bool,
}

/// An outcome: whether an instance reached its desired state, and whether a
/// failure is charged (the same spec ran fine elsewhere).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// When.
    pub at: DateTime<Utc>,
    /// Whether it succeeded.
    pub success: bool,
    /// For a failure, whether it counts against the node.
    pub charged: bool,
}

/// A probe, already reduced to its score by [`probe_score`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probe {
    /// When.
    pub at: DateTime<Utc>,
    /// `min over cpu/mem/disk of min(1, measured/(0.95·promised))`.
    pub score: f64,
}

/// The node-level components (everything but attestation trust).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeComponents {
    /// U.
    pub uptime: f64,
    /// R.
    pub reliability: f64,
    /// H.
    pub honesty: f64,
    /// A.
    pub age: f64,
    /// The active days A is computed from.
    pub active_days: u32,
}

impl NodeComponents {
    /// The components of a node with no evidence: the priors.
    pub const PRIOR: NodeComponents = NodeComponents {
        uptime: 0.5,
        reliability: 0.5,
        honesty: 1.0,
        age: 0.0,
        active_days: 0,
    };

    /// The composite for attestation trust `t_hat`.
    pub fn composite(&self, t_hat: f64) -> f64 {
        composite(self.uptime, self.reliability, self.honesty, self.age, t_hat)
    }
}

/// `2^(−elapsed/half_life)`; 1 for no or negative elapsed time.
pub fn decay(from: DateTime<Utc>, to: DateTime<Utc>, half_life_secs: f64) -> f64 {
    let secs = (to - from).num_milliseconds() as f64 / 1000.0;
    if secs <= 0.0 {
        1.0
    } else {
        (-secs / half_life_secs).exp2()
    }
}

/// U from heartbeats (any order); those after `now` are ignored.
pub fn uptime(heartbeats: impl IntoIterator<Item = Heartbeat>, now: DateTime<Utc>) -> f64 {
    let (mut u, mut d) = (0.0, 0.0);
    for h in heartbeats.into_iter().filter(|h| h.at <= now) {
        let w = decay(h.at, now, UPTIME_HALF_LIFE_SECS);
        if h.answered {
            u += w;
        } else {
            d += w;
        }
    }
    (u + 1.0) / (u + d + 2.0)
}

/// R from outcomes in time order; those after `now` and uncharged failures
/// are ignored.
pub fn reliability(outcomes: impl IntoIterator<Item = Outcome>, now: DateTime<Utc>) -> f64 {
    let (mut s, mut f) = (0.0, 0.0);
    let mut last: Option<DateTime<Utc>> = None;
    for o in outcomes.into_iter().take_while(|o| o.at <= now) {
        if !o.success && !o.charged {
            continue;
        }
        let k = last.map_or(1.0, |l| decay(l, o.at, STALENESS_HALF_LIFE_SECS)) * RELIABILITY_DECAY;
        s *= k;
        f *= k;
        if o.success {
            s += 1.0;
        } else {
            f += 1.0;
        }
        last = Some(o.at);
    }
    if let Some(l) = last {
        let k = decay(l, now, STALENESS_HALF_LIFE_SECS);
        s *= k;
        f *= k;
    }
    (s + 1.0) / (s + f + 2.0)
}

/// H from probe scores in time order (after `now`: ignored); 1 before any.
pub fn honesty(probes: impl IntoIterator<Item = Probe>, now: DateTime<Utc>) -> f64 {
    probes
        .into_iter()
        .take_while(|p| p.at <= now)
        .fold(1.0, |h, p| {
            HONESTY_DECAY * h + (1.0 - HONESTY_DECAY) * p.score.clamp(0.0, 1.0)
        })
}

/// A probe's score: `min over cpu/mem/disk of min(1, ratio/0.95)`, each ratio
/// being measured/promised; not-a-number counts as 0.
pub fn probe_score(cpu: f64, memory: f64, disk: f64) -> f64 {
    [cpu, memory, disk]
        .into_iter()
        .map(|r| {
            if r.is_nan() {
                0.0
            } else {
                (r / HONESTY_TOLERANCE).clamp(0.0, 1.0)
            }
        })
        .fold(1.0, f64::min)
}

/// Active days (see the module doc) from heartbeats in any order, up to `now`.
pub fn active_days(heartbeats: impl IntoIterator<Item = Heartbeat>, now: DateTime<Utc>) -> u32 {
    let mut days: BTreeMap<i64, (u32, u32)> = BTreeMap::new();
    for h in heartbeats.into_iter().filter(|h| h.at <= now) {
        let day = days.entry(h.at.timestamp().div_euclid(86_400)).or_default();
        if h.answered {
            day.0 += 1;
        } else {
            day.1 += 1;
        }
    }
    let n = days.values().filter(|(a, m)| *a > 0 && a >= m).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A from active days: `min(1, ln(1+d)/ln 366)`.
pub fn age(active_days: u32) -> f64 {
    (f64::from(active_days).ln_1p() / FULL_AGE_DAYS.ln_1p()).min(1.0)
}

/// `C = U·R·H·(0.65 + 0.35·max(A, T̂))`, every input clamped to [0, 1] (NaN
/// as 0), so the result is always in [0, 1].
pub fn composite(uptime: f64, reliability: f64, honesty: f64, age: f64, t_hat: f64) -> f64 {
    let c = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    let support = SUPPORT_BASE + SUPPORT_WEIGHT * c(age).max(c(t_hat));
    c(uptime) * c(reliability) * c(honesty) * support
}

#[cfg(test)]
#[path = "reputation_tests.rs"]
mod tests;
