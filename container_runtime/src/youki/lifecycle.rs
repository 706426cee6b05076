//! A container's life: create and start, exit, stop, destroy.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use container_runtime_interface::{ContainerSpec, ContainerState, Result, RuntimeError};
use nix::sys::signal::Signal;
use orchestrator_shared_types::private_fs;
use orchestrator_shared_types::{ContainerId, NetworkMode as SharedNetworkMode, NodeId};
use tokio::sync::watch;
use tracing::{info, warn};

use super::bridge::{resolv_conf, Pending, RESOLV_CONF};
use super::entry::{lock, save_record, Entry, Live, Record};
use super::executor::ForkSafeExecutor;
use super::image::{self, ImageError};
use super::{
    calls, cgroup, logs, probe, process, rootfs, spec, worker, NetworkMode, YoukiRuntime,
    HOST_NETWORK_REFUSED, NETWORK_LABEL,
};

pub(super) fn create_error(spec: &ContainerSpec, reason: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Create {
        instance: spec.instance_id,
        name: spec.config.name.clone(),
        reason: reason.to_string(),
    }
}

pub(super) fn op_error(
    operation: &'static str,
    id: &ContainerId,
    reason: impl std::fmt::Display,
) -> RuntimeError {
    RuntimeError::Operation {
        operation,
        id: id.clone(),
        reason: reason.to_string(),
    }
}

pub(super) fn pull_error(image: &str, e: ImageError) -> RuntimeError {
    RuntimeError::ImagePull {
        image: image.to_owned(),
        reason: e.to_string(),
    }
}

/// A new container's id (`u-` and 32 hex digits: also a network namespace's
/// name and a CNI container id).
pub(super) fn new_container_id() -> String {
    format!("u-{}", uuid::Uuid::new_v4().simple())
}

/// Counts a creation under way until dropped (even by a panic).
struct Creating(Arc<super::Inner>);

impl Drop for Creating {
    fn drop(&mut self) {
        self.0
            .creating
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.created.notify_waiters();
    }
}

impl YoukiRuntime {
    /// Removes everything of a container: libcontainer state and cgroup,
    /// mounts, directory, image reference.
    pub(super) async fn destroy(&self, id: &ContainerId, dir: &Path, record: &Record) {
        let state_root = self.inner.state_root.clone();
        let cid = id.to_string();
        if let Err(e) =
            worker::run_forked(move || calls::libcontainer_delete(&cid, &state_root)).await
        {
            warn!(container = %id, error = %e, "deleting libcontainer state");
        }
        // With its processes gone: DEL, then the namespace.
        if let Some(cni) = self
            .inner
            .cni
            .as_ref()
            .filter(|c| c.is_attached(id.as_str()))
        {
            if let Err(e) = cni.detach(id.as_str()).await {
                warn!(container = %id, error = %e, "detaching the container's network");
            }
        }
        self.inner.ports.release(id);
        let d = dir.to_path_buf();
        match tokio::task::spawn_blocking(move || rootfs::teardown(&d)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(container = %id, error = %e, "removing the container directory"),
            Err(e) => warn!(container = %id, error = %e, "removing the container directory"),
        }
        if record.pid.is_some() || record.started_at.is_some() {
            self.inner.images.release(&record.image());
        }
    }

    /// Records that `entry`'s init exited with `code` — on disk first, then
    /// in memory — and tells everyone.
    pub(super) fn on_exit(&self, entry: &Entry, code: Option<i32>) {
        let now = Utc::now();
        let cgroups_path = lock(&entry.record).cgroups_path.clone();
        let oom = cgroup::oom_killed(self.inner.layout, &cgroups_path);
        let (code, reason) = {
            let l = lock(&entry.live);
            if l.state == ContainerState::Exited {
                return;
            }
            let code = code.unwrap_or(-1);
            let reason = if oom {
                "OOMKilled"
            } else if l.liveness_failed {
                "LivenessProbeFailed"
            } else if l.publish_failed {
                "PortsNotPublished"
            } else if l.adopted && code == -1 {
                "Unknown"
            } else if code == 0 {
                "Completed"
            } else {
                "Error"
            };
            (code, reason.to_owned())
        };
        entry.probes.cancel();
        let record = {
            // Held while writing: one writer of record.json at a time.
            let mut r = lock(&entry.record);
            r.exit_code = Some(code);
            r.reason = Some(reason.clone());
            r.finished_at = Some(now);
            if let Err(e) = save_record(&entry.dir, &r) {
                warn!(container = %r.id, error = %e, "saving the exit of a container");
            }
            r.clone()
        };
        {
            let mut l = lock(&entry.live);
            l.state = ContainerState::Exited;
            l.exit_code = Some(code);
            l.reason = Some(reason);
            l.finished_at = Some(now);
            l.ready = false;
        }
        info!(container = %record.id, exit_code = ?record.exit_code, reason = ?record.reason, "container exited");
        entry.exited.send_replace(true);
        self.publish(entry);
    }

