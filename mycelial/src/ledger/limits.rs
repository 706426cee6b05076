//! Credit limits: how far below zero an account's balance minus holds may go.
//! The control plane computes `L_i` from reputation with [`credit_limit`] and
//! records it in the log with a [`crate::ledger::SetLimit`] entry, so every
//! replica and every replay enforces the same limit at the same point.

use std::collections::BTreeMap;

use orchestrator_shared_types::PublicKey;
use serde::{Deserialize, Serialize};

/// The parameters of `L_i = min(L_max, L0 + κ·C_i·E_i)` (MYCELIAL.md §3
/// Ledger 2), all in milli-units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitParams {
    /// `L0` for an account with at least one qualifying attestation. Default
    /// 100,000 (100 units). An account with none has no credit at all.
    pub base: i64,
    /// `κ`: the share of recent (decayed) earnings, weighted by the composite
    /// reputation `C`, that may be borrowed on top of `L0`. Default 0.5: a
    /// provider with `C` = 0.9 that recently earned 1,000 units may owe 450
    /// more.
    pub kappa: f64,
    /// `L_max`: no account may owe more. Default 1,000,000 (1,000 units,
    /// 10·`L0`), which bounds what a group of n attested accounts can owe by
    /// n·`L_max` however they trade among themselves.
    pub max: i64,
}

impl Default for LimitParams {
    fn default() -> Self {
        LimitParams {
            base: 100_000,
            kappa: 0.5,
            max: 1_000_000,
        }
    }
}

/// `L = min(L_max, L0 + κ·C·E)` in milli-units for an account that is
/// `attested` (has at least one qualifying attestation), with composite
/// reputation `composite` (clamped to 0–1; NaN counts as 0) and
/// `decayed_earnings` milli-units earned from settlements (negative counts as
/// 0). An unattested account gets 0 whatever it earned: credit needs an
/// attestation, so a fresh key cannot owe anything (MYCELIAL.md §4.6). The
/// earnings term is rounded down; the result is never negative.
pub fn credit_limit(
    attested: bool,
    composite: f64,
    decayed_earnings: i64,
    params: &LimitParams,
) -> i64 {
    if !attested {
        return 0;
    }
    let c = if composite.is_nan() {
        0.0
    } else {
        composite.clamp(0.0, 1.0)
    };
    let kappa = if params.kappa.is_nan() {
        0.0
    } else {
        params.kappa.max(0.0)
    };
    let earned = decayed_earnings.max(0) as f64;
    // `as` saturates on overflow and maps NaN to 0.
    let extra = (kappa * c * earned).floor() as i64;
    let max = params.max.max(0);
    params.base.max(0).saturating_add(extra).min(max)
}

/// Every account's credit limit; 0 unless set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditLimits {
    limits: BTreeMap<PublicKey, i64>,
}

impl CreditLimits {
    /// The limit of `account`, in milli-units (0 when never set).
    pub fn limit(&self, account: &PublicKey) -> i64 {
        self.limits.get(account).copied().unwrap_or(0)
    }

    /// Sets a limit (negative counts as 0); 0 removes the entry.
    pub fn set_limit(&mut self, account: PublicKey, milli: i64) {
        if milli <= 0 {
            self.limits.remove(&account);
        } else {
            self.limits.insert(account, milli);
        }
    }

    /// Accounts with a limit above zero, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&PublicKey, i64)> {
        self.limits.iter().map(|(k, v)| (k, *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_follows_the_formula_and_its_bounds() {
        let p = LimitParams::default();
        assert_eq!(credit_limit(false, 1.0, 10_000_000, &p), 0);
        assert_eq!(credit_limit(true, 0.0, 0, &p), 100_000);
        assert_eq!(credit_limit(true, 0.9, 1_000_000, &p), 100_000 + 450_000);
        assert_eq!(credit_limit(true, 1.0, i64::MAX, &p), 1_000_000);
        assert_eq!(credit_limit(true, f64::NAN, 1_000_000, &p), 100_000);
        assert_eq!(credit_limit(true, 7.0, 100_000, &p), 150_000);
        assert_eq!(credit_limit(true, 1.0, -5, &p), 100_000);
        let odd = LimitParams {
            base: -3,
            kappa: f64::INFINITY,
            max: 500,
        };
        assert_eq!(credit_limit(true, 1.0, 1, &odd), 500);
    }

    #[test]
    fn limits_default_to_zero() {
        let mut l = CreditLimits::default();
        let k = PublicKey([1; 32]);
        assert_eq!(l.limit(&k), 0);
        l.set_limit(k, 5);
        assert_eq!(l.limit(&k), 5);
        l.set_limit(k, -1);
        assert_eq!(l.limit(&k), 0);
        assert_eq!(l.iter().count(), 0);
    }
}
