//! Workloads: the stored workload with its instance counts, the scale
//! request, and one line of a workload's logs.

use chrono::{DateTime, Utc};
use orchestrator_shared_types::{InstanceId, InstanceStatus, WorkloadDefinition, WorkloadInstance};
use serde::{Deserialize, Serialize};

/// A stored workload with the counts of its instances (the answer of every
/// workload route).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Workload {
    /// The stored definition.
    #[serde(flatten)]
    pub workload: WorkloadDefinition,
    /// Its instances by status (zero counts from a server that sent none).
    #[serde(default)]
    pub status: WorkloadStatus,
}

impl Workload {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.workload.spec.name
    }

    /// Replicas wanted.
    pub fn replicas(&self) -> u32 {
        self.workload.spec.replicas
    }

    /// Whether every wanted replica runs the current generation.
    pub fn is_rolled_out(&self) -> bool {
        let wanted = self.replicas();
        self.status.running == wanted && self.status.up_to_date == wanted
    }
}

/// Counts of a workload's instances. Every count defaults to 0, so an answer
/// from a server that has fewer (or more) of them still reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "jsonschema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct WorkloadStatus {
    /// Replicas wanted.
    pub desired: u32,
    /// Instances running.
    pub running: u32,
    /// Instances placed but not running yet.
    pub pending: u32,
    /// Instances that succeeded.
    pub succeeded: u32,
    /// Instances that failed.
    pub failed: u32,
    /// Instances whose node is lost.
    pub unknown: u32,
    /// Running instances of the current generation.
    pub up_to_date: u32,
    /// Running instances that pass their readiness probes.
    pub ready: u32,
    /// Replicas no node could take yet (they stay Pending until one can).
    pub unscheduled: u32,
    /// Why they could not be placed: the scheduler's reason, naming the
    /// filter or trust rule that excluded the nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl WorkloadStatus {
    /// Counts `instances` of `w` by status.
    pub fn count(w: &WorkloadDefinition, instances: &[WorkloadInstance]) -> Self {
        let mut s = WorkloadStatus {
            desired: w.spec.replicas,
            ..WorkloadStatus::default()
        };
        for i in instances {
            match i.status {
                InstanceStatus::Running => {
                    s.running += 1;
                    if i.ready {
                        s.ready += 1;
                    }
                    if i.generation == w.generation {
                        s.up_to_date += 1;
                    }
                }
                InstanceStatus::Pending => s.pending += 1,
                InstanceStatus::Succeeded => s.succeeded += 1,
                InstanceStatus::Failed => s.failed += 1,
                InstanceStatus::Unknown => s.unknown += 1,
            }
        }
        s
    }
}

/// Body of `POST /api/v1/workloads/{ref}/scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "jsonschema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// The new replica count (0–10000).
    pub replicas: u32,
}

/// One line of output of one container of a workload (one NDJSON line of
/// `GET /api/v1/workloads/{ref}/logs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    /// The instance.
    pub instance: InstanceId,
    /// The container's name in the manifest.
    pub container: String,
    /// When the line was written.
    pub timestamp: DateTime<Utc>,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text.
    pub line: String,
}