    /// Waits on a thread of its own for `entry`'s init to exit.
    pub(super) fn spawn_reaper(&self, entry: Arc<Entry>, pid: i32) {
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name(format!("reap-{pid}"))
            .stack_size(64 << 10)
            .spawn(move || {
                let code = process::wait_child(pid);
                if let Some(inner) = weak.upgrade() {
                    YoukiRuntime { inner }.on_exit(&entry, code);
                }
            });
        if let Err(e) = spawned {
            warn!(pid, error = %e, "cannot start a reaper thread; the exit will be noticed by polling");
            lock(&self.inner.containers).values().for_each(|_| {});
        }
    }

    /// Sets liveness failure and kills the container (from the probe task).
    pub(super) fn kill_for_liveness(&self, entry: &Entry) {
        lock(&entry.live).liveness_failed = true;
        if let Some((pid, _)) = entry.pid() {
            if let Err(e) = process::signal(pid, Signal::SIGKILL) {
                warn!(pid, error = %e, "killing a container whose liveness probe failed");
            }
        }
    }

    pub(super) fn set_ready(&self, entry: &Entry, ready: bool) {
        let changed = {
            let mut l = lock(&entry.live);
            l.probe_ready = ready;
            // Not Ready before its published ports are in place.
            let ready = ready && !l.ports_pending;
            let changed = l.state == ContainerState::Running && l.ready != ready;
            if changed {
                l.ready = ready;
            }
            changed
        };
        if changed {
            self.publish(entry);
        }
    }

    pub(super) async fn create(&self, node: NodeId, spec: &ContainerSpec) -> Result<ContainerId> {
        self.check_node(node)?;
        let key = (spec.instance_id, spec.config.name.clone());
        // A bridged container takes a warm attachment when one is ready,
        // and its id with it (see `cni::warm`).
        let bridged = spec
            .labels
            .get(NETWORK_LABEL)
            .and_then(|l| SharedNetworkMode::parse(l))
            == Some(SharedNetworkMode::Bridge);
        let (id, warm) = {
            let mut keys = lock(&self.inner.by_key);
            if let Some(existing) = keys.get(&key) {
                return Err(RuntimeError::AlreadyExists(existing.clone()));
            }
            let warm = match (bridged, self.inner.warm.get()) {
                (true, Some(pool)) => pool.take(),
                _ => None,
            };
            let id = ContainerId(warm.clone().unwrap_or_else(new_container_id));
            keys.insert(key.clone(), id.clone());
            (id, warm.is_some())
        };
        // On a task of its own: a caller that gives up (a cancelled
        // reconcile pass) must not leave a mounted rootfs or a started
        // process behind without its record in the map.
        use std::sync::atomic::Ordering;
        self.inner.creating.fetch_add(1, Ordering::SeqCst);
        let (rt, spec_owned, cid) = (self.clone(), spec.clone(), id.clone());
        let task = tokio::spawn(async move {
            let _creating = Creating(Arc::clone(&rt.inner));
            let result = rt.create_inner(node, &spec_owned, &cid, warm).await;
            if result.is_err() {
                lock(&rt.inner.by_key).remove(&key);
                // A warm attachment taken by a creation that failed before
                // attaching (an image that cannot be pulled) goes too.
                if let Some(cni) = rt
                    .inner
                    .cni
                    .as_ref()
                    .filter(|c| c.is_attached(cid.as_str()))
                {
                    if let Err(e) = cni.detach(cid.as_str()).await {
                        warn!(container = %cid, error = %e, "detaching the network of a failed creation");
                    }
                }
            }
            result
        });
        match task.await {
            Ok(result) => result.map(|()| id),
            Err(e) => Err(create_error(spec, format!("the creation task failed: {e}"))),
        }
    }

