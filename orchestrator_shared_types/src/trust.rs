//! A workload owner's trust rules (SPEC §17, MYCELIAL.md §3 "Rules"): hard
//! constraints on where the workload may run, taken from the owner's
//! `policy/trust.toml`. The owner pushes them to the daemon once
//! ([`POLICY_RECORD`]), and a workload may carry more of its own
//! (`spec.trust`); both hold ([`TrustRules::and`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::PublicKey;

mod combine;

/// Record kind (in the state store's records) of a user's pushed trust
/// policy; the key is the user's public key in hex (`ui policy push`,
/// `PUT /api/v1/trust/policy`). The reconciler enforces it on every
/// workload the user owns, together with the workload's own `trust` block
/// ([`TrustRules::and`]).
pub const POLICY_RECORD: &str = "trust_policy";

/// Where a workload may run. Every rule is a hard filter, never a hint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustRules {
    /// Operators the owner trusts: the seeds of the owner's personalised
    /// attestation trust. Their nodes pass the reputation and attestation rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub trusted_operators: Vec<PublicKey>,
    /// When not empty, only these operators' nodes (and the trusted ones) may run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub allowed_operators: Vec<PublicKey>,
    /// These operators' nodes never run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub denied_operators: Vec<PublicKey>,
    /// Lowest composite reputation (0–1) a node must have, as the owner sees it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_reputation: f64,
    /// Qualifying attestations (from independent attesters) a node's operator needs.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub required_attestations: u32,
    /// Labels a node must carry with exactly these values (data residency,
    /// e.g. `jurisdiction = "eu"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub required_labels: BTreeMap<String, String>,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

impl TrustRules {
    /// Whether there is no rule at all (every node acceptable).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether these rules exclude a node run by `operator` with `labels`
    /// whatever its reputation: a denied operator, one outside a non-empty
    /// allowed list (and not trusted), or a required label missing or
    /// different. Such a node never runs the workload, and an instance
    /// already there is moved off it.
    pub fn excludes(&self, operator: &PublicKey, labels: &BTreeMap<String, String>) -> bool {
        self.denied_operators.contains(operator)
            || (!self.allowed_operators.is_empty()
                && !self.trusted_operators.contains(operator)
                && !self.allowed_operators.contains(operator))
            || self
                .required_labels
                .iter()
                .any(|(k, v)| labels.get(k) != Some(v))
    }

    /// Checks the values; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.min_reputation) || self.min_reputation.is_nan() {
            return Err(format!(
                "trust.min_reputation: {} is not between 0 and 1",
                self.min_reputation
            ));
        }
        if self.required_attestations > 100 {
            return Err(format!(
                "trust.required_attestations: {} is more than 100",
                self.required_attestations
            ));
        }
        if let Some(k) = self
            .denied_operators
            .iter()
            .find(|k| self.allowed_operators.contains(k) || self.trusted_operators.contains(k))
        {
            return Err(format!(
                "trust.denied_operators: {k} is also allowed or trusted"
            ));
        }
        for (k, v) in &self.required_labels {
            if k.is_empty() || k.len() > 253 || v.len() > 253 {
                return Err(format!(
                    "trust.required_labels: {k:?} = {v:?} is not a valid label"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_rules_stay_out_of_the_wire_format() {
        let r = TrustRules::default();
        assert!(r.is_empty());
        assert_eq!(serde_json::to_string(&r).unwrap(), "{}");
        let r: TrustRules = serde_json::from_str(
            r#"{"min_reputation":0.8,"required_labels":{"jurisdiction":"eu"}}"#,
        )
        .unwrap();
        assert!(!r.is_empty());
        assert!(r.validate().is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        let r = TrustRules {
            min_reputation: 1.5,
            ..TrustRules::default()
        };
        assert!(r.validate().unwrap_err().contains("min_reputation"));
        let k = PublicKey([7; 32]);
        let r = TrustRules {
            allowed_operators: vec![k],
            denied_operators: vec![k],
            ..TrustRules::default()
        };
        assert!(r.validate().unwrap_err().contains("denied_operators"));
        assert!(serde_json::from_str::<TrustRules>(r#"{"min_reptuation":1}"#).is_err());
    }
}
