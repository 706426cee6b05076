//! Per-owner quotas on workloads, replicas, requested CPU and memory, and
//! the size of the owner's volumes (checked in [`super::volumes`]),
//! set by the operator ([`OwnerQuotas`]) and checked by the library API
//! whenever a write would grow an owner's usage: applying (creating or
//! updating) workloads, scaling and rolling back. A refused write changes
//! nothing. A write that does not grow a usage is never refused, so an owner
//! above a lowered quota can still shrink.
//!
//! Usage counts the desired state (each workload's replicas × the effective
//! requests of one instance, as the scheduler reserves them), not the
//! instances running at the moment.

use orchestrator_shared_types::{PublicKey, WorkloadDefinition, WorkloadSpec};

use crate::error::{Error, Result};

/// Quotas of every owner. Every field is finite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerQuotas {
    /// Most workloads of one owner.
    pub max_workloads: u64,
    /// Most replicas of one owner, all workloads together.
    pub max_replicas: u64,
    /// Most CPU (millicores) one owner's replicas may request together.
    pub max_cpu_millis: u64,
    /// Most memory (bytes) one owner's replicas may request together.
    pub max_memory_bytes: u64,
    /// Most bytes of volumes one owner may have, all volumes together.
    pub max_volume_bytes: u64,
}

impl Default for OwnerQuotas {
    /// 100 workloads, 500 replicas, 64 CPU cores, 256 GiB of memory and
    /// 1 TiB of volumes per owner.
    fn default() -> Self {
        Self {
            max_workloads: 100,
            max_replicas: 500,
            max_cpu_millis: 64_000,
            max_memory_bytes: 256 << 30,
            max_volume_bytes: 1 << 40,
        }
    }
}

/// Names of the quotas, as errors and the daemon's settings spell them.
pub mod names {
    /// [`super::OwnerQuotas::max_workloads`].
    pub const WORKLOADS: &str = "quota_workloads";
    /// [`super::OwnerQuotas::max_replicas`].
    pub const REPLICAS: &str = "quota_replicas";
    /// [`super::OwnerQuotas::max_cpu_millis`].
    pub const CPU: &str = "quota_cpu";
    /// [`super::OwnerQuotas::max_memory_bytes`].
    pub const MEMORY: &str = "quota_memory";
    /// [`super::OwnerQuotas::max_volume_bytes`].
    pub const VOLUMES: &str = "quota_volumes";
}

impl OwnerQuotas {
    /// Refuses a quota of 0, which would refuse every workload.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, value) in [
            (names::WORKLOADS, self.max_workloads),
            (names::REPLICAS, self.max_replicas),
            (names::CPU, self.max_cpu_millis),
            (names::MEMORY, self.max_memory_bytes),
            (names::VOLUMES, self.max_volume_bytes),
        ] {
            if value == 0 {
                return Err(format!("{name} is 0: every workload would be refused"));
            }
        }
        Ok(())
    }
}

/// What an owner's workloads hold against the quotas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnerUsage {
    /// Workloads.
    pub workloads: u64,
    /// Replicas, all workloads together.
    pub replicas: u64,
    /// CPU requested by all replicas, millicores.
    pub cpu_millis: u64,
    /// Memory requested by all replicas, bytes.
    pub memory_bytes: u64,
}

impl OwnerUsage {
    /// What one workload of `spec` holds.
    pub fn of(spec: &WorkloadSpec) -> Self {
        let replicas = u64::from(spec.replicas);
        let one = spec.instance_request();
        Self {
            workloads: 1,
            replicas,
            cpu_millis: one.cpu_millis.saturating_mul(replicas),
            memory_bytes: one.memory_bytes.saturating_mul(replicas),
        }
    }

