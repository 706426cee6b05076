//! Image store of the youki runtime: pulls OCI images with `oci-client`,
//! verifies every blob against its digest, unpacks the layers (whiteouts
//! included) into one root filesystem per image config, and evicts the least
//! recently used images that no container holds when the cache grows too big.
//!
//! Layout under [`ImageStoreConfig::root`]:
//! - `blobs/sha256/<hex>`: verified config and layer blobs;
//! - `rootfs/<config-hex>/`: unpacked root filesystems, renamed into place
//!   only once complete;
//! - `tmp/`: downloads, unpacks and GC trash in progress (emptied at start);
//! - `index.json`: references, images and blob sizes, rewritten atomically.
//!
//! Directories are 0700 and blobs and the index 0600 (private to the
//! daemon's user); an unpacked rootfs keeps the modes its layers give it.
//!
//! [`plan_process`] merges an image's config with a container's command,
//! arguments and environment the way Docker and Kubernetes do.
//!
//! Nothing a registry says is trusted: sizes are capped by [`ImageLimits`]
//! whatever the descriptors declare, and the whole store by a quota.
//!
//! Modules: `pull` (manifests, limits, coalesced `ensure`), `registry` (the
//! distribution API client, every body read with a cap), `limits`
//! ([`ImageLimits`], the store quota's reservations), `blob`
//! (digests and verified blob downloads), `unpack` (layers, whiteouts, path
//! safety), `index` (the on-disk index and its atomic writes), `gc` (eviction),
//! `process` ([`ProcessPlan`], [`plan_process`], user and group resolution),
//! `error` ([`ImageError`]).

mod blob;
mod error;
mod gc;
mod index;
mod limits;
mod process;
mod pull;
mod registry;
mod resolve;
mod unpack;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use orchestrator_shared_types::private_fs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::OnceCell;
use tracing::warn;

use blob::digest_hex;
use index::{load_index, write_atomically, Index, INDEX_FILE};

pub use error::ImageError;
pub use limits::{names as limit_names, ImageLimits, LimitHit, QuotaHit};
pub use process::{plan_process, ProcessPlan, DEFAULT_PATH};

/// When to pull.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    /// Resolve the reference at the registry on every `ensure`; reuse the
    /// local rootfs when the manifest is unchanged.
    Always,
    /// Pull only when no image is cached for the reference.
    #[default]
    IfNotPresent,
    /// Never contact a registry; a missing image is an error.
    Never,
}

impl PullPolicy {
    const NAMES: [(&'static str, PullPolicy); 3] = [
        ("Always", PullPolicy::Always),
        ("IfNotPresent", PullPolicy::IfNotPresent),
        ("Never", PullPolicy::Never),
    ];
}

impl std::fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Self::NAMES
            .iter()
            .find(|(_, policy)| policy == self)
            .map_or("IfNotPresent", |(name, _)| name);
        f.write_str(name)
    }
}

/// A pull policy string that is none of `Always`, `IfNotPresent`, `Never`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsePullPolicyError(pub String);

impl std::fmt::Display for ParsePullPolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown pull policy `{}`: expected one of Always, IfNotPresent, Never",
            self.0
        )
    }
}

impl std::error::Error for ParsePullPolicyError {}

impl std::str::FromStr for PullPolicy {
    type Err = ParsePullPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s.trim()))
            .map(|(_, policy)| *policy)
            .ok_or_else(|| ParsePullPolicyError(s.to_owned()))
    }
}

/// Configuration of an [`ImageStore`].
#[derive(Clone, Debug)]
pub struct ImageStoreConfig {
    /// Directory holding blobs, unpacked rootfs and the index (e.g. `<data_dir>/images`).
    pub root: PathBuf,
    /// Registries (`HOST:PORT`, as written in references) reached over plain
    /// HTTP; every other registry is reached over HTTPS.
    pub insecure_registries: Vec<String>,
    /// When [`ImageStore::ensure`] contacts a registry.
    pub pull_policy: PullPolicy,
    /// Size of blobs plus unpacked rootfs above which [`ImageStore::gc`] evicts images.
    pub max_cache_bytes: u64,
    /// Credentials per registry `host[:port]`; registries not listed are pulled anonymously.
    pub credentials: BTreeMap<String, RegistryCredentials>,
    /// Caps on what one pull may download and unpack, and the store's quota.
    pub limits: ImageLimits,
}

impl ImageStoreConfig {
    /// A store under `root` with the default policy and limits, no
    /// credentials and a 10 GiB cache.
    pub fn for_test(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            insecure_registries: Vec::new(),
            pull_policy: PullPolicy::default(),
            max_cache_bytes: 10 << 30,
            credentials: BTreeMap::new(),
            limits: ImageLimits::default(),
        }
    }
}

/// HTTP basic credentials for one registry.
#[derive(Clone)]
pub struct RegistryCredentials {
    /// User name.
    pub username: String,
    /// Password or token; never printed by `Debug`.
    pub password: String,
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The parts of an image config that shape a container's process.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint` of the image.
    pub entrypoint: Vec<String>,
    /// `Cmd` of the image.
    pub cmd: Vec<String>,
    /// `Env` of the image, as `KEY=VALUE`.
    pub env: Vec<String>,
    /// `WorkingDir` of the image, if set.
    pub working_dir: Option<String>,
    /// `User` of the image (`user[:group]`, names or ids), if set.
    pub user: Option<String>,
}

