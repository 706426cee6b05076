//! Enforcing `policy/limits.toml`: the checks `ui` runs before it sends a
//! deploy, a scale or a credit transfer.
//!
//! The limits are the user's own, kept on the user's machine, so the client
//! that holds them enforces them: a request past a limit is refused before
//! anything is sent. Resources count what the workloads reserve — replicas ×
//! the effective requests of one instance — as the scheduler does, over every
//! workload of the user's key.

use orchestrator_shared_types::{CpuQuantity, MemoryQuantity, Resources, WorkloadSpec};

use super::LimitsPolicy;
use crate::error::{Error, Result};

/// Milli-units per credit unit (the ledger counts milli-units).
const MILLI_PER_UNIT: i64 = 1000;

/// What a set of workloads reserves, as the limits count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitUsage {
    /// How many workloads.
    pub workloads: u64,
    /// Replicas × effective requests of one instance, summed.
    pub reserved: Resources,
}

impl LimitUsage {
    /// The usage of `specs`.
    pub fn of<'a>(specs: impl IntoIterator<Item = &'a WorkloadSpec>) -> Self {
        specs.into_iter().fold(Self::default(), |acc, s| Self {
            workloads: acc.workloads + 1,
            reserved: acc.reserved.saturating_add(reserved_by(s)),
        })
    }

    fn plus(self, other: Self) -> Self {
        Self {
            workloads: self.workloads + other.workloads,
            reserved: self.reserved.saturating_add(other.reserved),
        }
    }
}

/// Replicas × the effective requests of one instance of `spec`.
fn reserved_by(spec: &WorkloadSpec) -> Resources {
    let one = spec.instance_request();
    let n = u64::from(spec.replicas);
    Resources::new(
        one.cpu_millis.saturating_mul(n),
        one.memory_bytes.saturating_mul(n),
    )
}

