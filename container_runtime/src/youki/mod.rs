//! The real runtime: containers on youki's `libcontainer`, in-process, with
//! images pulled from OCI registries (SPEC §9).
//!
//! Layout under the data directory (`YoukiConfig::data_dir`):
//!
//! ```text
//! images/                 blobs by digest, unpacked image rootfs (shared, read-only)
//! state/                  libcontainer's state directory (its `root_path`)
//! containers/<id>/        one per container: record.json, config.json (the
//!                         bundle), rootfs/ (overlay mount or copy), upper/,
//!                         work/, stdout.log, stderr.log
//! volumes/<owner>/        the owner's volumes (`volume`): NAME.img, NAME/
//! ```
//!
//! Directories are 0700 and the files the runtime writes 0600; what the
//! containers see keeps its own modes (`at_rest`).
//!
//! - **Calling libcontainer safely** (`worker`): each call runs in a child
//!   process forked for it with glibc's `fork` (libcontainer's own raw
//!   `clone` from a multi-threaded daemon can deadlock on a malloc lock, and
//!   its `chdir` would hit every thread), from a pool of dedicated threads.
//!   The daemon is a child subreaper, so container inits become its children.
//! - **Exit codes**: a container's init is the daemon's child; a thread per
//!   container waits for it (`waitpid(__WALL)`), then the exit code, the reason
//!   (`Completed`, `Error`, `OOMKilled` from the cgroup's OOM-kill counter,
//!   `LivenessProbeFailed`) and the time are recorded in `record.json` and
//!   published.
//! - **Daemon restarts**: containers outlive the daemon (their logs go to
//!   files, not through it). On start the runtime reads every `record.json`:
//!   a container whose init still runs (same pid and start time) is adopted
//!   and watched by polling `/proc`; its exit code, should it exit later, is
//!   unknown to the new daemon (reported as exit code −1, reason `Unknown` or
//!   `OOMKilled`). A container that never finished starting is removed.
//! - **Stop**: SIGTERM to the init, SIGKILL after the grace period (a pid
//!   namespace's init ignores signals it has no handler for, as in Docker).
//! - **Probes**: `probe` runs liveness and readiness probes per container.
//! - **Bridge networking** (`cni`, `univrs.io/network: bridge` when
//!   `YoukiConfig::cni` is set): a namespace per container attached by the
//!   CNI plugins before it is created, detached when it is destroyed, and
//!   attachments of containers that are gone detached at start-up; its
//!   `ports` published on the node through `portmap` (`publish`: fixed host
//!   ports, or free ones from the node's range).
//! - **Confinement** (`spec`, `seccomp`): Docker's default capability set
//!   without `CAP_NET_RAW`, `noNewPrivileges`, and Docker's default seccomp
//!   profile; per node, the operator can turn the profile off
//!   (`YoukiConfig::seccomp`) and let containers keep `CAP_NET_RAW`
//!   (`YoukiConfig::allow_net_raw`).

mod at_rest;
mod bridge;
mod calls;
mod cgroup;
pub mod cni;
mod entry;
mod executor;
pub mod image;
mod inspect;
mod lifecycle;
mod logs;
mod probe;
mod process;
mod publish;
mod recover;
mod rootfs;
mod seccomp;
mod secrets;
mod spec;
mod stop;
mod volume;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use container_runtime_interface::{
    ContainerRuntime, ContainerSpec, ContainerStatus, LogLine, LogOptions, ResourceUsage, Result,
    RuntimeError, VolumeRef,
};
use futures::stream::BoxStream;
use orchestrator_shared_types::{ContainerId, InstanceId, NodeId};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};

pub use cgroup::{preflight, Layout as CgroupLayout, Usage};
pub use image::{ImageLimits, ImageStore, ImageStoreConfig, PullPolicy, RegistryCredentials};
pub use rootfs::LayerMode;
pub use secrets::SecretKey;
pub use spec::NetworkMode;

use entry::{lock, Entry};
use lifecycle::op_error;
use recover::housekeeping;

/// The workload label that chooses the network: `none` (a namespace with
/// only loopback), `bridge` (the node's CNI bridge network) or `host`, the
/// default for now.
pub use orchestrator_shared_types::ports::NETWORK_LABEL;

/// Capacity of the status broadcast channel.
const STATUS_CHANNEL_CAPACITY: usize = 1024;

