//! Daemon configuration: flags over environment over file over defaults,
//! validated as a whole before anything is opened or bound.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use orchestrator_shared_types::{CpuQuantity, MemoryQuantity, PublicKey, Resources};
use serde::Deserialize;

pub use super::cluster_config::{
    ClusterSettings, Role, DEFAULT_DEAD_NODE_GRACE, DEFAULT_GOSSIP_INTERVAL, DEFAULT_GOSSIP_PORT,
    DEFAULT_PHI_THRESHOLD,
};
pub use super::runtime_config::{PullPolicy, RegistryAuth, DEFAULT_IMAGE_CACHE_BYTES};
use crate::error::{Error, Result};
use crate::settings::Settings;
use container_runtime::youki::YoukiConfig;
use orchestrator_core::api::quota::names as quota_names;
use orchestrator_core::{OwnerQuotas, ReconcilerConfig};

/// Which container runtime runs containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Real containers on youki's libcontainer (the default; root and cgroups).
    Youki,
    /// Simulated containers, for tests and demos; nothing is isolated or run.
    Mock,
}

/// Where state is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// SQLite in the data directory (durable; the default).
    #[default]
    Sqlite,
    /// In memory: everything is lost when the daemon stops.
    Memory,
    /// An etcd cluster (`--etcd-endpoints`), shared by several control
    /// planes of which one leads (feature `etcd`).
    Etcd,
}

/// Where the state lives in etcd and how the control planes elect their
/// leader (`--store etcd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdSettings {
    /// Client URLs of the etcd cluster.
    pub endpoints: Vec<String>,
    /// Key prefix of this cluster's state.
    pub prefix: String,
    /// Time-to-live of the leader's lease.
    pub lease_ttl: std::time::Duration,
    /// The API address the other control planes forward requests to.
    pub advertise_api: Option<std::net::SocketAddr>,
}

/// The default `--etcd-prefix`.
pub const DEFAULT_ETCD_PREFIX: &str = "/univrs";
/// The default `--lease-ttl`.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Which scheduler places instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// Filters, then spread or bin-pack scoring (`scoring`); the default.
    #[default]
    Simple,
    /// The same filters plus the owner's trust rules, then a draw weighted by
    /// reputation² × fit (MYCELIAL.md §3); `scoring` does not apply.
    Mycelial,
}

/// Scheduler scoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scoring {
    /// Prefer the least-allocated node.
    #[default]
    Spread,
    /// Prefer the most-allocated node that fits.
    Binpack,
}

/// The validated configuration of a daemon.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Where the node key and the SQLite database live.
    pub data_dir: PathBuf,
    /// Container runtime.
    pub runtime: RuntimeKind,
    /// State store.
    pub store: StoreKind,
    /// The etcd cluster, when `store` is etcd.
    pub etcd: Option<EtcdSettings>,
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Scheduler scoring (simple scheduler).
    pub scoring: Scoring,
    /// Log format.
    pub log_format: LogFormat,
    /// What this node offers to workloads.
    pub node_allocatable: Resources,
    /// The machine's total resources.
    pub node_capacity: Resources,
    /// Labels of this node.
    pub labels: BTreeMap<String, String>,
    /// The operator who runs this node; `None`: the node's own key.
    pub operator: Option<PublicKey>,
    /// The operator's proof that it runs this node (checked at start against
    /// the node id; required when `operator` is not the node's own key).
    pub operator_proof: Option<String>,
    /// What instances on other operators' nodes pledge (`--credit-price`).
    pub pledges: orchestrator_trust::pledge::PledgeConfig,
    /// Honesty probes (`--probe-image`).
    pub probes: orchestrator_trust::probe::ProbeConfig,
    /// Reconciler pacing.
    pub reconciler: ReconcilerConfig,
    /// Where the REST API listens.
    pub api_addr: std::net::SocketAddr,
    /// Authentication of the REST API.
    pub auth: orchestrator_rest::AuthConfig,
    /// The youki runtime: images, registries, its state directory, the bridge network.
    pub youki: YoukiConfig,
    /// Why bridge networking is off (the CNI plugins missing), said at start.
    pub bridge_off: Option<String>,
    /// Cluster mode; `None` runs a standalone node.
    pub cluster: Option<ClusterSettings>,
    /// Nodes simulated in all with the mock runtime (`--mock-nodes`); 1: none.
    pub mock_nodes: u32,
}