/// An unpacked image ready to run.
#[derive(Clone, Debug)]
pub struct Image {
    /// The normalised reference, e.g. `docker.io/library/busybox:latest`.
    pub reference: String,
    /// Digest of the platform-specific image manifest.
    pub manifest_digest: String,
    /// Digest of the image config; names the rootfs.
    pub config_digest: String,
    /// The unpacked root filesystem.
    pub rootfs: PathBuf,
    /// Process settings from the image config.
    pub config: ImageConfig,
    /// Bytes on disk: unpacked rootfs plus the image's blobs.
    pub size_bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    index: Index,
    /// Config hex → containers using the rootfs.
    in_use: HashMap<String, usize>,
    /// Blob or config hex → pulls in progress relying on it.
    pins: HashMap<String, usize>,
    /// Bytes of the store quota that pulls in progress hold (see `limits`).
    reserved: u64,
    clock: u64,
}

impl State {
    fn touch(&mut self, config_hex: &str) {
        self.clock += 1;
        if let Some(rec) = self.index.images.get_mut(config_hex) {
            rec.last_used = self.clock;
        }
    }
}

type Flight = Arc<OnceCell<Result<Image, ImageError>>>;

/// Local cache of pulled and unpacked images.
pub struct ImageStore {
    cfg: ImageStoreConfig,
    /// Made on first use: building it loads TLS roots, which a daemon that
    /// never pulls should not keep in memory.
    registry: OnceLock<registry::Registry>,
    /// Shared with the quota reservations of pulls in progress.
    state: Arc<Mutex<State>>,
    /// One shared `ensure` per reference in progress.
    flights: Mutex<HashMap<String, Flight>>,
    /// Serialises index writes so that a newer snapshot is never overwritten by an older one.
    persist_lock: tokio::sync::Mutex<()>,
    tmp_seq: AtomicU64,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("root", &self.cfg.root)
            .field("pull_policy", &self.cfg.pull_policy)
            .finish_non_exhaustive()
    }
}

impl ImageStore {
    /// Opens (or creates) the store under `cfg.root`, loading the index so that
    /// images pulled before a restart are reused, and removing leftovers of
    /// interrupted pulls and evictions.
    pub fn new(cfg: ImageStoreConfig) -> io::Result<Self> {
        let store = Self {
            cfg,
            registry: OnceLock::new(),
            state: Arc::new(Mutex::new(State::default())),
            flights: Mutex::new(HashMap::new()),
            persist_lock: tokio::sync::Mutex::new(()),
            tmp_seq: AtomicU64::new(0),
        };
        private_fs::create_dir_all(&store.blob_dir())?;
        private_fs::create_dir_all(&store.cfg.root.join("rootfs"))?;
        let tmp = store.cfg.root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| with_context(e, "emptying", &tmp))?;
        }
        private_fs::create_dir_all(&tmp)?;
        let mut index = load_index(&store.cfg.root.join(INDEX_FILE))?;
        let changed = store.reconcile_disk(&mut index)?;
        let clock = index
            .images
            .values()
            .map(|i| i.last_used)
            .max()
            .unwrap_or(0);
        let mut state = store.lock_state();
        state.index = index;
        state.clock = clock;
        if changed {
            let bytes = serde_json::to_vec_pretty(&state.index).map_err(io::Error::other)?;
            write_atomically(
                &store.cfg.root.join(INDEX_FILE),
                &store.tmp_path("index"),
                &bytes,
            )?;
        }
        drop(state);
        Ok(store)
    }

    /// Marks `image` as used by one more container; used images are never evicted.
    pub fn acquire(&self, image: &Image) {
        let Some(hex) = self.hex_of(image) else {
            return;
        };
        let mut st = self.lock_state();
        *st.in_use.entry(hex.to_owned()).or_default() += 1;
        st.touch(hex);
    }

    /// Undoes one [`ImageStore::acquire`].
    pub fn release(&self, image: &Image) {
        let Some(hex) = self.hex_of(image) else {
            return;
        };
        let mut st = self.lock_state();
        match st.in_use.get_mut(hex) {
            Some(count) if *count > 1 => *count -= 1,
            Some(_) => {
                st.in_use.remove(hex);
            }
            None => warn!(image = %image.reference, "release of an image that was not acquired"),
        }
        st.touch(hex);
    }

    fn hex_of<'a>(&self, image: &'a Image) -> Option<&'a str> {
        let hex = digest_hex(&image.config_digest);
        if let Err(reason) = &hex {
            warn!(image = %image.reference, %reason, "image with a bad config digest");
        }
        hex.ok()
    }

    /// Bytes of blobs and unpacked rootfs in the cache.
    pub fn cached_bytes(&self) -> u64 {
        self.lock_state().index.cached_bytes()
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn blob_dir(&self) -> PathBuf {
        self.cfg.root.join("blobs").join("sha256")
    }

    fn blob_path(&self, hex: &str) -> PathBuf {
        self.blob_dir().join(hex)
    }

    fn rootfs_dir(&self, config_hex: &str) -> PathBuf {
        self.cfg.root.join("rootfs").join(config_hex)
    }

    fn tmp_path(&self, what: &str) -> PathBuf {
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        self.cfg
            .root
            .join("tmp")
            .join(format!("{what}-{}-{seq}", std::process::id()))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn with_context(err: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{doing} {}: {err}", path.display()))
}

fn remove_quietly(path: &Path) {
    if let Err(e) = remove_any(path) {
        warn!(path = %path.display(), error = %e, "could not remove temporary file");
    }
}

/// Removes a file, symlink (not its target) or directory tree; absent is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl ImageStore {
    /// The registry client, made on first use.
    fn registry(&self, image: &str) -> Result<&registry::Registry, ImageError> {
        if let Some(r) = self.registry.get() {
            return Ok(r);
        }
        let made =
            registry::Registry::new(self.cfg.insecure_registries.clone()).map_err(|reason| {
                ImageError::Pull {
                    image: image.to_owned(),
                    reason,
                }
            })?;
        Ok(self.registry.get_or_init(|| made))
    }
}