/// How often adopted containers (from before a daemon restart) are checked,
/// and log size caps applied.
const HOUSEKEEPING: Duration = Duration::from_millis(500);

/// Settings of the youki runtime.
#[derive(Clone, Debug)]
pub struct YoukiConfig {
    /// Where images, state and containers live (created if missing).
    pub data_dir: PathBuf,
    /// Registries (`HOST:PORT`) reached over plain HTTP; every other over HTTPS.
    pub insecure_registries: Vec<String>,
    /// When to pull an image.
    pub pull_policy: PullPolicy,
    /// Unused images are removed, least recently used first, above this size.
    pub image_cache_bytes: u64,
    /// Basic-auth credentials per registry host.
    pub credentials: BTreeMap<String, RegistryCredentials>,
    /// Caps on image pulls and the image store's quota.
    pub image_limits: ImageLimits,
    /// First component of every container's cgroup path (`/<root>/<id>`).
    pub cgroup_root: String,
    /// Size cap of each of a container's two log files.
    pub log_max_bytes: u64,
    /// The node's bridge network (`univrs.io/network: bridge`); none: bridge
    /// mode is refused. The runtime fails to start when its plugins are missing.
    pub cni: Option<cni::CniConfig>,
    /// Load Docker's default seccomp profile into every container (default
    /// true). Off: containers may make any syscall their capabilities allow
    /// (`--no-seccomp` on the daemon).
    pub seccomp: bool,
    /// Let containers keep `CAP_NET_RAW` (raw sockets: `ping`, packet
    /// capture, forged packets); default false (`--allow-net-raw`).
    pub allow_net_raw: bool,
    /// Run containers on the host's network when asked (label
    /// `univrs.io/network: host`, or no label); default false, and such a
    /// container is refused ([`HOST_NETWORK_REFUSED`]): it could bind any
    /// port of the node and read its traffic (`--allow-host-network`).
    pub allow_host_network: bool,
    /// The node's key, which opens the secrets sealed to it; none: a
    /// container that names a secret is refused.
    pub secret_key: Option<SecretKey>,
}

/// Why a container on the host's network is refused where
/// [`YoukiConfig::allow_host_network`] is off.
pub const HOST_NETWORK_REFUSED: &str = "the host's network is not allowed on this node \
     (its operator allows it with --allow-host-network); use network: bridge";

impl YoukiConfig {
    /// Defaults under `data_dir`: pull if not present, 10 GiB image cache,
    /// the default [`ImageLimits`], cgroups under `/univrs`, 10 MiB log files,
    /// Docker's default seccomp profile, no `CAP_NET_RAW`, no host network.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            insecure_registries: Vec::new(),
            pull_policy: PullPolicy::IfNotPresent,
            image_cache_bytes: 10 << 30,
            credentials: BTreeMap::new(),
            image_limits: ImageLimits::default(),
            cgroup_root: "univrs".into(),
            log_max_bytes: 10 << 20,
            cni: None,
            seccomp: true,
            allow_net_raw: false,
            allow_host_network: false,
            secret_key: None,
        }
    }
}

struct Inner {
    cfg: YoukiConfig,
    images: ImageStore,
    layout: cgroup::Layout,
    layer_mode: LayerMode,
    state_root: PathBuf,
    containers_root: PathBuf,
    volumes: volume::Volumes,
    cni: Option<Arc<cni::CniNetwork>>,
    /// Attachments made ahead of time (`CniConfig::warm`), once the left
    /// ones of a previous daemon are detached.
    warm: std::sync::OnceLock<Arc<cni::WarmPool>>,
    /// The node ports bridged containers publish.
    ports: publish::PortBook,
    /// The filter of every container ([`YoukiConfig::seccomp`]).
    seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    node: Mutex<Option<NodeId>>,
    containers: Mutex<HashMap<ContainerId, Arc<Entry>>>,
    by_key: Mutex<HashMap<(InstanceId, String), ContainerId>>,
    status_tx: broadcast::Sender<ContainerStatus>,
    shutdown: CancellationToken,
    /// Creations under way, and a wake-up when one ends.
    creating: std::sync::atomic::AtomicUsize,
    created: tokio::sync::Notify,
}

/// [`ContainerRuntime`] on youki's libcontainer. Serves one node: the one
/// passed to [`ContainerRuntime::init_node`].
#[derive(Clone)]
pub struct YoukiRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for YoukiRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YoukiRuntime")
            .field("data_dir", &self.inner.cfg.data_dir)
            .field("layer_mode", &self.inner.layer_mode)
            .finish_non_exhaustive()
    }
}