/// Parses a public key written as 64 hex characters or standard base64.
pub fn parse_key(s: &str) -> Result<PublicKey> {
    use base64::Engine;
    let s = s.trim();
    if let Ok(k) = s.parse::<PublicKey>() {
        return Ok(k);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| Error::Config(format!("key {s:?} is neither 64 hex characters nor base64")))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::Config(format!("key {s:?} is not 32 bytes")))?;
    Ok(PublicKey(arr))
}

/// Default address of the REST API.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:9090";

/// `$XDG_DATA_HOME/univrs`, else `~/.local/share/univrs`.
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("univrs"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/univrs"))
}

fn machine_capacity() -> Resources {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(1 << 30, |kb| kb * 1024);
    Resources::new(cpus * 1000, memory)
}

pub(super) fn valid_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// The per-owner quotas from `s`; absent ones keep [`OwnerQuotas`]' defaults.
fn owner_quotas(s: &Settings) -> Result<OwnerQuotas> {
    let d = OwnerQuotas::default();
    let cpu = match &s.quota_cpu {
        Some(q) => q
            .parse::<CpuQuantity>()
            .map_err(|e| Error::Config(format!("{}: {e}", quota_names::CPU)))?
            .millis(),
        None => d.max_cpu_millis,
    };
    let memory = match &s.quota_memory {
        Some(q) => q
            .parse::<MemoryQuantity>()
            .map_err(|e| Error::Config(format!("{}: {e}", quota_names::MEMORY)))?
            .bytes(),
        None => d.max_memory_bytes,
    };
    let volumes = match &s.quota_volumes {
        Some(q) => q
            .parse::<MemoryQuantity>()
            .map_err(|e| Error::Config(format!("{}: {e}", quota_names::VOLUMES)))?
            .bytes(),
        None => d.max_volume_bytes,
    };
    Ok(OwnerQuotas {
        max_workloads: s.quota_workloads.unwrap_or(d.max_workloads),
        max_replicas: s.quota_replicas.unwrap_or(d.max_replicas),
        max_cpu_millis: cpu,
        max_memory_bytes: memory,
        max_volume_bytes: volumes,
    })
}

/// Kept back from workloads for the system and the daemon itself.
const SYSTEM_RESERVE: Resources = Resources::new(100, 256 << 20);

