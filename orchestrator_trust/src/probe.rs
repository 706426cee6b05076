//! Honesty probes (MYCELIAL.md §3 H, SPEC §17 "resources delivered vs
//! promised"): the control plane runs a short benchmark container on each
//! node of another operator and compares the CPU it got, from its cgroup,
//! with the CPU the node promised it — the smaller of one core and what the
//! node advertises free — then signs a `Probe` observation of the ratio.
//! A node that advertises more than it has (`--node-cpu 16` on two cores, or
//! a machine already busy with other work) delivers less and its honesty H
//! falls.
//!
//! - The benchmark: `--probe-image` (any image with a POSIX `sh` and `date`,
//!   e.g. busybox), `sh -c` busy-looping for [`ProbeConfig::duration`] with a
//!   CPU limit of the promised share, under the system workload
//!   ([`WorkloadId::SYSTEM`]: the reconciler leaves it alone), removed after.
//!   The loop is shell arithmetic, with `date` forked only between runs of
//!   20,000 steps: a loop forking `date` on every step measured the
//!   scheduler's favour to new processes more than the CPU a node delivers
//!   (sharing a core with two busy loops it got 0.64–0.77 of its share where
//!   1/3 was its due; this loop gets 0.29–0.31).
//! - Measured: cgroup CPU seconds ÷ (seconds it ran × promised cores).
//!   Memory and disk are not benchmarked yet, and are reported as delivered
//!   (ratio 1), so only CPU can lower H.
//! - Without a probe image (the default) no probe runs. A node with less than
//!   [`MIN_CPU_MILLIS`] advertised free is not probed that round (a full node
//!   owes no more). Everything a node measures passes through its own
//!   runtime: probes catch capacity that is advertised but not there, not a
//!   runtime built to lie.

use std::sync::Arc;
use std::time::Duration;

use container_runtime_interface::{ContainerRuntime, ContainerSpec, ContainerState};
use orchestrator_shared_types::{
    ports::NETWORK_LABEL, ContainerConfig, InstanceId, NetworkMode, Node, NodeStatus, Resources,
    WorkloadId,
};
use state_store_interface::StateStore;
use tracing::{debug, info, warn};

use super::TrustService;
use mycelial::evidence::ObservationKind;

/// Less CPU than this advertised free: no probe this round.
pub const MIN_CPU_MILLIS: u64 = 100;
/// The most CPU a probe asks for.
const MAX_CPU_MILLIS: u64 = 1_000;

/// Honesty probes' settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Benchmark image; `None`: no probes.
    pub image: Option<String>,
    /// How often each node is probed.
    pub period: Duration,
    /// How long a benchmark runs.
    pub duration: Duration,
}

impl Default for ProbeConfig {
    /// No probes; once an image is set, every 6 h for 5 s.
    fn default() -> Self {
        Self {
            image: None,
            period: Duration::from_secs(6 * 3600),
            duration: Duration::from_secs(5),
        }
    }
}

/// What one probe measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// CPU promised to the benchmark, millicores.
    pub promised_cpu_millis: u64,
    /// CPU seconds the benchmark got.
    pub cpu_seconds: f64,
    /// Seconds it ran.
    pub wall_seconds: f64,
    /// `cpu_seconds / (wall_seconds × promised cores)`.
    pub cpu_ratio: f64,
}

impl TrustService {
    /// Probes with `runtime` as `probes` says (the default probes nothing).
    pub fn with_probes(mut self, runtime: Arc<dyn ContainerRuntime>, probes: ProbeConfig) -> Self {
        self.probes = Some((runtime, probes));
        self
    }

    /// The probe period, if probes run.
    pub(super) fn probe_period(&self) -> Option<Duration> {
        self.probes
            .as_ref()
            .filter(|(_, c)| c.image.is_some())
            .map(|(_, c)| c.period)
    }

    /// Probes every Ready node of another operator than this control plane's
    /// node, one at a time, recording each result.
    pub async fn probe_round(&self, store: &dyn StateStore, nodes: &[Node]) {
        let me = nodes.iter().find(|n| n.id == self.me).map(|n| n.operator);
        for node in nodes {
            if node.id == self.me || node.status != NodeStatus::Ready || Some(node.operator) == me {
                continue;
            }
            match self.probe_node(store, node).await {
                Ok(Some(m)) => {
                    info!(node = %node.id.short(), ratio = m.cpu_ratio, "honesty probe");
                    self.observe_node(
                        node.id,
                        ObservationKind::Probe {
                            cpu: m.cpu_ratio,
                            memory: 1.0,
                            disk: 1.0,
                        },
                    )
                    .await;
                }
                Ok(None) => {}
                Err(e) => warn!(node = %node.id.short(), error = %e, "honesty probe failed"),
            }
        }
    }

