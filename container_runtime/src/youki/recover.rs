//! Picking up after a restart: adopting the containers a previous daemon
//! left, and the housekeeping loop that watches adopted containers and
//! applies log size caps.

use std::sync::{Arc, Mutex, Weak};

use chrono::Utc;
use container_runtime_interface::ContainerState;
use tokio::sync::watch;
use tracing::{info, warn};

use super::entry::{lock, Entry, Live, Record};
use super::{cgroup, logs, probe, process, rootfs, Inner, YoukiRuntime, HOUSEKEEPING};

impl YoukiRuntime {
    /// Detaches the bridge attachments of containers that no longer exist
    /// (a daemon that died between attaching and recording a container, or
    /// halfway through removing one).
    pub(super) async fn detach_left_networks(&self) {
        let Some(cni) = &self.inner.cni else {
            return;
        };
        let known: std::collections::HashSet<String> = lock(&self.inner.containers)
            .keys()
            .map(|id| id.as_str().to_owned())
            .collect();
        match cni.gc(|id| known.contains(id)).await {
            Ok(detached) if !detached.is_empty() => {
                info!(
                    ?detached,
                    "detached the networks of containers that are gone"
                )
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "detaching the networks of containers that are gone"),
        }
    }

    /// Adopts what `containers/` holds from a previous daemon.
    pub(super) async fn recover(&self) {
        let Ok(dirs) = std::fs::read_dir(&self.inner.containers_root) else {
            return;
        };
        for dir in dirs.flatten() {
            let dir = dir.path();
            let record = std::fs::read(dir.join("record.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok());
            let Some(record) = record else {
                warn!(dir = %dir.display(), "container directory without a readable record; removing it");
                let _ = rootfs::teardown(&dir);
                continue;
            };
            let id = record.id.clone();
            let alive = match (record.pid, record.pid_ticks) {
                (Some(pid), Some(ticks)) => process::is_alive(pid, ticks),
                _ => false,
            };
            if record.started_at.is_none() {
                // Never finished starting: nobody was told it exists.
                info!(container = %id, "removing a container whose start was interrupted");
                self.destroy(&id, &dir, &record).await;
                continue;
            }
            let (state, exit_code, reason, finished_at) = if alive {
                (ContainerState::Running, None, None, None)
            } else if record.exit_code.is_some() || record.finished_at.is_some() {
                (
                    ContainerState::Exited,
                    record.exit_code,
                    record.reason.clone(),
                    record.finished_at,
                )
            } else {
                let reason = if cgroup::oom_killed(self.inner.layout, &record.cgroups_path) {
                    "OOMKilled"
                } else {
                    "Unknown"
                };
                (
                    ContainerState::Exited,
                    Some(-1),
                    Some(reason.to_owned()),
                    Some(Utc::now()),
                )
            };
            info!(container = %id, ?state, "adopted a container from before the restart");
            self.inner.images.acquire(&record.image());
            self.inner.ports.hold(&id, &record.ports);
            let (exited, _) = watch::channel(state == ContainerState::Exited);
            let entry = Arc::new(Entry {
                dir: dir.clone(),
                live: Mutex::new(Live {
                    state,
                    exit_code,
                    reason,
                    started_at: record.started_at,
                    finished_at,
                    ready: state == ContainerState::Running
                        && record.config.readiness_probe.is_none(),
                    probe_ready: record.config.readiness_probe.is_none(),
                    ports_pending: false,
                    publish_failed: false,
                    liveness_failed: false,
                    adopted: true,
                }),
                record: Mutex::new(record.clone()),
                exited,
                probes: self.inner.shutdown.child_token(),
                network_settled: watch::channel(true).0,
            });
            lock(&self.inner.by_key)
                .insert((record.instance_id, record.config.name.clone()), id.clone());
            lock(&self.inner.containers).insert(id, entry.clone());
            if state == ContainerState::Running {
                probe::spawn(Arc::downgrade(&self.inner), entry);
            }
        }
    }
}

/// Watches adopted containers and applies log caps, until shutdown.
pub(super) async fn housekeeping(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let token = inner.shutdown.clone();
        let rt = YoukiRuntime { inner };
        let entries: Vec<Arc<Entry>> = lock(&rt.inner.containers).values().cloned().collect();
        let max = rt.inner.cfg.log_max_bytes;
        for e in entries {
            if !e.is_running() {
                continue;
            }
            if let Err(err) = logs::enforce_cap(&e.dir, max) {
                tracing::debug!(error = %err, "applying the log cap");
            }
            let adopted = lock(&e.live).adopted;
            if adopted {
                if let Some((pid, Some(ticks))) = e.pid() {
                    if !process::is_alive(pid, ticks) {
                        rt.on_exit(&e, None);
                    }
                }
            }
        }
        drop(rt);
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(HOUSEKEEPING) => {}
        }
    }
}
