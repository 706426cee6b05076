//! What the runtime keeps about one container: the record on disk
//! (`record.json`) and the live state in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use container_runtime_interface::{ContainerState, ContainerStatus};
use orchestrator_shared_types::private_fs;
use orchestrator_shared_types::{
    ContainerConfig, ContainerId, InstanceId, NodeId, PublishedPort, WorkloadId,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::image::Image;

/// What is kept on disk about a container (`record.json`), written before
/// the container is created and updated when it starts and exits.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) id: ContainerId,
    pub(super) node_id: NodeId,
    pub(super) instance_id: InstanceId,
    pub(super) workload_id: WorkloadId,
    pub(super) config: ContainerConfig,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) image_reference: String,
    pub(super) image_manifest_digest: String,
    pub(super) image_config_digest: String,
    pub(super) image_rootfs: PathBuf,
    pub(super) cgroups_path: String,
    pub(super) pid: Option<i32>,
    pub(super) pid_ticks: Option<u64>,
    pub(super) started_at: Option<DateTime<Utc>>,
    pub(super) finished_at: Option<DateTime<Utc>>,
    pub(super) exit_code: Option<i32>,
    pub(super) reason: Option<String>,
    /// Its address on the node's bridge (bridge mode).
    #[serde(default)]
    pub(super) address: Option<String>,
    /// Its ports published on the node (bridge mode).
    #[serde(default)]
    pub(super) ports: Vec<PublishedPort>,
    /// The volumes it mounts.
    #[serde(default)]
    pub(super) volumes: Vec<container_runtime_interface::VolumeAttachment>,
}

impl Record {
    pub(super) fn image(&self) -> Image {
        Image {
            reference: self.image_reference.clone(),
            manifest_digest: self.image_manifest_digest.clone(),
            config_digest: self.image_config_digest.clone(),
            rootfs: self.image_rootfs.clone(),
            config: Default::default(),
            size_bytes: 0,
        }
    }
}

/// Writes `record` as `dir/record.json` (mode 0600: it holds the
/// container's environment), atomically and durably.
pub(super) fn save_record(dir: &Path, record: &Record) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(record)?;
    Ok(private_fs::write_atomic(&dir.join("record.json"), &bytes)?)
}

/// What changes while a container lives.
#[derive(Clone, Debug)]
pub(super) struct Live {
    pub(super) state: ContainerState,
    pub(super) exit_code: Option<i32>,
    pub(super) reason: Option<String>,
    pub(super) started_at: Option<DateTime<Utc>>,
    pub(super) finished_at: Option<DateTime<Utc>>,
    /// Ready: its readiness probe passes (or it has none) and its published
    /// ports are in place.
    pub(super) ready: bool,
    /// What its readiness probe says (true without one).
    pub(super) probe_ready: bool,
    /// Its published ports are being put in place (after its start).
    pub(super) ports_pending: bool,
    /// Its published ports could not be put in place: it was killed.
    pub(super) publish_failed: bool,
    pub(super) liveness_failed: bool,
    /// Started by this daemon (a child we can wait for) or adopted.
    pub(super) adopted: bool,
}

pub(super) struct Entry {
    pub(super) record: Mutex<Record>,
    pub(super) dir: PathBuf,
    pub(super) live: Mutex<Live>,
    pub(super) exited: watch::Sender<bool>,
    pub(super) probes: CancellationToken,
    /// True once nothing is being added to its network (its published
    /// ports put in place, or given up): removal waits for it.
    pub(super) network_settled: watch::Sender<bool>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Entry {
    pub(super) fn status(&self) -> ContainerStatus {
        let r = lock(&self.record);
        let l = lock(&self.live);
        ContainerStatus {
            id: r.id.clone(),
            node_id: r.node_id,
            instance_id: r.instance_id,
            workload_id: r.workload_id,
            name: r.config.name.clone(),
            state: l.state,
            exit_code: l.exit_code,
            reason: l.reason.clone(),
            started_at: l.started_at,
            finished_at: l.finished_at,
            ready: l.ready,
            address: r.address.clone(),
            ports: r.ports.clone(),
        }
    }

    pub(super) fn pid(&self) -> Option<(i32, Option<u64>)> {
        let r = lock(&self.record);
        r.pid.map(|p| (p, r.pid_ticks))
    }

    pub(super) fn is_running(&self) -> bool {
        lock(&self.live).state == ContainerState::Running
    }
}