    /// Runs the benchmark on `node` and measures it; `None` when there is
    /// nothing to probe (no image, no free CPU, a runtime that does not
    /// measure).
    pub async fn probe_node(
        &self,
        store: &dyn StateStore,
        node: &Node,
    ) -> Result<Option<Measured>, String> {
        let Some((runtime, config)) = self.probes.as_ref() else {
            return Ok(None);
        };
        let Some(image) = config.image.as_deref() else {
            return Ok(None);
        };
        let promised = free_cpu(store, node).await?.min(MAX_CPU_MILLIS);
        if promised < MIN_CPU_MILLIS {
            debug!(node = %node.id.short(), free_millis = promised, "not probed: no free CPU");
            return Ok(None);
        }
        let secs = config.duration.as_secs().max(1);
        let container: ContainerConfig = serde_json::from_value(serde_json::json!({
            "name": "honesty-probe",
            "image": image,
            "command": ["sh", "-c", format!(
                "end=$(( $(date +%s) + {secs} )); while [ $(date +%s) -lt $end ]; do \
                 i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done"
            )],
            "resources": {
                "requests": {"cpu": format!("{promised}m"), "memory": "16Mi"},
                "limits": {"cpu": format!("{promised}m"), "memory": "32Mi"}
            }
        }))
        .map_err(|e| format!("building the probe container: {e}"))?;
        let spec = ContainerSpec {
            instance_id: InstanceId::new(),
            workload_id: WorkloadId::SYSTEM,
            config: container,
            // A CPU benchmark needs no network: loopback only, which every
            // node offers (the host's is refused unless its operator allows it).
            labels: [
                ("univrs.io/probe".to_owned(), "honesty".to_owned()),
                (
                    NETWORK_LABEL.to_owned(),
                    NetworkMode::None.as_str().to_owned(),
                ),
            ]
            .into(),
            volumes: Vec::new(),
            secrets: Default::default(),
        };
        let id = runtime
            .create_container(node.id, &spec)
            .await
            .map_err(|e| format!("starting the benchmark: {e}"))?;
        let measured = measure(runtime.as_ref(), &id, config.duration, promised).await;
        if let Err(e) = runtime.remove_container(&id).await {
            warn!(container = %id, error = %e, "removing a probe container");
        }
        measured
    }
}

/// Waits for the benchmark `id` to exit and reads what it got.
async fn measure(
    runtime: &dyn ContainerRuntime,
    id: &orchestrator_shared_types::ContainerId,
    duration: Duration,
    promised: u64,
) -> Result<Option<Measured>, String> {
    let deadline = tokio::time::Instant::now() + duration + Duration::from_secs(60);
    let status = loop {
        let s = runtime
            .get_container_status(id)
            .await
            .map_err(|e| format!("reading the benchmark's status: {e}"))?;
        if s.state == ContainerState::Exited {
            break s;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err("the benchmark did not finish within a minute of its time".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let Some(usage) = runtime
        .container_usage(id)
        .await
        .map_err(|e| format!("reading the benchmark's usage: {e}"))?
    else {
        return Ok(None);
    };
    let wall = match (status.started_at, status.finished_at) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => duration.as_secs_f64(),
    }
    .max(0.001);
    let cores = promised as f64 / 1000.0;
    Ok(Some(Measured {
        promised_cpu_millis: promised,
        cpu_seconds: usage.cpu_seconds,
        wall_seconds: wall,
        cpu_ratio: (usage.cpu_seconds / (wall * cores)).max(0.0),
    }))
}

/// CPU `node` advertises that no stored instance has requested, millicores.
async fn free_cpu(store: &dyn StateStore, node: &Node) -> Result<u64, String> {
    let instances = store
        .list_instances_by_node(&node.id)
        .await
        .map_err(|e| format!("listing the node's instances: {e}"))?;
    let mut requested = Resources::default();
    for i in instances.iter().filter(|i| !i.status.is_terminal()) {
        if let Ok(Some(w)) = store.get_workload(&i.workload_id).await {
            requested = requested.saturating_add(w.spec.instance_request());
        }
    }
    Ok(node
        .resources_allocatable
        .cpu_millis
        .saturating_sub(requested.cpu_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_off_by_default_and_the_image_turns_them_on() {
        let c = ProbeConfig::default();
        assert_eq!(c.image, None);
        assert_eq!(c.period, Duration::from_secs(6 * 3600));
    }
}
