//! The owner's pushed trust policy and a workload's own `trust` block, both
//! enforced: [`TrustRules::and`].

use std::collections::BTreeSet;

use super::TrustRules;
use crate::ids::PublicKey;

/// A set of operators, or every operator.
#[derive(Clone, Debug, PartialEq)]
enum Operators {
    Every,
    Only(BTreeSet<PublicKey>),
}

impl Operators {
    fn only(keys: &[PublicKey]) -> Self {
        Self::Only(keys.iter().copied().collect())
    }

    fn intersect(self, other: Self) -> Self {
        match (self, other) {
            (Self::Every, x) | (x, Self::Every) => x,
            (Self::Only(a), Self::Only(b)) => Self::Only(a.intersection(&b).copied().collect()),
        }
    }

    fn into_list(self) -> Vec<PublicKey> {
        match self {
            Self::Every => Vec::new(),
            Self::Only(s) => s.into_iter().collect(),
        }
    }
}

impl TrustRules {
    /// Whether the reputation and attestation rules ask nothing.
    fn asks_no_reputation(&self) -> bool {
        self.min_reputation == 0.0 && self.required_attestations == 0
    }

    /// The operators whose nodes pass the operator rule (`allowed_operators`
    /// and the trusted ones), before `denied_operators`.
    fn admitted(&self) -> Operators {
        if self.allowed_operators.is_empty() {
            Operators::Every
        } else {
            let mut keys = self.allowed_operators.clone();
            keys.extend(&self.trusted_operators);
            Operators::only(&keys)
        }
    }

    /// The operators whose nodes pass the reputation and attestation rules
    /// whatever their standing.
    fn exempt(&self) -> Operators {
        if self.asks_no_reputation() {
            Operators::Every
        } else {
            Operators::only(&self.trusted_operators)
        }
    }

