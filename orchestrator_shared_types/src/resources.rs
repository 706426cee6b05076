//! Resources: what a node offers and what a container asks for.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::{CpuQuantity, MemoryQuantity};

/// An amount of compute: what a node has, or what instances reserve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

impl Resources {
    /// Nothing.
    pub const ZERO: Resources = Resources {
        cpu_millis: 0,
        memory_bytes: 0,
    };

    /// `cpu_millis` millicores and `memory_bytes` bytes.
    pub const fn new(cpu_millis: u64, memory_bytes: u64) -> Self {
        Self {
            cpu_millis,
            memory_bytes,
        }
    }

    /// Component-wise sum, saturating.
    #[must_use]
    pub fn saturating_add(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
        }
    }

    /// Component-wise difference, floored at zero.
    #[must_use]
    pub fn saturating_sub(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(o.memory_bytes),
        }
    }

    /// Whether `self` is at least `need` in every component.
    pub fn fits(self, need: Resources) -> bool {
        self.cpu_millis >= need.cpu_millis && self.memory_bytes >= need.memory_bytes
    }
}

/// A set of resource amounts as written in a manifest; every entry optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    /// CPU (`100m`, `0.5`, `2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuQuantity>,
    /// Memory (`64Mi`, `1Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryQuantity>,
    /// Maximum number of processes (limits only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
}

/// Requests (what the scheduler reserves) and limits (what the runtime enforces).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResourceRequirements {
    /// Reserved on the node at scheduling time.
    #[serde(default)]
    pub requests: ResourceList,
    /// Enforced by the runtime's cgroup.
    #[serde(default)]
    pub limits: ResourceList,
}

impl ResourceRequirements {
    /// What the scheduler reserves: the request, or the limit where no request
    /// is given (as Kubernetes does), or nothing.
    pub fn effective_request(&self) -> Resources {
        Resources {
            cpu_millis: self
                .requests
                .cpu
                .or(self.limits.cpu)
                .map_or(0, CpuQuantity::millis),
            memory_bytes: self
                .requests
                .memory
                .or(self.limits.memory)
                .map_or(0, MemoryQuantity::bytes),
        }
    }

    /// The QoS class Kubernetes would give a container with these requirements.
    pub fn qos_class(&self) -> QosClass {
        let r = &self.requests;
        let l = &self.limits;
        if r.cpu.is_none() && r.memory.is_none() && l.cpu.is_none() && l.memory.is_none() {
            return QosClass::BestEffort;
        }
        let cpu_eq = l.cpu.is_some() && r.cpu.is_none_or(|c| Some(c) == l.cpu);
        let mem_eq = l.memory.is_some() && r.memory.is_none_or(|m| Some(m) == l.memory);
        if cpu_eq && mem_eq {
            QosClass::Guaranteed
        } else {
            QosClass::Burstable
        }
    }
}

/// Quality-of-service class, derived from requests versus limits.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QosClass {
    /// Requests equal limits for cpu and memory in every container.
    Guaranteed,
    /// Some requests or limits, not all equal.
    Burstable,
    /// Neither requests nor limits.
    BestEffort,
}

impl QosClass {
    /// The class of a set of containers: the weakest of theirs.
    pub fn of<'a>(reqs: impl IntoIterator<Item = &'a ResourceRequirements>) -> QosClass {
        let mut classes = reqs
            .into_iter()
            .map(ResourceRequirements::qos_class)
            .peekable();
        if classes.peek().is_none() {
            return QosClass::BestEffort;
        }
        let all: Vec<_> = classes.collect();
        if all.iter().all(|c| *c == QosClass::Guaranteed) {
            QosClass::Guaranteed
        } else if all.iter().all(|c| *c == QosClass::BestEffort) {
            QosClass::BestEffort
        } else {
            QosClass::Burstable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(
        rc: Option<u64>,
        rm: Option<u64>,
        lc: Option<u64>,
        lm: Option<u64>,
    ) -> ResourceRequirements {
        ResourceRequirements {
            requests: ResourceList {
                cpu: rc.map(CpuQuantity),
                memory: rm.map(MemoryQuantity),
                pids: None,
            },
            limits: ResourceList {
                cpu: lc.map(CpuQuantity),
                memory: lm.map(MemoryQuantity),
                pids: None,
            },
        }
    }

    #[test]
    fn qos_classes_follow_kubernetes() {
        assert_eq!(
            req(None, None, None, None).qos_class(),
            QosClass::BestEffort
        );
        assert_eq!(
            req(Some(100), Some(1), Some(100), Some(1)).qos_class(),
            QosClass::Guaranteed
        );
        assert_eq!(
            req(None, None, Some(100), Some(1)).qos_class(),
            QosClass::Guaranteed
        );
        assert_eq!(
            req(Some(100), None, None, None).qos_class(),
            QosClass::Burstable
        );
        assert_eq!(
            req(Some(100), Some(1), Some(500), Some(1)).qos_class(),
            QosClass::Burstable
        );
    }

    #[test]
    fn effective_request_falls_back_to_limit() {
        assert_eq!(
            req(None, Some(5), Some(300), Some(9)).effective_request(),
            Resources::new(300, 5)
        );
    }

    #[test]
    fn arithmetic_saturates() {
        let a = Resources::new(5, 5);
        assert_eq!(a.saturating_sub(Resources::new(9, 1)), Resources::new(0, 4));
        assert!(Resources::new(u64::MAX, 1)
            .saturating_add(a)
            .fits(Resources::new(u64::MAX, 6)));
    }
}
