//! `policy/trust.toml`.

use std::collections::BTreeMap;

use orchestrator_shared_types::PublicKey;
use serde::{Deserialize, Serialize};

use super::TRUST_FILE;
use crate::error::Result;
use crate::paths::ConfigDir;
use crate::toml_file::{self, FieldPath, Problem, Validate};

/// Which operators' nodes may run this user's workloads.
///
/// ```toml
/// trusted_operators = ["<64 hex chars>"]
/// allowed_operators = []        # when not empty, only these (and trusted) operators
/// denied_operators = ["<64 hex chars>"]
/// min_reputation = 0.6          # 0.0 ..= 1.0
/// required_attestations = 2
///
/// [required_labels]             # data residency
/// region = "eu"
/// ```
///
/// Defaults (and a missing file): nobody listed, reputation 0, no attestations, no
/// labels — every node is acceptable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// Operators (public keys) trusted regardless of reputation.
    #[serde(default)]
    pub trusted_operators: Vec<PublicKey>,
    /// When not empty, only these operators' nodes (and the trusted ones) run
    /// this user's workloads.
    #[serde(default)]
    pub allowed_operators: Vec<PublicKey>,
    /// Operators whose nodes never run this user's workloads.
    #[serde(default)]
    pub denied_operators: Vec<PublicKey>,
    /// The lowest composite reputation (0.0–1.0) a node must have.
    #[serde(default)]
    pub min_reputation: f64,
    /// How many attestations from distinct operators a node needs.
    #[serde(default)]
    pub required_attestations: u32,
    /// Labels a node must carry with exactly these values (e.g. `region = "eu"`).
    #[serde(default)]
    pub required_labels: BTreeMap<String, String>,
}

impl TrustPolicy {
    /// Reads `policy/trust.toml` of `dir`; a missing file gives the defaults.
    pub fn load(dir: &ConfigDir) -> Result<Self> {
        toml_file::load(dir, TRUST_FILE)
    }

    /// Parses the text of a `trust.toml`.
    pub fn parse(text: &str) -> Result<Self> {
        toml_file::parse(TRUST_FILE, text)
    }

    /// Validates and writes `policy/trust.toml` of `dir` atomically.
    pub fn save(&self, dir: &ConfigDir) -> Result<()> {
        toml_file::save(dir, TRUST_FILE, self)
    }

    /// The rules carried with each of this user's workloads (`spec.trust`).
    pub fn to_rules(&self) -> orchestrator_shared_types::TrustRules {
        orchestrator_shared_types::TrustRules {
            trusted_operators: self.trusted_operators.clone(),
            allowed_operators: self.allowed_operators.clone(),
            denied_operators: self.denied_operators.clone(),
            min_reputation: self.min_reputation,
            required_attestations: self.required_attestations,
            required_labels: self.required_labels.clone(),
        }
    }

    /// Trusts `key`, removing it from the denied list. No-op if already trusted.
    pub fn trust(&mut self, key: PublicKey) {
        self.denied_operators.retain(|k| *k != key);
        if !self.trusted_operators.contains(&key) {
            self.trusted_operators.push(key);
        }
    }

    /// Denies `key`, removing it from the trusted list. No-op if already denied.
    pub fn deny(&mut self, key: PublicKey) {
        self.trusted_operators.retain(|k| *k != key);
        if !self.denied_operators.contains(&key) {
            self.denied_operators.push(key);
        }
    }

    /// Removes `key` from both lists; whether it was in either.
    pub fn forget(&mut self, key: &PublicKey) -> bool {
        let before = self.trusted_operators.len() + self.denied_operators.len();
        self.trusted_operators.retain(|k| k != key);
        self.denied_operators.retain(|k| k != key);
        before != self.trusted_operators.len() + self.denied_operators.len()
    }

    /// Sets `min_reputation` (must be within 0.0–1.0).
    pub fn set_min_reputation(&mut self, value: f64) -> Result<()> {
        check_reputation(value).map_err(Problem::into_value_error)?;
        self.min_reputation = value;
        Ok(())
    }

