//! `policy/limits.toml`.

use orchestrator_shared_types::{CpuQuantity, MemoryQuantity};
use serde::{Deserialize, Serialize};

use super::LIMITS_FILE;
use crate::error::{Error, Result};
use crate::paths::ConfigDir;
use crate::toml_file::{self, FieldPath, Problem, Validate};

/// The names accepted by [`LimitsPolicy::set`].
pub const LIMIT_KEYS: &str = "max_cpu, max_memory, max_replicas, max_workloads, credit_limit";

/// Resource and credit limits of this user's workloads, enforced by `ui`
/// before it sends (see `LimitsPolicy::check_apply` and
/// `LimitsPolicy::check_transfer`): `ui deploy` and `ui scale` refuse a
/// change that would take the user's workloads past a resource limit, `ui
/// credits send` a transfer past `credit_limit`; nothing is sent then.
///
/// ```toml
/// max_cpu = "4"          # CPU requested by all your workloads (replicas × requests)
/// max_memory = "8Gi"     # memory requested by all your workloads
/// max_replicas = 10      # per workload
/// max_workloads = 20
/// credit_limit = 1000    # units: how far transfers may take your balance below zero
/// ```
///
/// Every key is optional; an absent key (and a missing file) means no limit.
/// These are the user's own limits, checked by the user's client; the
/// daemon's own limits (its credit limit, its replica cap) apply regardless.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsPolicy {
    /// Total CPU requested across this user's workloads (replicas × the
    /// effective requests of one instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu: Option<CpuQuantity>,
    /// Total memory requested across this user's workloads (replicas × the
    /// effective requests of one instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<MemoryQuantity>,
    /// Replicas of one workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u32>,
    /// Workloads at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workloads: Option<u32>,
    /// How far, in credit units, `ui credits send` may take the balance (less
    /// holds) below zero: zero or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit: Option<i64>,
}

impl LimitsPolicy {
    /// Reads `policy/limits.toml` of `dir`; a missing file gives no limits.
    pub fn load(dir: &ConfigDir) -> Result<Self> {
        toml_file::load(dir, LIMITS_FILE)
    }

    /// Parses the text of a `limits.toml`.
    pub fn parse(text: &str) -> Result<Self> {
        toml_file::parse(LIMITS_FILE, text)
    }

    /// Validates and writes `policy/limits.toml` of `dir` atomically.
    pub fn save(&self, dir: &ConfigDir) -> Result<()> {
        toml_file::save(dir, LIMITS_FILE, self)
    }

    /// Sets limit `key` (one of [`LIMIT_KEYS`]) from text, e.g. `("max_memory",
    /// "8Gi")`. The value `none` (or `unlimited`) removes the limit.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        let clear = value.eq_ignore_ascii_case("none") || value.eq_ignore_ascii_case("unlimited");
        let bad = |problem: String| Error::InvalidValue {
            field: key.to_owned(),
            problem,
        };
        fn parse_or<T: std::str::FromStr>(
            clear: bool,
            value: &str,
            bad: impl Fn(String) -> Error,
        ) -> Result<Option<T>>
        where
            T::Err: std::fmt::Display,
        {
            if clear {
                return Ok(None);
            }
            value
                .parse()
                .map(Some)
                .map_err(|e: T::Err| bad(format!("{value:?}: {e}")))
        }
        let mut next = self.clone();
        match key {
            "max_cpu" => next.max_cpu = parse_or(clear, value, bad)?,
            "max_memory" => next.max_memory = parse_or(clear, value, bad)?,
            "max_replicas" => next.max_replicas = parse_or(clear, value, bad)?,
            "max_workloads" => next.max_workloads = parse_or(clear, value, bad)?,
            "credit_limit" => next.credit_limit = parse_or(clear, value, bad)?,
            _ => {
                return Err(Error::UnknownSetting {
                    key: key.to_owned(),
                    expected: LIMIT_KEYS,
                })
            }
        }
        next.validate().map_err(Problem::into_value_error)?;
        *self = next;
        Ok(())
    }
}

impl Validate for LimitsPolicy {
    fn validate(&self) -> Result<(), Problem> {
        if let Some(limit) = self.credit_limit {
            if limit < 0 {
                return Err(Problem::new(
                    FieldPath::key("credit_limit"),
                    format!("{limit} is negative"),
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
    fn parses_quantities_and_round_trips() {
        let text = "max_cpu = \"4\"\nmax_memory = \"8Gi\"\nmax_replicas = 10\n\
                    max_workloads = 20\ncredit_limit = 1000\n";
        let p = LimitsPolicy::parse(text).unwrap();
        assert_eq!(p.max_cpu, Some(CpuQuantity(4000)));
        assert_eq!(p.max_memory, Some(MemoryQuantity(8 << 30)));
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        p.save(&dir).unwrap();
        assert_eq!(LimitsPolicy::load(&dir).unwrap(), p);
        let saved = std::fs::read_to_string(dir.limits_file()).unwrap();
        assert!(saved.contains("max_memory = \"8Gi\""), "{saved}");
    }

    #[test]
    fn bad_quantity_names_its_line() {
        let err = LimitsPolicy::parse("max_cpu = \"2\"\nmax_memory = \"8Gb\"\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy/limits.toml:2: max_memory: "),
            "{err}"
        );
    }

    #[test]
    fn negative_credit_limit_names_its_line() {
        let err = LimitsPolicy::parse("max_cpu = \"2\"\n\n\ncredit_limit = -5\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy/limits.toml:4: credit_limit: -5 is negative"
        );
    }

    #[test]
    fn negative_replicas_is_a_type_error() {
        let err = LimitsPolicy::parse("max_replicas = -1\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy/limits.toml:1: max_replicas: "),
            "{err}"
        );
    }

    #[test]
    fn set_parses_and_validates() {
        let mut p = LimitsPolicy::default();
        p.set("max_cpu", "500m").unwrap();
        p.set("max_memory", "1.5Gi").unwrap();
        p.set("max_replicas", "3").unwrap();
        p.set("credit_limit", "10").unwrap();
        assert_eq!(p.max_cpu, Some(CpuQuantity(500)));
        assert!(p.set("credit_limit", "-1").is_err());
        assert_eq!(p.credit_limit, Some(10));
        assert!(p.set("max_cpu", "lots").is_err());
        assert!(matches!(
            p.set("max_gpus", "1"),
            Err(Error::UnknownSetting { .. })
        ));
        p.set("max_cpu", "none").unwrap();
        assert_eq!(p.max_cpu, None);
    }
}