    /// What `owner`'s workloads among `all` hold.
    pub fn of_owner<'a>(
        owner: &PublicKey,
        all: impl IntoIterator<Item = &'a WorkloadDefinition>,
    ) -> Self {
        all.into_iter()
            .filter(|w| w.owner == *owner)
            .fold(Self::default(), |acc, w| acc.plus(Self::of(&w.spec)))
    }

    fn plus(self, o: Self) -> Self {
        Self {
            workloads: self.workloads.saturating_add(o.workloads),
            replicas: self.replicas.saturating_add(o.replicas),
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
        }
    }

    fn minus(self, o: Self) -> Self {
        Self {
            workloads: self.workloads.saturating_sub(o.workloads),
            replicas: self.replicas.saturating_sub(o.replicas),
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(o.memory_bytes),
        }
    }

    /// This usage with the workloads `before` replaced by `after`.
    pub fn replacing(self, before: &[&WorkloadSpec], after: &[&WorkloadSpec]) -> Self {
        let removed = before
            .iter()
            .fold(Self::default(), |acc, s| acc.plus(Self::of(s)));
        let added = after
            .iter()
            .fold(Self::default(), |acc, s| acc.plus(Self::of(s)));
        self.minus(removed).plus(added)
    }
}

/// Refuses going from `before` to `after` if it grows a usage above its quota.
pub fn check(quotas: &OwnerQuotas, before: OwnerUsage, after: OwnerUsage) -> Result<()> {
    let dims = [
        (
            names::WORKLOADS,
            quotas.max_workloads,
            before.workloads,
            after.workloads,
            "workloads",
        ),
        (
            names::REPLICAS,
            quotas.max_replicas,
            before.replicas,
            after.replicas,
            "replicas",
        ),
        (
            names::CPU,
            quotas.max_cpu_millis,
            before.cpu_millis,
            after.cpu_millis,
            "millicores of CPU requested",
        ),
        (
            names::MEMORY,
            quotas.max_memory_bytes,
            before.memory_bytes,
            after.memory_bytes,
            "bytes of memory requested",
        ),
    ];
    for (quota, limit, was, would_use, unit) in dims {
        if would_use > limit && would_use > was {
            return Err(Error::QuotaExceeded {
                quota,
                limit,
                would_use,
                unit,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(workloads: u64, replicas: u64, cpu: u64, mem: u64) -> OwnerUsage {
        OwnerUsage {
            workloads,
            replicas,
            cpu_millis: cpu,
            memory_bytes: mem,
        }
    }

    #[test]
    fn only_growth_above_a_quota_is_refused() {
        let q = OwnerQuotas {
            max_workloads: 2,
            max_replicas: 10,
            max_cpu_millis: 1000,
            max_memory_bytes: 1 << 30,
            max_volume_bytes: 1 << 30,
        };
        let at = usage(2, 10, 1000, 1 << 30);
        assert!(check(&q, usage(0, 0, 0, 0), at).is_ok());
        let err = check(&q, at, usage(3, 10, 1000, 1 << 30)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("quota_workloads") && msg.contains('3') && msg.contains('2'),
            "{msg}"
        );
        let err = check(&q, at, usage(2, 10, 1001, 1 << 30)).unwrap_err();
        assert!(matches!(
            err,
            Error::QuotaExceeded {
                quota: names::CPU,
                limit: 1000,
                would_use: 1001,
                ..
            }
        ));
        // Above a lowered quota, shrinking is allowed and growing is not.
        let above = usage(5, 50, 5000, 4 << 30);
        assert!(check(&q, above, usage(4, 40, 4000, 3 << 30)).is_ok());
        assert!(check(&q, above, usage(4, 51, 4000, 3 << 30)).is_err());
    }

    #[test]
    fn zero_quotas_are_invalid_and_the_defaults_are_finite() {
        let d = OwnerQuotas::default();
        assert!(d.validate().is_ok());
        assert!(d.max_workloads < u64::MAX && d.max_memory_bytes < u64::MAX);
        let zero = OwnerQuotas {
            max_replicas: 0,
            ..d
        };
        assert!(zero.validate().unwrap_err().contains("quota_replicas"));
    }
}