    /// Creates container `id` of `spec` on `node`: image, bundle, network
    /// (the label [`NETWORK_LABEL`]; absent, the host's), then the process.
    pub(super) async fn create_inner(
        &self,
        node: NodeId,
        spec: &ContainerSpec,
        id: &ContainerId,
        warm: bool,
    ) -> Result<()> {
        let config = &spec.config;
        let image = self
            .inner
            .images
            .ensure(&config.image)
            .await
            .map_err(|e| pull_error(&config.image, e))?;
        let plan = image::plan_process(&image, &config.command, &config.args, &config.env)
            .map_err(|e| create_error(spec, e))?;
        // Opened with the node's key, held in memory only (`secrets`).
        let opened = super::secrets::open(self.inner.cfg.secret_key.as_ref(), spec)?;
        let secret_files = Arc::new(opened.files);
        // Made and mounted on the node before anything else of the container.
        let mut volumes = Vec::with_capacity(spec.volumes.len());
        for a in &spec.volumes {
            let source = self.inner.volumes.ensure(a, plan.uid, plan.gid).await?;
            volumes.push(spec::VolumeBind {
                source,
                destination: a.mount_path.clone(),
                read_only: a.read_only,
            });
        }
        let label = spec.labels.get(NETWORK_LABEL).map(String::as_str);
        let mut pending = Pending::default();
        let (network, address, published) = match label.map(SharedNetworkMode::parse) {
            None | Some(Some(SharedNetworkMode::Host)) => {
                if !self.inner.cfg.allow_host_network {
                    return Err(create_error(spec, HOST_NETWORK_REFUSED));
                }
                (NetworkMode::Host, None, Vec::new())
            }
            Some(Some(SharedNetworkMode::None)) => (NetworkMode::None, None, Vec::new()),
            Some(Some(SharedNetworkMode::Bridge)) => {
                let attached = self.attach_bridge(spec, id, warm).await?;
                pending = attached.pending;
                (
                    NetworkMode::Join(attached.netns),
                    attached.address,
                    attached.published,
                )
            }
            Some(None) => {
                return Err(create_error(
                    spec,
                    format!(
                        "label {NETWORK_LABEL}: {:?} is not a network mode (host, none, bridge)",
                        label.unwrap_or_default()
                    ),
                ))
            }
        };

        // A bridged instance asks the node's DNS server, on its gateway.
        let resolv_conf = match (&network, &self.inner.cni) {
            (NetworkMode::Join(_), Some(cni)) => Some(resolv_conf(cni.config().subnet.gateway())),
            _ => None,
        };
        let dir = self.inner.containers_root.join(id.as_str());
        let cgroups_path = format!("/{}/{}", self.inner.cfg.cgroup_root, id);
        let mut record = Record {
            id: id.clone(),
            node_id: node,
            instance_id: spec.instance_id,
            workload_id: spec.workload_id,
            config: config.clone(),
            labels: spec.labels.clone(),
            image_reference: image.reference.clone(),
            image_manifest_digest: image.manifest_digest.clone(),
            image_config_digest: image.config_digest.clone(),
            image_rootfs: image.rootfs.clone(),
            cgroups_path: cgroups_path.clone(),
            pid: None,
            pid_ticks: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            reason: None,
            address,
            ports: published,
            volumes: spec.volumes.clone(),
        };
        self.inner.images.acquire(&image);

        let prepared = {
            let dir = dir.clone();
            let record = record.clone();
            let mode = self.inner.layer_mode;
            let rootfs_src = image.rootfs.clone();
            let spec_input_id = id.to_string();
            let config = config.clone();
            let plan = plan.clone();
            let seccomp = self.inner.seccomp.clone();
            let allow_net_raw = self.inner.cfg.allow_net_raw;
            let secret_files = Arc::clone(&secret_files);
            tokio::task::spawn_blocking(move || -> std::result::Result<(File, File), String> {
                // The bundle is the daemon's user's alone (at_rest).
                private_fs::create_dir_all(&dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                save_record(&dir, &record).map_err(|e| format!("saving the record: {e}"))?;
                rootfs::prepare(mode, &rootfs_src, &dir)
                    .map_err(|e| format!("preparing the {mode} rootfs: {e}"))?;
                let secret_files =
                    super::secrets::write_files(&dir, &secret_files, plan.uid, plan.gid)?;
                let resolv_conf = match resolv_conf {
                    // Readable by all: it is bind-mounted into the container,
                    // whatever user that runs as.
                    Some(text) => {
                        let path = dir.join(RESOLV_CONF);
                        std::fs::write(&path, text)
                            .map_err(|e| format!("writing {}: {e}", path.display()))?;
                        Some(path)
                    }
                    None => None,
                };
                let oci = spec::build(&spec::SpecInput {
                    id: &spec_input_id,
                    config: &config,
                    process: &plan,
                    rootfs: &dir.join("rootfs"),
                    cgroups_path: record.cgroups_path.clone(),
                    network,
                    seccomp,
                    allow_net_raw,
                    resolv_conf,
                    volumes,
                    secret_files,
                });
                spec::save(&dir.join("config.json"), &oci)
                    .map_err(|e| format!("writing config.json: {e}"))?;
                logs::open(&dir).map_err(|e| format!("opening the log files: {e}"))
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
        };
        // The owner's isolation is in place before the process starts.
        let prepared = match (prepared, pending.admitted().await) {
            (Ok(files), Ok(())) => Ok(files),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let (stdout, stderr) = match prepared {
            Ok(files) => files,
            Err(e) => {
                pending.settle().await;
                self.destroy(id, &dir, &record).await;
                return Err(create_error(spec, e));
            }
        };

        let started = {
            let cid = id.to_string();
            let state_root = self.inner.state_root.clone();
            let bundle = dir.clone();
            let executor = ForkSafeExecutor::with_secrets(opened.env);
            worker::run_forked(move || {
                calls::libcontainer_create(&cid, &state_root, &bundle, stdout, stderr, executor)
            })
            .await
        };
        drop(secret_files);
        let (pid, ticks) = match started {
            Ok(p) => p,
            Err(e) => {
                pending.settle().await;
                self.destroy(id, &dir, &record).await;
                return Err(create_error(spec, e));
            }
        };
        let now = Utc::now();
        record.pid = Some(pid);
        record.pid_ticks = ticks;
        record.started_at = Some(now);
        // Saved before the reaper exists: its exit record must come after.
        {
            let dir = dir.clone();
            let record = record.clone();
            match tokio::task::spawn_blocking(move || save_record(&dir, &record)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(container = %id, error = %e, "saving the record"),
                Err(e) => warn!(container = %id, error = %e, "saving the record"),
            }
        }
        let (exited, _) = watch::channel(false);
        // Its published ports are put in place while it starts; it is not
        // Ready before they are (see `ports_published`).
        let publishing = pending.take_publish();
        let ports_pending = publishing.is_some();
        let probe_ready = config.readiness_probe.is_none();
        let entry = Arc::new(Entry {
            dir: dir.clone(),
            live: Mutex::new(Live {
                state: ContainerState::Running,
                exit_code: None,
                reason: None,
                started_at: Some(now),
                finished_at: None,
                ready: probe_ready && !ports_pending,
                probe_ready,
                ports_pending,
                publish_failed: false,
                liveness_failed: false,
                adopted: false,
            }),
            record: Mutex::new(record.clone()),
            exited,
            probes: self.inner.shutdown.child_token(),
            network_settled: watch::channel(!ports_pending).0,
        });
        lock(&self.inner.containers).insert(id.clone(), entry.clone());
        self.spawn_reaper(entry.clone(), pid);
        probe::spawn(Arc::downgrade(&self.inner), entry.clone());
        info!(container = %id, pid, image = %config.image, "container started");
        self.publish(&entry);
        if let Some(task) = publishing {
            let (rt, entry) = (self.clone(), entry.clone());
            tokio::spawn(async move {
                let done = super::bridge::outcome(Some(task)).await;
                rt.ports_published(&entry, done);
            });
        }
        Ok(())
    }
}