    /// Whether `key` is explicitly trusted.
    pub fn is_trusted(&self, key: &PublicKey) -> bool {
        self.trusted_operators.contains(key)
    }

    /// Whether `key` is denied.
    pub fn is_denied(&self, key: &PublicKey) -> bool {
        self.denied_operators.contains(key)
    }
}

fn check_reputation(value: f64) -> Result<(), Problem> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Problem::new(
            FieldPath::key("min_reputation"),
            format!("{value} is not between 0 and 1"),
        ))
    }
}

impl Validate for TrustPolicy {
    fn validate(&self) -> Result<(), Problem> {
        check_reputation(self.min_reputation)?;
        for (i, key) in self.denied_operators.iter().enumerate() {
            if self.trusted_operators.contains(key) || self.allowed_operators.contains(key) {
                return Err(Problem::new(
                    FieldPath::key("denied_operators").index(i),
                    format!("{key} is also in trusted_operators or allowed_operators"),
                ));
            }
        }
        for name in self.required_labels.keys() {
            if name.trim().is_empty() {
                return Err(Problem::new(
                    FieldPath::key("required_labels").child(name),
                    "empty label name",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn parses_and_round_trips() {
        let text = format!(
            "trusted_operators = [\"{K1}\"]\ndenied_operators = [\"{K2}\"]\n\
             min_reputation = 0.6\nrequired_attestations = 2\n\n[required_labels]\nregion = \"eu\"\n"
        );
        let p = TrustPolicy::parse(&text).unwrap();
        assert_eq!(p.trusted_operators, vec![K1.parse().unwrap()]);
        assert_eq!(p.required_labels["region"], "eu");
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        p.save(&dir).unwrap();
        assert_eq!(TrustPolicy::load(&dir).unwrap(), p);
    }

    #[test]
    fn range_error_names_file_line_and_field() {
        let text = format!("trusted_operators = [\"{K1}\"]\n\nmin_reputation = 1.5\n");
        let err = TrustPolicy::parse(&text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy/trust.toml:3: min_reputation: 1.5 is not between 0 and 1"
        );
    }

    #[test]
    fn type_error_names_file_line_and_field() {
        let err = TrustPolicy::parse("required_attestations = 1\nmin_reputation = \"high\"\n")
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { line: Some(2), field: Some(f), .. } if f == "min_reputation"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("policy/trust.toml:2: min_reputation: "),
            "{err}"
        );
    }

    #[test]
    fn bad_key_in_a_multiline_list_names_its_line() {
        let text = format!("trusted_operators = [\n  \"{K1}\",\n  \"nothex\",\n]\n");
        let err = TrustPolicy::parse(&text).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy/trust.toml:3: trusted_operators[1]: "),
            "{err}"
        );
    }

    #[test]
    fn a_key_in_both_lists_is_an_error() {
        let text =
            format!("trusted_operators = [\"{K1}\"]\ndenied_operators = [\"{K2}\", \"{K1}\"]\n");
        let err = TrustPolicy::parse(&text).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy/trust.toml:2: denied_operators[1]: "),
            "{err}"
        );
    }

    #[test]
    fn trust_and_deny_move_keys() {
        let k: PublicKey = K1.parse().unwrap();
        let mut p = TrustPolicy::default();
        p.trust(k);
        p.trust(k);
        assert_eq!(p.trusted_operators, vec![k]);
        p.deny(k);
        assert!(p.trusted_operators.is_empty() && p.is_denied(&k));
        p.trust(k);
        assert!(p.is_trusted(&k) && p.denied_operators.is_empty());
        assert!(p.forget(&k));
        assert!(!p.forget(&k));
        assert!(p.set_min_reputation(2.0).is_err());
        p.set_min_reputation(0.25).unwrap();
        assert_eq!(p.min_reputation, 0.25);
    }
}
