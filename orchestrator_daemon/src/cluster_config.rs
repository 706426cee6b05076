//! The cluster part of the daemon's configuration: role, gossip address,
//! advertised address, seeds and failure-detection settings.

use orchestrator_shared_types::net::Ipv4Subnet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cluster_manager::gossip::GossipConfig;
use serde::Deserialize;

use orchestrator_shared_types::admission::{JoinRole, JoinToken};

use super::config::valid_host_port;
use crate::error::{Error, Result};
use crate::settings::Settings;

/// What this daemon does in a cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `control-plane` when no seed is given, else `worker`.
    #[default]
    Auto,
    /// Keeps the state and runs the scheduler; one per cluster.
    ControlPlane,
    /// Runs what the control plane assigns; forwards API requests to it.
    Worker,
}

impl Role {
    /// The role's name in node labels and `/api/v1/network`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auto => "auto",
            Role::ControlPlane => cluster_manager_interface::ROLE_CONTROL_PLANE,
            Role::Worker => cluster_manager_interface::ROLE_WORKER,
        }
    }
}

/// Default UDP port of gossip.
pub const DEFAULT_GOSSIP_PORT: u16 = 7946;

/// Cluster mode: the node's role and its gossip configuration.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// `ControlPlane` or `Worker` (never `Auto` once resolved).
    pub role: Role,
    /// Host name or IP peers use to reach this node's gossip and API; default:
    /// the gossip address's IP (which must then not be 0.0.0.0).
    pub advertise_host: Option<String>,
    /// Gossip (chitchat's own configuration): where it listens, seeds,
    /// cluster name, pacing and failure detection. Its advertised address is
    /// the listen address until the daemon resolves `advertise_host` at start.
    /// Its keyring, if any, was read from `gossip_key_file`.
    pub gossip: GossipConfig,
    /// The gossip key file, re-read on SIGHUP; `None`: gossip is not sealed
    /// (or, with a cluster identity, `gossip.keys` in the data directory).
    pub gossip_key_file: Option<PathBuf>,
    /// The join token (`--join`), parsed and unexpired at resolution.
    pub join: Option<JoinToken>,
    /// Whether the cluster id was set explicitly (`--cluster-id`): then no
    /// cluster identity is created or followed (the behaviour before admission).
    pub cluster_id_explicit: bool,
    /// The cluster network's range a control plane creates its cluster with
    /// (`--cluster-cidr`).
    pub cluster_cidr: Ipv4Subnet,
    /// The UDP port of the overlay (`--overlay-port`).
    pub overlay_port: u16,
    /// `--node-subnet` as given: a node of a cluster with a network takes the
    /// subnet it was handed, and refuses to start if this names another.
    pub node_subnet: Option<String>,
}

/// Default time between gossip rounds: fast failover (a killed node is
/// declared dead in well under a second) without false alarms at 10 % loss.
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_millis(100);
/// Default phi threshold.
pub const DEFAULT_PHI_THRESHOLD: f64 = 8.0;
/// Default time a dead peer stays listed as Down.
pub const DEFAULT_DEAD_NODE_GRACE: Duration = Duration::from_secs(3600);

/// Why `--seed` alone is refused: a node of a created cluster is admitted
/// only with a token, and a node that gossips without one would sit outside
/// the member list, ignored by everyone, without saying why.
pub(crate) const SEED_WITHOUT_JOIN: &str =
    "--seed without --join: nodes join a cluster with a join \
     token. Get one from the control plane (`orchestrator_daemon join-token` on its machine, \
     or `ui cluster join-token` with an admin key) and start this node with --join TOKEN (it \
     brings the seeds). To keep the unauthenticated behaviour before admission instead, give \
     the cluster id explicitly with --cluster-id";

