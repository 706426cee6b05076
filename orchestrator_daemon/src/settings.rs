//! Every setting of the daemon, declared once in [`Settings`]: clap reads it
//! from a flag and its environment variable, serde from the configuration
//! file under the flag's name (`--node-cpu` is `node_cpu`), and
//! [`Settings::over`] lays flags over the file. `DaemonConfig::resolve`
//! then validates the result into each part's own configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::config::{LogFormat, Role, RuntimeKind, SchedulerKind, Scoring, StoreKind};
use crate::error::{Error, Result};
use crate::runtime_config::{ImageLimitsSettings, RegistryAuth};

/// How a flag's value combines with the file's: a flag replaces a single
/// value; lists add the flags' items after the file's; tables merge.
trait Merge {
    fn merge(flag: Self, file: Self) -> Self;
}

impl<T> Merge for Option<T> {
    fn merge(flag: Self, file: Self) -> Self {
        flag.or(file)
    }
}

impl<T> Merge for Vec<T> {
    fn merge(flag: Self, mut file: Self) -> Self {
        file.extend(flag);
        file
    }
}

impl<K: Ord, V> Merge for BTreeMap<K, V> {
    fn merge(flag: Self, mut file: Self) -> Self {
        file.extend(flag);
        file
    }
}

/// Declares the settings struct and its merge from one list of fields.
macro_rules! settings {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        pub struct $name { $($(#[$fmeta])* pub $field: $ty,)* }

        impl $name {
            /// These settings (from flags and environment) laid over `file`'s.
            pub fn over(self, file: Self) -> Self {
                Self { $($field: Merge::merge(self.$field, file.$field),)* }
            }
        }
    };
}

settings! {
/// The daemon's settings, every one optional; unknown file keys are errors.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Data directory (node key, SQLite state) [default: $XDG_DATA_HOME/univrs].
    #[arg(long, env = "UNIVRS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Container runtime [default: youki, real containers; needs root and
    /// cgroups]. `mock` simulates containers (tests, demos).
    #[arg(long, env = "UNIVRS_RUNTIME", value_enum)]
    pub runtime: Option<RuntimeKind>,
    /// State store [default: sqlite]. `etcd` keeps the state in an etcd
    /// cluster (--etcd-endpoints) shared by several control planes, one of
    /// which leads; it needs a daemon built with the `etcd` feature.
    #[arg(long, env = "UNIVRS_STORE", value_enum)]
    pub store: Option<StoreKind>,
    /// Client URLs of the etcd cluster of `--store etcd`, comma-separated
    /// or repeated, e.g. `http://10.0.0.1:2379,http://10.0.0.2:2379`.
    #[arg(long = "etcd-endpoints", env = "UNIVRS_ETCD_ENDPOINTS", value_delimiter = ',')]
    #[serde(default)]
    pub etcd_endpoints: Vec<String>,
    /// The key prefix of this cluster's state in etcd, so that clusters can
    /// share one etcd [default: /univrs].
    #[arg(long, env = "UNIVRS_ETCD_PREFIX")]
    pub etcd_prefix: Option<String>,
    /// Time-to-live of the leader's etcd lease, e.g. `1s`, `5s`: a leader
    /// that dies is replaced about this long after [default: 1s; etcd may
    /// grant more].
    #[arg(long, env = "UNIVRS_LEASE_TTL")]
    pub lease_ttl: Option<String>,
    /// The API address other control planes forward requests to when this
    /// one leads, HOST:PORT [default: --api-addr; required when that binds
    /// every address, e.g. 0.0.0.0:9090].
    #[arg(long, env = "UNIVRS_ADVERTISE_API")]
    pub advertise_api: Option<String>,
    /// Scheduler [default: simple]. `mycelial` adds the workload owner's trust
    /// rules and weighs nodes by reputation² × free share.
    #[arg(long, env = "UNIVRS_SCHEDULER", value_enum)]
    pub scheduler: Option<SchedulerKind>,
    /// Scheduler scoring of the simple scheduler [default: spread].
    #[arg(long, env = "UNIVRS_SCORING", value_enum)]
    pub scoring: Option<Scoring>,
    /// Log format [default: text]; filter with RUST_LOG.
    #[arg(long, env = "UNIVRS_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// CPU this node offers, e.g. `4` or `3500m` [default: every core].
    #[arg(long, env = "UNIVRS_NODE_CPU")]
    pub node_cpu: Option<String>,
    /// Memory this node offers, e.g. `8Gi` [default: all memory].
    #[arg(long, env = "UNIVRS_NODE_MEMORY")]
    pub node_memory: Option<String>,
    /// A label of this node, `key=value` (repeatable).
    #[arg(long = "label")]
    #[serde(default, deserialize_with = "labels_from_table")]
    pub labels: Vec<String>,
    /// The public key (hex or base64) of the operator who runs this node
    /// (`ui identity show`) [default: the node's own key]. Another key than
    /// the node's needs --operator-proof.
    #[arg(long, env = "UNIVRS_OPERATOR")]
    pub operator: Option<String>,
    /// The operator's proof that it runs this node: what `ui operator prove
    /// NODE_ID` prints on the operator's machine (the node id: `orchestrator_daemon
    /// node-id`). Needed when --operator is not the node's own key.
    #[arg(long, env = "UNIVRS_OPERATOR_PROOF", allow_hyphen_values = true)]
    pub operator_proof: Option<String>,
    /// Price of a CPU core-hour on a node of another operator than the
    /// workload's owner, in milli-units of credit: a control plane places a
    /// pledge (hold) on the owner's credit for each such instance and settles
    /// it for the time it ran [default: 0, no pledges].
    #[arg(long, env = "UNIVRS_CREDIT_PRICE")]
    pub credit_price: Option<i64>,
    /// Image of the honesty probes' benchmark container (any image with a
    /// POSIX sh and date, e.g. busybox): every 6 h the control plane runs it
    /// for 5 s on each node of another operator and compares the CPU it got
    /// with the CPU promised [default: none, no probes].
    #[arg(long, env = "UNIVRS_PROBE_IMAGE")]
    pub probe_image: Option<String>,
    /// Seconds between full resyncs [default: 30].
    #[arg(long, env = "UNIVRS_RESYNC_SECONDS")]
    pub resync_seconds: Option<u64>,
    /// Workloads reconciled at once [default: 32].
    #[arg(long, env = "UNIVRS_RECONCILE_CONCURRENCY")]
    pub reconcile_concurrency: Option<usize>,
    /// With `--runtime mock` on a standalone node: how many nodes to
    /// simulate in all, this one and N−1 more of its size, on which the mock
    /// runtime runs simulated instances (demos, and benchmarks such as the
    /// dashboard's with 100 nodes) [default: 1, none simulated; at most
    /// 1000]. Refused with any other runtime and in a cluster.
    #[arg(long, env = "UNIVRS_MOCK_NODES")]
    pub mock_nodes: Option<u32>,
    /// Address of the REST API, HOST:PORT (port 0 picks a free one) [default: 127.0.0.1:9090].
    #[arg(long, env = "UNIVRS_API_ADDR")]
    pub api_addr: Option<String>,
    /// Most workloads one owner (key) may have [default: 100].
    #[arg(long, env = "UNIVRS_QUOTA_WORKLOADS")]
    pub quota_workloads: Option<u64>,
    /// Most replicas one owner may have, all workloads together [default: 500].
    #[arg(long, env = "UNIVRS_QUOTA_REPLICAS")]
    pub quota_replicas: Option<u64>,
    /// Most CPU one owner's replicas may request together, e.g. `64` or
    /// `6500m` [default: 64].
    #[arg(long, env = "UNIVRS_QUOTA_CPU")]
    pub quota_cpu: Option<String>,
    /// Most memory one owner's replicas may request together, e.g. `256Gi`
    /// [default: 256Gi].
    #[arg(long, env = "UNIVRS_QUOTA_MEMORY")]
    pub quota_memory: Option<String>,
    /// Most bytes of volumes one owner may have, all together, e.g. `500Gi`
    /// [default: 1Ti].
    #[arg(long, env = "UNIVRS_QUOTA_VOLUMES")]
    pub quota_volumes: Option<String>,
    /// A key (hex or base64) that may act on every workload and node (repeatable).
    #[arg(long = "admin-key")]
    #[serde(default)]
    pub admin_keys: Vec<String>,
    /// Only these keys (and admin keys) may call the API (repeatable; default: any key).
    #[arg(long = "trusted-key")]
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Allowed clock skew of signed requests, in seconds [default: 60].
    #[arg(long, env = "UNIVRS_AUTH_SKEW_SECONDS")]
    pub auth_skew_seconds: Option<i64>,
    /// A registry HOST:PORT reached over plain HTTP instead of HTTPS (repeatable).
    #[arg(long = "insecure-registry")]
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// When to pull images: Always, IfNotPresent or Never [default: IfNotPresent].
    #[arg(long, env = "UNIVRS_IMAGE_PULL_POLICY")]
    pub image_pull_policy: Option<String>,
    /// Image cache size before unused images are removed, e.g. `10Gi` [default: 10Gi].
    #[arg(long, env = "UNIVRS_IMAGE_CACHE_SIZE")]
    pub image_cache_size: Option<String>,
    /// Quota of this node's image store (blobs and unpacked images), e.g.
    /// `32Gi`: a pull that would go above it is refused [default: 32Gi].
    #[arg(long, env = "UNIVRS_IMAGE_STORE_QUOTA")]
    pub image_store_quota: Option<String>,
    /// Caps on one image pull, whatever the registry declares (configuration
    /// file only: `[image_limits]` with `max_manifest_size`,
    /// `max_config_size`, `max_layer_size`, `max_layer_unpacked_size`,
    /// `max_layer_entries`, `max_layers`, `max_image_size`).
    #[arg(skip)]
    pub image_limits: Option<ImageLimitsSettings>,
    /// Role in the cluster [default: auto — control-plane without --seed,
    /// worker with one]. Needs --gossip-addr.
    #[arg(long, env = "UNIVRS_ROLE", value_enum)]
    pub role: Option<Role>,
    /// Gossip address IP:PORT (UDP), e.g. 0.0.0.0:7946; turns on cluster mode.
    #[arg(long, env = "UNIVRS_GOSSIP_ADDR")]
    pub gossip_addr: Option<String>,
    /// Host name or IP other nodes reach this node's gossip and API at
    /// [default: the gossip address's IP].
    #[arg(long, env = "UNIVRS_ADVERTISE_ADDR")]
    pub advertise_addr: Option<String>,
    /// A node to join through, HOST:PORT of its gossip (repeatable; env:
    /// comma-separated). Only with --join (which adds its control planes) or
    /// an explicit --cluster-id (the unauthenticated behaviour before
    /// admission); alone it is refused.
    #[arg(long = "seed", env = "UNIVRS_SEEDS", value_delimiter = ',')]
    #[serde(default)]
    pub seeds: Vec<String>,
    /// Join a cluster with a token from `orchestrator_daemon join-token` (or
    /// `ui cluster join-token`) on its control plane, in place of --seed: it
    /// gives the cluster id, the gossip key, the seeds and the control-plane
    /// keys to pin. Used once; later starts reuse what the join recorded in
    /// the data directory. Keep it secret.
    #[arg(long = "join", env = "UNIVRS_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// File of the cluster's gossip keys: one base64 32-byte key per line
    /// (`head -c 32 /dev/urandom | base64`), the first seals, every one
    /// opens; mode 600. Re-read on SIGHUP, so keys rotate without a restart
    /// [default: `gossip.keys` in the data directory when it exists, as a
    /// control plane that creates its cluster or a node that joins with a
    /// token writes it]. Without it gossip is neither authenticated nor
    /// encrypted.
    #[arg(long, env = "UNIVRS_GOSSIP_KEY_FILE")]
    pub gossip_key_file: Option<PathBuf>,
    /// Cluster id; gossip from other clusters is ignored [default: the id a
    /// control plane creates at its first start, or the join token's]. An id
    /// set here is public knowledge: it admits nobody by itself.
    #[arg(long, env = "UNIVRS_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Milliseconds between gossip rounds [default: 100].
    #[arg(long, env = "UNIVRS_GOSSIP_INTERVAL_MS")]
    pub gossip_interval_ms: Option<u64>,
    /// Phi-accrual threshold above which a silent peer is declared dead [default: 8].
    #[arg(long, env = "UNIVRS_PHI_THRESHOLD")]
    pub phi_threshold: Option<f64>,
    /// Seconds a dead peer stays listed as Down before it is forgotten [default: 3600].
    #[arg(long, env = "UNIVRS_DEAD_NODE_GRACE_SECONDS")]
    pub dead_node_grace_seconds: Option<u64>,
    /// Where the standard CNI plugins are (Debian: containernetworking-plugins),
    /// for instances on `univrs.io/network: bridge` [default: /usr/lib/cni].
    /// Without them the daemon says so at start and bridge networking is off.
    #[arg(long, env = "UNIVRS_CNI_BIN_DIR")]
    pub cni_bin_dir: Option<PathBuf>,
    /// This node's subnet for instances on `univrs.io/network: bridge`, e.g.
    /// `10.88.0.0/24`; the node's bridge `univrs0` takes its first address
    /// [default: 10.88.0.0/24].
    #[arg(long, env = "UNIVRS_NODE_SUBNET")]
    pub node_subnet: Option<String>,
    /// The cluster network's range, set when a control plane creates its
    /// cluster: every member gets a /24 of it at admission (the control
    /// plane the first) and reaches the others' instances over the
    /// encrypted overlay [default: 10.88.0.0/16].
    #[arg(long, env = "UNIVRS_CLUSTER_CIDR")]
    pub cluster_cidr: Option<String>,
    /// The UDP port of this node's end of the encrypted cluster overlay
    /// (WireGuard) [default: 51820].
    #[arg(long, env = "UNIVRS_OVERLAY_PORT")]
    pub overlay_port: Option<u16>,
    /// Node ports given to published ports without a fixed `host_port`, as
    /// `FIRST-LAST` [default: 30000-32767].
    #[arg(long, env = "UNIVRS_HOST_PORT_RANGE")]
    pub host_port_range: Option<String>,
    /// Bridge attachments kept made ahead of time (namespace, address, the
    /// plugins run), so that a bridged instance starts without waiting for
    /// the CNI plugins; each holds an address of the node's subnet. 0 makes
    /// every attachment when its instance is created [default: 2; at most 32].
    #[arg(long, env = "UNIVRS_WARM_NETWORKS")]
    pub warm_networks: Option<usize>,
    /// Let bridged instances open connections to the node itself (its
    /// gossip, API and agent ports, anything listening on it) [default:
    /// false: refused].
    #[arg(long, env = "UNIVRS_ALLOW_INSTANCES_TO_NODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_instances_to_node: Option<bool>,
    /// Let bridged instances of different owners connect to each other
    /// [default: false: an instance accepts connections only from its
    /// owner's instances, and anyone on its published ports].
    #[arg(long, env = "UNIVRS_ALLOW_TRAFFIC_BETWEEN_OWNERS", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_traffic_between_owners: Option<bool>,
    /// Turn off the seccomp filter of this node's containers (Docker's
    /// default profile, which refuses `unshare`, `mount`, `bpf`, `ptrace`,
    /// `keyctl`, … with EPERM): for workloads that need those syscalls
    /// [default: false, filtered]. `--no-seccomp` alone means true.
    #[arg(long, env = "UNIVRS_NO_SECCOMP", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_seccomp: Option<bool>,
    /// Let this node's containers keep CAP_NET_RAW (raw sockets: `ping`,
    /// packet capture, and forging packets to other instances on the node)
    /// [default: false, dropped]. `--allow-net-raw` alone means true.
    #[arg(long, env = "UNIVRS_ALLOW_NET_RAW", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_net_raw: Option<bool>,
    /// Let workloads run on this node's own network (`network: host`):
    /// such an instance can bind any port of the node and see its traffic
    /// [default: false, refused; workloads get the bridge].
    /// `--allow-host-network` alone means true.
    #[arg(long, env = "UNIVRS_ALLOW_HOST_NETWORK", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_host_network: Option<bool>,
    /// Credentials per registry host (configuration file only:
    /// `[registry_auth."host:port"]` with `username` and `password`).
    #[arg(skip)]
    #[serde(default)]
    pub registry_auth: BTreeMap<String, RegistryAuth>,
}
}

impl Settings {
    /// Reads and parses the configuration file `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| Error::ParseConfig {
            path: path.to_owned(),
            source,
        })
    }
}

/// The file's `[labels]` table as `key=value` items, the form of `--label`.
fn labels_from_table<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    let table = BTreeMap::<String, String>::deserialize(d)?;
    Ok(table.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}