/// Milli-units as units with three decimals, `-12.500`.
fn units(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let abs = milli.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

fn exceeded(limit: &'static str, allowed: impl ToString, problem: String) -> Error {
    Error::LimitExceeded {
        limit,
        allowed: allowed.to_string(),
        problem,
    }
}

impl LimitsPolicy {
    /// Whether any limit needs the user's current workloads to be checked
    /// (`max_cpu`, `max_memory` or `max_workloads`); `max_replicas` needs only
    /// the workload at hand.
    pub fn needs_current_workloads(&self) -> bool {
        self.max_cpu.is_some() || self.max_memory.is_some() || self.max_workloads.is_some()
    }

    /// Checks that the user's workloads stay within every limit once
    /// `proposed` is applied: it replaces the workload of the same name in
    /// `current` (the user's workloads now), or is added to them. Used for a
    /// deploy and, with the new replica count, for a scale.
    ///
    /// Only what `proposed` makes worse is refused: a user already over a
    /// limit (set after deploying) may still shrink or keep a workload.
    pub fn check_apply(&self, current: &[WorkloadSpec], proposed: &WorkloadSpec) -> Result<()> {
        let name = proposed.name.as_str();
        let existing = current.iter().find(|w| w.name == name);
        if let Some(max) = self.max_replicas {
            let before = existing.map_or(0, |w| w.replicas);
            if proposed.replicas > max && proposed.replicas > before {
                return Err(exceeded(
                    "max_replicas",
                    max,
                    format!("{name} would have {} replicas", proposed.replicas),
                ));
            }
        }
        let others = LimitUsage::of(current.iter().filter(|w| w.name != name));
        let now = LimitUsage::of(current.iter());
        let after = LimitUsage::of(std::iter::once(proposed)).plus(others);
        if let Some(max) = self.max_workloads {
            if after.workloads > u64::from(max) && after.workloads > now.workloads {
                return Err(exceeded(
                    "max_workloads",
                    max,
                    format!(
                        "{name} would be workload number {} of your key",
                        after.workloads
                    ),
                ));
            }
        }
        if let Some(max) = self.max_cpu {
            let (was, will) = (now.reserved.cpu_millis, after.reserved.cpu_millis);
            if will > max.millis() && will > was {
                return Err(exceeded(
                    "max_cpu",
                    max,
                    format!(
                        "{name} with {} replicas would bring the CPU your workloads \
                         request to {} (now {})",
                        proposed.replicas,
                        CpuQuantity(will),
                        CpuQuantity(was)
                    ),
                ));
            }
        }
        if let Some(max) = self.max_memory {
            let (was, will) = (now.reserved.memory_bytes, after.reserved.memory_bytes);
            if will > max.bytes() && will > was {
                return Err(exceeded(
                    "max_memory",
                    max,
                    format!(
                        "{name} with {} replicas would bring the memory your workloads \
                         request to {} (now {})",
                        proposed.replicas,
                        MemoryQuantity(will),
                        MemoryQuantity(was)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks that sending `amount` milli-units leaves the user's balance, less
    /// what is held for running instances, no lower than `-credit_limit` units.
    /// `balance` and `held` are in milli-units, as the ledger reports them.
    pub fn check_transfer(&self, balance: i64, held: i64, amount: i64) -> Result<()> {
        let Some(limit) = self.credit_limit else {
            return Ok(());
        };
        let after = balance.saturating_sub(held).saturating_sub(amount);
        let floor = limit.saturating_mul(MILLI_PER_UNIT).saturating_neg();
        if after < floor {
            return Err(exceeded(
                "credit_limit",
                limit,
                format!(
                    "sending {} would take your balance less holds from {} to {}, \
                     below -{limit}",
                    units(amount),
                    units(balance.saturating_sub(held)),
                    units(after)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, replicas: u32, cpu: &str, memory: &str) -> WorkloadSpec {
        let yaml = format!(
            "name: {name}\nreplicas: {replicas}\ncontainers:\n  - name: main\n    image: busybox\n    \
             resources: {{requests: {{cpu: {cpu}, memory: {memory}}}}}\n"
        );
        WorkloadSpec::from_yaml(&yaml).expect("a test manifest")
    }

    fn limits(text: &str) -> LimitsPolicy {
        LimitsPolicy::parse(text).expect("test limits")
    }

    #[test]
    fn no_limits_allow_anything() {
        let p = LimitsPolicy::default();
        assert!(!p.needs_current_workloads());
        p.check_apply(&[], &spec("a", 10_000, "64", "1Ti")).unwrap();
        p.check_transfer(0, 0, i64::MAX).unwrap();
    }

    #[test]
    fn max_replicas_refuses_more_replicas_naming_the_limit() {
        let p = limits("max_replicas = 3\n");
        assert!(!p.needs_current_workloads());
        p.check_apply(&[], &spec("web", 3, "100m", "32Mi")).unwrap();
        let err = p
            .check_apply(&[], &spec("web", 4, "100m", "32Mi"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy/limits.toml: max_replicas = 3: web would have 4 replicas"
        );
        // Already over (the limit was set later): shrinking is allowed.
        let current = [spec("web", 6, "100m", "32Mi")];
        p.check_apply(&current, &spec("web", 5, "100m", "32Mi"))
            .unwrap();
    }

    #[test]
    fn max_workloads_counts_new_names_only() {
        let p = limits("max_workloads = 2\n");
        let current = [spec("a", 1, "1", "1Gi"), spec("b", 1, "1", "1Gi")];
        p.check_apply(&current, &spec("b", 2, "1", "1Gi")).unwrap();
        let err = p
            .check_apply(&current, &spec("c", 1, "1", "1Gi"))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy/limits.toml: max_workloads = 2: c would be workload number 3"),
            "{err}"
        );
    }

    #[test]
    fn cpu_and_memory_count_replicas_times_requests_over_every_workload() {
        let p = limits("max_cpu = \"2\"\nmax_memory = \"1Gi\"\n");
        assert!(p.needs_current_workloads());
        let current = [spec("a", 2, "500m", "256Mi")];
        // a: 1 CPU, 512Mi; b adds 1 CPU, 512Mi: exactly at both limits.
        p.check_apply(&current, &spec("b", 2, "500m", "256Mi"))
            .unwrap();
        let err = p
            .check_apply(&current, &spec("b", 3, "500m", "128Mi"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy/limits.toml: max_cpu = 2: b with 3 replicas would bring the CPU your \
             workloads request to 2500m (now 1)"
        );
        let err = p
            .check_apply(&current, &spec("b", 1, "500m", "600Mi"))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy/limits.toml: max_memory = 1Gi: "),
            "{err}"
        );
        // Scaling a itself replaces its own usage rather than adding to it.
        p.check_apply(&current, &spec("a", 4, "500m", "256Mi"))
            .unwrap();
        assert!(p
            .check_apply(&current, &spec("a", 5, "500m", "256Mi"))
            .is_err());
    }

    #[test]
    fn credit_limit_is_a_floor_in_units_below_zero() {
        let p = limits("credit_limit = 10\n");
        // Balance 5 units, 2 held: 13 may be sent (down to -10), not 13.001.
        p.check_transfer(5_000, 2_000, 13_000).unwrap();
        let err = p.check_transfer(5_000, 2_000, 13_001).unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy/limits.toml: credit_limit = 10: sending 13.001 would take your balance \
             less holds from 3.000 to -10.001, below -10"
        );
        assert!(limits("credit_limit = 0\n")
            .check_transfer(0, 0, 1)
            .is_err());
    }
}