impl YoukiRuntime {
    /// Opens the runtime on `cfg.data_dir`: checks root and cgroups, probes
    /// overlayfs, and adopts the containers a previous daemon left running.
    pub async fn new(cfg: YoukiConfig) -> std::result::Result<Self, String> {
        let layout = preflight()?;
        // Container inits are forked by short-lived children of the worker
        // (see `worker`); as a subreaper the daemon inherits them.
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| format!("becoming a child subreaper: {e}"))?;
        let data = cfg.data_dir.clone();
        let state_root = data.join("state");
        let containers_root = data.join("containers");
        let images_root = data.join("images");
        let volumes_root = data.join("volumes");
        at_rest::prepare(
            &[
                &data,
                &state_root,
                &containers_root,
                &images_root,
                &volumes_root,
            ],
            &containers_root,
        )
        .map_err(|e| format!("making {} private: {e}", data.display()))?;
        let images = ImageStore::new(ImageStoreConfig {
            root: images_root,
            insecure_registries: cfg.insecure_registries.clone(),
            pull_policy: cfg.pull_policy,
            max_cache_bytes: cfg.image_cache_bytes,
            credentials: cfg.credentials.clone(),
            limits: cfg.image_limits.clone(),
        })
        .map_err(|e| format!("opening the image store: {e}"))?;
        let cni = match &cfg.cni {
            Some(c) => {
                let network = cni::CniNetwork::new(c.clone())
                    .map_err(|e| format!("bridge networking: {e}"))?;
                cni::guard::apply(c)
                    .await
                    .map_err(|e| format!("bridge networking: {e}"))?;
                cni::isolation::apply(c)
                    .await
                    .map_err(|e| format!("bridge networking: {e}"))?;
                Some(Arc::new(network))
            }
            None => None,
        };
        let ports = publish::PortBook::new(
            cfg.cni
                .as_ref()
                .map_or(cni::DEFAULT_HOST_PORT_RANGE, |c| c.host_port_range.clone()),
        );
        let seccomp = if cfg.seccomp {
            Some(
                seccomp::default_profile()
                    .map_err(|e| format!("building the default seccomp profile: {e}"))?,
            )
        } else {
            warn!("containers run without a seccomp filter: the operator turned it off");
            None
        };
        if cfg.allow_net_raw {
            warn!("containers keep CAP_NET_RAW: the operator allowed raw sockets");
        }
        let layer_mode = rootfs::probe(&data);
        info!(
            data_dir = %data.display(),
            writable_layers = %layer_mode,
            cgroups = ?layout,
            seccomp = cfg.seccomp,
            allow_net_raw = cfg.allow_net_raw,
            "youki runtime ready (containers get their writable layer by {layer_mode})"
        );
        let (status_tx, _) = broadcast::channel(STATUS_CHANNEL_CAPACITY);
        let rt = Self {
            inner: Arc::new(Inner {
                cfg,
                images,
                layout,
                layer_mode,
                state_root,
                containers_root,
                volumes: volume::Volumes::new(volumes_root),
                cni,
                warm: std::sync::OnceLock::new(),
                ports,
                seccomp,
                node: Mutex::new(None),
                containers: Mutex::new(HashMap::new()),
                by_key: Mutex::new(HashMap::new()),
                status_tx,
                shutdown: CancellationToken::new(),
                creating: std::sync::atomic::AtomicUsize::new(0),
                created: tokio::sync::Notify::new(),
            }),
        };
        rt.recover().await;
        rt.detach_left_networks().await;
        rt.start_warm_pool();
        tokio::spawn(housekeeping(Arc::downgrade(&rt.inner)));
        Ok(rt)
    }

    /// Stops background work (probes, housekeeping). Containers keep running.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        for e in lock(&self.inner.containers).values() {
            e.probes.cancel();
        }
    }

    /// Waits until no creation is under way. A creation runs to its end even
    /// if its caller gives up, so that it never leaves half a container.
    pub async fn wait_idle(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let notified = self.inner.created.notified();
            if self.inner.creating.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// How writable layers are made here.
    pub fn layer_mode(&self) -> LayerMode {
        self.inner.layer_mode
    }

    /// The host's cgroup layout.
    pub fn cgroup_layout(&self) -> CgroupLayout {
        self.inner.layout
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.inner.images
    }

    fn entry(&self, id: &ContainerId) -> Option<Arc<Entry>> {
        lock(&self.inner.containers).get(id).cloned()
    }

    fn entry_or_not_found(&self, id: &ContainerId) -> Result<Arc<Entry>> {
        self.entry(id)
            .ok_or_else(|| RuntimeError::NotFound(id.clone()))
    }

    fn check_node(&self, node: NodeId) -> Result<()> {
        match *lock(&self.inner.node) {
            Some(n) if n == node => Ok(()),
            _ => Err(RuntimeError::UnknownNode(node)),
        }
    }

    fn publish(&self, entry: &Entry) {
        // Nobody listening is fine.
        let _ = self.inner.status_tx.send(entry.status());
    }
}