impl DaemonConfig {
    /// Lays `flags` over `file` over defaults and validates the result.
    pub fn resolve(flags: Settings, file: Settings) -> Result<Self> {
        let s = flags.over(file);
        let cluster = super::cluster_config::resolve(&s)?;
        let etcd = resolve_etcd(&s)?;
        let (operator, operator_proof) = super::operator::resolve(&s)?;
        let credit_price = s.credit_price.unwrap_or(0);
        if credit_price < 0 {
            return Err(Error::Config(format!(
                "credit price {credit_price} is negative: milli-units per CPU core-hour, 0 for none"
            )));
        }
        let pledges = orchestrator_trust::pledge::PledgeConfig {
            price: credit_price,
            ..Default::default()
        };
        let probes = orchestrator_trust::probe::ProbeConfig {
            image: s.probe_image.clone().filter(|i| !i.trim().is_empty()),
            ..Default::default()
        };
        let data_dir = s
            .data_dir
            .clone()
            .or_else(default_data_dir)
            .ok_or_else(|| {
                Error::Config("no data directory: pass --data-dir (HOME is not set)".into())
            })?;
        let quotas = owner_quotas(&s)?;
        let runtime = s.runtime.unwrap_or(RuntimeKind::Youki);
        let (youki, bridge_off) = super::runtime_config::resolve(&s, data_dir.join("runtime"))?;
        let mock_nodes =
            super::simulated::resolve(s.mock_nodes, runtime, cluster.is_some() || etcd.is_some())?;

        let capacity = machine_capacity();
        let cpu = match s.node_cpu {
            Some(s) => s
                .parse::<CpuQuantity>()
                .map_err(|e| Error::Config(format!("node cpu: {e}")))?
                .millis(),
            None => capacity.cpu_millis,
        };
        let memory = match s.node_memory {
            Some(s) => s
                .parse::<MemoryQuantity>()
                .map_err(|e| Error::Config(format!("node memory: {e}")))?
                .bytes(),
            None => capacity.memory_bytes,
        };
        let node_capacity = Resources::new(cpu, memory);
        let node_allocatable = node_capacity.saturating_sub(SYSTEM_RESERVE);
        if node_allocatable.cpu_millis == 0 || node_allocatable.memory_bytes == 0 {
            return Err(Error::Config(format!(
                "node resources {cpu}m cpu / {memory} bytes leave nothing after the system reserve \
                 of 100m cpu and 256Mi memory"
            )));
        }
        let mut labels = BTreeMap::new();
        for kv in &s.labels {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("label {kv:?} is not key=value")))?;
            if k.is_empty() {
                return Err(Error::Config(format!("label {kv:?} has an empty key")));
            }
            labels.insert(k.to_owned(), v.to_owned());
        }
        let mut reconciler = ReconcilerConfig::default();
        if let Some(s) = s.resync_seconds {
            reconciler.resync_period = Duration::from_secs(s);
        }
        if let Some(c) = s.reconcile_concurrency {
            reconciler.concurrency = c;
        }
        reconciler.quotas = quotas;
        reconciler.validate().map_err(Error::Config)?;
        let api_addr_text = s.api_addr.unwrap_or_else(|| DEFAULT_API_ADDR.to_owned());
        let api_addr = api_addr_text.parse().map_err(|e| {
            Error::Config(format!(
                "api address {api_addr_text:?}: {e} (want HOST:PORT, e.g. 127.0.0.1:9090)"
            ))
        })?;
        let admin_keys = s
            .admin_keys
            .iter()
            .map(|k| parse_key(k))
            .collect::<Result<_>>()?;
        let trusted: std::collections::HashSet<PublicKey> = s
            .trusted_keys
            .iter()
            .map(|k| parse_key(k))
            .collect::<Result<_>>()?;
        let skew = s.auth_skew_seconds.unwrap_or(60);
        if !(1..=3600).contains(&skew) {
            return Err(Error::Config(format!(
                "auth skew {skew}s is not between 1 and 3600 seconds"
            )));
        }
        let scheduler = s.scheduler.unwrap_or_default();
        let scoring = s.scoring;
        if scheduler == SchedulerKind::Mycelial && scoring == Some(Scoring::Binpack) {
            return Err(Error::Config(
                "scoring binpack applies to the simple scheduler only; the mycelial scheduler \
                 weighs nodes by reputation² × free share (pass --scheduler simple to bin-pack)"
                    .into(),
            ));
        }
        let auth = orchestrator_rest::AuthConfig {
            max_skew_seconds: skew,
            trusted_keys: (!trusted.is_empty()).then_some(trusted),
            admin_keys,
            ..orchestrator_rest::AuthConfig::default()
        };
        Ok(Self {
            api_addr,
            auth,
            data_dir,
            runtime,
            store: s.store.unwrap_or_default(),
            etcd,
            scheduler,
            scoring: scoring.unwrap_or_default(),
            log_format: s.log_format.unwrap_or_default(),
            node_allocatable,
            node_capacity,
            labels,
            operator,
            operator_proof,
            pledges,
            probes,
            reconciler,
            youki,
            bridge_off,
            cluster,
            mock_nodes,
        })
    }

    /// A configuration for tests: mock runtime, in-memory store, 4 cpu / 8 GiB.
    pub fn for_test(data_dir: PathBuf) -> Self {
        Self {
            youki: YoukiConfig::new(data_dir.join("runtime")),
            bridge_off: None,
            data_dir,
            runtime: RuntimeKind::Mock,
            store: StoreKind::Memory,
            etcd: None,
            scheduler: SchedulerKind::Simple,
            scoring: Scoring::Spread,
            log_format: LogFormat::Text,
            node_allocatable: Resources::new(4000, 8 << 30),
            node_capacity: Resources::new(4000, 8 << 30),
            labels: BTreeMap::new(),
            operator: None,
            operator_proof: None,
            pledges: orchestrator_trust::pledge::PledgeConfig::default(),
            probes: orchestrator_trust::probe::ProbeConfig::default(),
            reconciler: ReconcilerConfig::for_test(),
            api_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            auth: orchestrator_rest::AuthConfig::default(),
            cluster: None,
            mock_nodes: 1,
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

/// The etcd settings of `--store etcd`; refuses etcd flags without it.
fn resolve_etcd(s: &Settings) -> Result<Option<EtcdSettings>> {
    let wants = s.store == Some(StoreKind::Etcd);
    let flags = !s.etcd_endpoints.is_empty()
        || s.etcd_prefix.is_some()
        || s.lease_ttl.is_some()
        || s.advertise_api.is_some();
    if !wants {
        if flags {
            return Err(Error::Config(
                "--etcd-endpoints, --etcd-prefix, --lease-ttl and --advertise-api apply to \
                 --store etcd only"
                    .into(),
            ));
        }
        return Ok(None);
    }
    if !cfg!(feature = "etcd") {
        return Err(Error::Config(
            "--store etcd: this orchestrator_daemon was built without etcd support; build it \
             with `cargo build --release -p orchestrator_daemon --features etcd` (needs protoc: \
             Debian's protobuf-compiler)"
                .into(),
        ));
    }
    let (endpoints, prefix) = etcd_target(&s.etcd_endpoints, s.etcd_prefix.as_deref())?;
    let lease_ttl = match &s.lease_ttl {
        None => DEFAULT_LEASE_TTL,
        Some(t) => {
            super::duration::parse(t).map_err(|e| Error::Config(format!("lease ttl: {e}")))?
        }
    };
    if lease_ttl < std::time::Duration::from_secs(1)
        || lease_ttl > std::time::Duration::from_secs(60)
    {
        return Err(Error::Config(format!(
            "lease ttl {}s is not between 1 and 60 seconds",
            lease_ttl.as_secs()
        )));
    }
    let advertise_api = match &s.advertise_api {
        None => None,
        Some(a) => Some(
            a.parse()
                .map_err(|e| Error::Config(format!("advertise api {a:?}: {e} (want HOST:PORT)")))?,
        ),
    };
    Ok(Some(EtcdSettings {
        endpoints,
        prefix,
        lease_ttl,
        advertise_api,
    }))
}

/// The etcd cluster and key prefix of `--etcd-endpoints` and
/// `--etcd-prefix`, checked (client URLs; a prefix that starts with `/` and
/// does not end with one, [`DEFAULT_ETCD_PREFIX`] when none is given): what
/// the control planes use, and where `orchestrator_daemon migrate` copies to.
pub(crate) fn etcd_target(
    endpoints: &[String],
    prefix: Option<&str>,
) -> Result<(Vec<String>, String)> {
    let endpoints: Vec<String> = endpoints
        .iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    if endpoints.is_empty() {
        return Err(Error::Config(
            "--store etcd needs --etcd-endpoints, e.g. http://127.0.0.1:2379".into(),
        ));
    }
    for e in &endpoints {
        if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() < 10 {
            return Err(Error::Config(format!(
                "etcd endpoint {e:?} is not a client URL (http://HOST:PORT)"
            )));
        }
    }
    let prefix = prefix.unwrap_or(DEFAULT_ETCD_PREFIX).to_owned();
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
        return Err(Error::Config(format!(
            "etcd prefix {prefix:?} must start with / and not end with one, e.g. /univrs"
        )));
    }
    Ok((endpoints, prefix))
}