    /// Rules that a node passes only if it passes both `self` and `other`:
    /// the owner's pushed trust policy and a workload's own `trust` block,
    /// so that neither can loosen the other.
    ///
    /// Exact for the operator lists, labels and deny lists. The reputation
    /// rule is the stricter of the two (highest minimum, most attestations),
    /// and only an operator both sides exempt from it (trusted, or a side
    /// that asks no reputation) stays exempt: an operator only one side
    /// trusts must meet the stricter minimum, which can refuse a node the
    /// two would pass one by one, never the reverse.
    ///
    /// Fails, naming why, when no operator or no label value could pass
    /// both (disjoint allowed operators, one label required with two values).
    pub fn and(&self, other: &TrustRules) -> Result<TrustRules, String> {
        if self.is_empty() {
            return Ok(other.clone());
        }
        if other.is_empty() {
            return Ok(self.clone());
        }
        let denied: BTreeSet<PublicKey> = self
            .denied_operators
            .iter()
            .chain(&other.denied_operators)
            .copied()
            .collect();
        let admitted = self.admitted().intersect(other.admitted());
        let mut exempt = self.exempt().intersect(other.exempt());
        let allowed = match admitted {
            Operators::Every => Vec::new(),
            Operators::Only(keys) => {
                let keys: BTreeSet<_> = keys.difference(&denied).copied().collect();
                if keys.is_empty() {
                    return Err(
                        "the workload's trust block and its owner's trust policy allow \
                         no operator in common"
                            .to_owned(),
                    );
                }
                exempt = exempt.intersect(Operators::Only(keys.clone()));
                keys.into_iter().collect()
            }
        };
        let min_reputation = self.min_reputation.max(other.min_reputation);
        let required_attestations = self.required_attestations.max(other.required_attestations);
        let trusted = if min_reputation == 0.0 && required_attestations == 0 {
            // No reputation asked: trust only widens the operator rule,
            // which `allowed` already holds.
            Vec::new()
        } else {
            let mut keys = exempt.into_list();
            keys.retain(|k| !denied.contains(k));
            keys
        };
        let mut required_labels = self.required_labels.clone();
        for (k, v) in &other.required_labels {
            match required_labels.get(k) {
                Some(mine) if mine != v => {
                    return Err(format!(
                        "the workload's trust block and its owner's trust policy require \
                         label {k} to be both {mine:?} and {v:?}"
                    ))
                }
                _ => {
                    required_labels.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(TrustRules {
            // Kept allowed when it restricts: a trusted key outside it would widen it.
            allowed_operators: allowed,
            trusted_operators: trusted,
            denied_operators: denied.into_iter().collect(),
            min_reputation,
            required_attestations,
            required_labels,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn k(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    /// Whether a node of `op` with standing `rep` and `att` attestations and
    /// label `region = region` passes `r` (the rules as MYCELIAL.md §3 reads them).
    fn passes(r: &TrustRules, op: PublicKey, rep: f64, att: u32, region: &str) -> bool {
        let trusted = r.trusted_operators.contains(&op);
        !r.denied_operators.contains(&op)
            && (r.allowed_operators.is_empty() || r.allowed_operators.contains(&op) || trusted)
            && (trusted || (rep >= r.min_reputation && att >= r.required_attestations))
            && r.required_labels
                .iter()
                .all(|(key, v)| key == "region" && v == region)
    }

    fn samples() -> Vec<TrustRules> {
        let mut out = vec![TrustRules::default()];
        let lists: [&[u8]; 3] = [&[], &[1], &[1, 2]];
        for trusted in lists {
            for allowed in [&[][..], &[2, 3][..]] {
                for denied in [&[][..], &[3][..]] {
                    for min in [0.0, 0.5] {
                        let mut r = TrustRules {
                            trusted_operators: trusted.iter().map(|b| k(*b)).collect(),
                            allowed_operators: allowed.iter().map(|b| k(*b)).collect(),
                            denied_operators: denied.iter().map(|b| k(*b)).collect(),
                            min_reputation: min,
                            required_attestations: u32::from(min > 0.0 && trusted.len() == 1),
                            ..TrustRules::default()
                        };
                        r.allowed_operators
                            .retain(|a| !r.trusted_operators.contains(a));
                        if r.validate().is_ok() {
                            out.push(r.clone());
                            r.required_labels.insert("region".into(), "eu".into());
                            out.push(r);
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_combination_never_admits_a_node_either_side_refuses() {
        let rules = samples();
        let mut exact = 0;
        let mut cases = 0;
        for a in &rules {
            for b in &rules {
                let Ok(both) = a.and(b) else { continue };
                assert!(both.validate().is_ok(), "{a:?} and {b:?} gave {both:?}");
                for op in 1..=4 {
                    for rep in [0.0, 0.6] {
                        for att in [0, 1] {
                            for region in ["eu", "us"] {
                                let one_by_one = passes(a, k(op), rep, att, region)
                                    && passes(b, k(op), rep, att, region);
                                let combined = passes(&both, k(op), rep, att, region);
                                assert!(
                                    !combined || one_by_one,
                                    "op {op} rep {rep} att {att} {region}: {a:?} and {b:?} \
                                     gave {both:?}"
                                );
                                cases += 1;
                                exact += usize::from(combined == one_by_one);
                            }
                        }
                    }
                }
            }
        }
        // Stricter only where the doc says (43,748 of 43,808 exact when written).
        assert!(exact * 100 >= cases * 99, "{exact}/{cases} exact");
    }

    #[test]
    fn a_side_without_rules_changes_nothing() {
        let policy = TrustRules {
            denied_operators: vec![k(9)],
            trusted_operators: vec![k(1)],
            min_reputation: 0.7,
            ..TrustRules::default()
        };
        assert_eq!(policy.and(&TrustRules::default()).unwrap(), policy);
        assert_eq!(TrustRules::default().and(&policy).unwrap(), policy);
    }

    #[test]
    fn a_workload_cannot_loosen_its_owners_policy() {
        // The owner denies operator 9 and asks 0.8; an agent's manifest asks
        // almost nothing and allows operator 9 outright.
        let policy = TrustRules {
            denied_operators: vec![k(9)],
            min_reputation: 0.8,
            ..TrustRules::default()
        };
        let loose = TrustRules {
            allowed_operators: vec![k(9), k(1)],
            min_reputation: 0.01,
            ..TrustRules::default()
        };
        let both = loose.and(&policy).unwrap();
        assert_eq!(both.denied_operators, vec![k(9)]);
        assert_eq!(both.allowed_operators, vec![k(1)]);
        assert_eq!(both.min_reputation, 0.8);
        let only_nine = TrustRules {
            allowed_operators: vec![k(9)],
            ..TrustRules::default()
        };
        assert!(only_nine
            .and(&policy)
            .unwrap_err()
            .contains("no operator in common"));
    }

    #[test]
    fn an_operator_the_policy_trusts_stays_exempt_when_the_workload_asks_no_reputation() {
        let policy = TrustRules {
            trusted_operators: vec![k(1)],
            min_reputation: 0.9,
            ..TrustRules::default()
        };
        let own = TrustRules {
            denied_operators: vec![k(2)],
            ..TrustRules::default()
        };
        let both = own.and(&policy).unwrap();
        assert_eq!(both.trusted_operators, vec![k(1)]);
        assert!(passes(&both, k(1), 0.0, 0, "us"));
        assert!(!passes(&both, k(2), 1.0, 9, "us"));
    }

    #[test]
    fn conflicting_labels_are_named() {
        let mut eu = TrustRules::default();
        eu.required_labels.insert("region".into(), "eu".into());
        let mut us = TrustRules::default();
        us.required_labels.insert("region".into(), "us".into());
        let e = eu.and(&us).unwrap_err();
        assert!(e.contains("label region"), "{e}");
    }
}