#[async_trait]
impl ContainerRuntime for YoukiRuntime {
    async fn init_node(&self, node: NodeId) -> Result<()> {
        let mut current = lock(&self.inner.node);
        match *current {
            Some(n) if n != node => Err(RuntimeError::UnknownNode(node)),
            _ => {
                *current = Some(node);
                Ok(())
            }
        }
    }

    #[instrument(skip(self, spec), fields(instance = %spec.instance_id, name = %spec.config.name))]
    async fn create_container(&self, node: NodeId, spec: &ContainerSpec) -> Result<ContainerId> {
        self.create(node, spec).await
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<()> {
        self.stop(id, grace).await
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        let entry = self.entry_or_not_found(id)?;
        self.stop(id, Duration::ZERO).await?;
        entry.probes.cancel();
        // Its published ports still being added would outlive the DEL.
        bridge::network_settled(&entry, id).await;
        let record = lock(&entry.record).clone();
        self.destroy(id, &entry.dir, &record).await;
        lock(&self.inner.containers).remove(id);
        lock(&self.inner.by_key).remove(&(record.instance_id, record.config.name.clone()));
        Ok(())
    }

    async fn get_container_status(&self, id: &ContainerId) -> Result<ContainerStatus> {
        Ok(self.entry_or_not_found(id)?.status())
    }

    async fn list_containers(&self, node: NodeId) -> Result<Vec<ContainerStatus>> {
        self.check_node(node)?;
        let entries: Vec<Arc<Entry>> = lock(&self.inner.containers).values().cloned().collect();
        Ok(entries.iter().map(|e| e.status()).collect())
    }

    async fn get_container_logs(&self, id: &ContainerId, opts: LogOptions) -> Result<Vec<LogLine>> {
        let entry = self.entry_or_not_found(id)?;
        let dir = entry.dir.clone();
        tokio::task::spawn_blocking(move || logs::read(&dir, opts.tail))
            .await
            .map_err(|e| op_error("reading logs of", id, e))?
            .map_err(|e| op_error("reading logs of", id, e))
    }

    async fn follow_container_logs(&self, id: &ContainerId) -> Result<BoxStream<'static, LogLine>> {
        let entry = self.entry_or_not_found(id)?;
        Ok(logs::follow(&entry.dir, entry.exited.subscribe()))
    }

    fn subscribe_status(&self) -> broadcast::Receiver<ContainerStatus> {
        self.inner.status_tx.subscribe()
    }

    async fn usage(&self, node: NodeId) -> Result<Option<ResourceUsage>> {
        self.check_node(node)?;
        let u = self.total_usage();
        Ok(Some(ResourceUsage {
            cpu_seconds: u.cpu_nanos as f64 / 1e9,
            memory_bytes: u.memory_bytes,
        }))
    }

    async fn container_usage(&self, id: &ContainerId) -> Result<Option<ResourceUsage>> {
        // The cgroup outlives the container's exit: `destroy` (on removal)
        // deletes it, so an exited container still answers.
        let entry = self.entry_or_not_found(id)?;
        let path = lock(&entry.record).cgroups_path.clone();
        let usage = cgroup::usage(self.inner.layout, &path);
        Ok(usage.map(|u| ResourceUsage {
            cpu_seconds: u.cpu_nanos as f64 / 1e9,
            memory_bytes: u.memory_bytes,
        }))
    }

    async fn delete_volume(&self, node: NodeId, volume: &VolumeRef) -> Result<()> {
        self.check_node(node)?;
        self.wipe_volume(volume).await
    }
}