/// The cluster settings of `s`, validated; `None` without a gossip address
/// (a standalone node).
pub(super) fn resolve(s: &Settings) -> Result<Option<ClusterSettings>> {
    let join = match s.join_token.as_deref() {
        Some(text) => {
            let token =
                JoinToken::parse(text).map_err(|e| Error::Config(format!("--join: {e}")))?;
            token
                .check_expiry(chrono::Utc::now())
                .map_err(|e| Error::Config(format!("--join: {e}: ask for a new one")))?;
            Some(token)
        }
        None => None,
    };
    let mut seeds = s.seeds.clone();
    if let Some(token) = &join {
        if let Some(id) = s.cluster_id.as_ref().filter(|id| **id != token.cluster_id) {
            return Err(Error::Config(format!(
                "--cluster-id {id:?} differs from the join token's cluster {}",
                token.cluster_id
            )));
        }
        for cp in &token.control_planes {
            if !seeds.contains(&cp.gossip_addr) {
                seeds.push(cp.gossip_addr.clone());
            }
        }
    }
    for seed in &seeds {
        if !valid_host_port(seed) {
            return Err(Error::Config(format!(
                "seed {seed:?} is not HOST:PORT (e.g. 10.0.0.1:{DEFAULT_GOSSIP_PORT})"
            )));
        }
    }
    let role = s.role.unwrap_or_default();
    // Control planes on etcd take the cluster's identity from etcd, and find
    // each other there (their gossip addresses are their seeds).
    let on_etcd = s.store == Some(super::config::StoreKind::Etcd);
    let Some(text) = s.gossip_addr.as_ref() else {
        if !seeds.is_empty() || role != Role::Auto || s.gossip_key_file.is_some() {
            return Err(Error::Config(
                "--seed, --join, --role and --gossip-key-file need --gossip-addr HOST:PORT \
                 (cluster mode)"
                    .into(),
            ));
        }
        return Ok(None);
    };
    if on_etcd {
        if join.is_some() || s.cluster_id.is_some() {
            return Err(Error::Config(
                "--store etcd: a control plane on etcd takes the cluster's identity from etcd;                  drop --join and --cluster-id (workers join with a token, without etcd)"
                    .into(),
            ));
        }
        if role == Role::Worker {
            return Err(Error::Config(
                "--store etcd is for control planes: a worker joins with --join TOKEN and                  never reaches etcd"
                    .into(),
            ));
        }
    } else if !s.seeds.is_empty() && join.is_none() && s.cluster_id.is_none() {
        return Err(Error::Config(SEED_WITHOUT_JOIN.into()));
    }
    let gossip_addr: std::net::SocketAddr = text.parse().map_err(|e| {
        Error::Config(format!(
            "gossip address {text:?}: {e} (want IP:PORT, e.g. 0.0.0.0:{DEFAULT_GOSSIP_PORT})"
        ))
    })?;
    let advertise_host = s.advertise_addr.clone();
    if advertise_host.is_none() && gossip_addr.ip().is_unspecified() {
        return Err(Error::Config(format!(
            "gossip address {gossip_addr} listens on every interface: say which address peers \
             reach this node at with --advertise-addr HOST"
        )));
    }
    let role = match (role, &join) {
        (Role::Auto, Some(t)) if t.role == JoinRole::ControlPlane => Role::ControlPlane,
        (Role::Auto, Some(_)) => Role::Worker,
        (r, Some(t)) if r.as_str() != t.role.as_str() => {
            return Err(Error::Config(format!(
                "--role {} differs from the join token's role {}",
                r.as_str(),
                t.role.as_str()
            )))
        }
        (r, _) => r,
    };
    let role = match role {
        Role::Auto if seeds.is_empty() || on_etcd => Role::ControlPlane,
        Role::Auto => Role::Worker,
        r => r,
    };
    if role == Role::Worker && seeds.is_empty() {
        return Err(Error::Config(
            "a worker needs --join TOKEN (from `orchestrator_daemon join-token` on the control \
             plane) or at least one --seed HOST:PORT to find the cluster"
                .into(),
        ));
    }
    let interval_ms = s
        .gossip_interval_ms
        .unwrap_or(DEFAULT_GOSSIP_INTERVAL.as_millis() as u64);
    if !(10..=10_000).contains(&interval_ms) {
        return Err(Error::Config(format!(
            "gossip interval {interval_ms} ms is not between 10 and 10000"
        )));
    }
    let phi_threshold = s.phi_threshold.unwrap_or(DEFAULT_PHI_THRESHOLD);
    if !(phi_threshold.is_finite() && phi_threshold > 0.0 && phi_threshold <= 1000.0) {
        return Err(Error::Config(format!(
            "phi threshold {phi_threshold} is not between 0 and 1000"
        )));
    }
    let grace = s
        .dead_node_grace_seconds
        .map_or(DEFAULT_DEAD_NODE_GRACE, Duration::from_secs);
    if grace < Duration::from_secs(1) {
        return Err(Error::Config(
            "dead node grace must be at least 1 second".into(),
        ));
    }
    let cluster_id_explicit = s.cluster_id.is_some() && join.is_none();
    let cluster_id = match &join {
        Some(t) => t.cluster_id.clone(),
        None => s
            .cluster_id
            .clone()
            .unwrap_or_else(|| cluster_manager::gossip::DEFAULT_CLUSTER_ID.into()),
    };
    if cluster_id.is_empty() {
        return Err(Error::Config("cluster id must not be empty".into()));
    }
    let mut gossip = GossipConfig::new(gossip_addr, gossip_addr);
    gossip.cluster_id = cluster_id;
    gossip.seeds = seeds;
    gossip.gossip_interval = Duration::from_millis(interval_ms);
    gossip.phi_threshold = phi_threshold;
    gossip.dead_node_grace = grace;
    gossip.keyring = match &s.gossip_key_file {
        Some(path) => Some(Arc::new(crate::gossip_keys::keyring(path)?)),
        None => None,
    };
    let cidr = s
        .cluster_cidr
        .as_deref()
        .unwrap_or(orchestrator_shared_types::net::DEFAULT_CLUSTER_CIDR);
    let cluster_cidr: Ipv4Subnet = cidr
        .parse()
        .map_err(|e| Error::Config(format!("cluster cidr {cidr:?}: {e}")))?;
    if cluster_cidr.count(orchestrator_shared_types::net::NODE_SUBNET_PREFIX) < 2 {
        return Err(Error::Config(format!(
            "cluster cidr {cidr:?} holds fewer than two node subnets (/{}): give a wider range, \
             e.g. 10.88.0.0/16",
            orchestrator_shared_types::net::NODE_SUBNET_PREFIX
        )));
    }
    Ok(Some(ClusterSettings {
        cluster_cidr,
        overlay_port: s
            .overlay_port
            .unwrap_or(container_runtime::youki::cni::overlay::DEFAULT_OVERLAY_PORT),
        node_subnet: s.node_subnet.clone(),
        role,
        advertise_host,
        gossip,
        gossip_key_file: s.gossip_key_file.clone(),
        join,
        cluster_id_explicit,
    }))
}
