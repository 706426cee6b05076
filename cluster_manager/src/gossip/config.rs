//! [`GossipConfig`]: the settings of the gossip membership, and their
//! translation into a [`chitchat::ChitchatConfig`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::{ChitchatConfig, ChitchatId, FailureDetectorConfig, ProtocolVersion};

use super::keyring::Keyring;

/// Cluster id used when none is configured.
pub const DEFAULT_CLUSTER_ID: &str = "univrs";
/// Gossip round period used when none is configured.
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_millis(100);
/// Phi-accrual threshold used when none is configured.
pub const DEFAULT_PHI_THRESHOLD: f64 = 8.0;
/// How long a dead node stays listed (`Down`) when nothing else is configured.
pub const DEFAULT_DEAD_NODE_GRACE: Duration = Duration::from_secs(60 * 60);

const MIN_GOSSIP_INTERVAL: Duration = Duration::from_millis(10);
const MAX_GOSSIP_INTERVAL: Duration = Duration::from_secs(10);
const MIN_DEAD_NODE_GRACE: Duration = Duration::from_secs(1);
/// Heartbeat intervals longer than this are not sampled by the failure
/// detector (chitchat's default).
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Heartbeat intervals the failure detector remembers per node (chitchat's default).
const SAMPLING_WINDOW_SIZE: usize = 1_000;
/// How long a key deleted from a node record is kept as a tombstone. We only
/// ever overwrite our one key, so this only matters for foreign keys.
const MARKED_FOR_DELETION_GRACE: Duration = Duration::from_secs(60 * 60);

/// Settings of the gossip membership.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// Name of the cluster (default `"univrs"`): chitchat ignores nodes that
    /// gossip with another cluster id, and it is part of every signed record.
    pub cluster_id: String,
    /// UDP address the gossip socket binds to.
    pub listen_addr: SocketAddr,
    /// Address peers use to reach this node's gossip socket (chitchat's
    /// `gossip_advertise_addr`); never unspecified (`0.0.0.0`).
    pub advertise_addr: SocketAddr,
    /// Nodes to join through, as `host:port` (names are resolved again every
    /// minute by chitchat).
    pub seeds: Vec<String>,
    /// Period of gossip rounds (default 100 ms, from 10 ms to 10 s). A killed
    /// node is declared dead after about `phi_threshold` heartbeat intervals.
    pub gossip_interval: Duration,
    /// Phi-accrual failure-detector threshold (default 8.0): higher declares
    /// nodes dead later but more surely.
    pub phi_threshold: f64,
    /// How long a dead node is listed as `Down` (default 1 h, at least 1 s)
    /// before it is forgotten and `NodeRemoved` is emitted.
    pub dead_node_grace: Duration,
    /// Distinguishes this run of the node from earlier ones (default: Unix
    /// time in milliseconds at construction); must grow across restarts so
    /// that peers recognise the restarted node as the newest.
    pub generation: u64,
    /// The cluster's gossip keys (default: none). With a keyring every packet
    /// is sealed (authenticated and encrypted) and packets that do not open
    /// are dropped; without one gossip is plain and anyone who reaches the
    /// port can take part. Shared with whoever rotates the keys.
    pub keyring: Option<Arc<Keyring>>,
    /// The pinned control-plane keys (default: none). When some are given,
    /// only they and the nodes on the newest member list one of them signed
    /// (gossiped under `admission:members`) are members: every other record
    /// is ignored, and so is what those nodes publish. Without any, every
    /// node that gossips the cluster's id (and key) is a member.
    pub control_planes: Vec<orchestrator_shared_types::NodeId>,
}

impl GossipConfig {
    /// A configuration with every default: cluster `univrs`, no seeds,
    /// 100 ms gossip, phi 8, 1 h grace, generation = now in Unix ms.
    pub fn new(listen_addr: SocketAddr, advertise_addr: SocketAddr) -> Self {
        Self {
            cluster_id: DEFAULT_CLUSTER_ID.to_owned(),
            listen_addr,
            advertise_addr,
            seeds: Vec::new(),
            gossip_interval: DEFAULT_GOSSIP_INTERVAL,
            phi_threshold: DEFAULT_PHI_THRESHOLD,
            dead_node_grace: DEFAULT_DEAD_NODE_GRACE,
            generation: unix_millis(),
            keyring: None,
            control_planes: Vec::new(),
        }
    }

    /// Checks every field; the error says which one is wrong and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.cluster_id.is_empty() {
            return Err("cluster_id is empty".to_owned());
        }
        if !(MIN_GOSSIP_INTERVAL..=MAX_GOSSIP_INTERVAL).contains(&self.gossip_interval) {
            return Err(format!(
                "gossip_interval {:?} is outside {MIN_GOSSIP_INTERVAL:?}..={MAX_GOSSIP_INTERVAL:?}",
                self.gossip_interval
            ));
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold > 0.0) {
            return Err(format!(
                "phi_threshold {} is not a positive finite number",
                self.phi_threshold
            ));
        }
        if self.dead_node_grace < MIN_DEAD_NODE_GRACE {
            return Err(format!(
                "dead_node_grace {:?} is shorter than {MIN_DEAD_NODE_GRACE:?}",
                self.dead_node_grace
            ));
        }
        if self.advertise_addr.ip().is_unspecified() || self.advertise_addr.port() == 0 {
            return Err(format!(
                "advertise_addr {} is not an address peers can reach (unspecified ip or port 0)",
                self.advertise_addr
            ));
        }
        for seed in &self.seeds {
            check_host_port(seed).map_err(|reason| format!("seed {seed:?}: {reason}"))?;
        }
        Ok(())
    }

    /// The chitchat configuration of a node gossiping as `chitchat_id`.
    pub(crate) fn chitchat_config(&self, chitchat_id: ChitchatId) -> ChitchatConfig {
        ChitchatConfig {
            chitchat_id,
            cluster_id: self.cluster_id.clone(),
            gossip_interval: self.gossip_interval,
            listen_addr: self.listen_addr,
            seed_nodes: self.seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: self.phi_threshold,
                sampling_window_size: SAMPLING_WINDOW_SIZE,
                max_interval: MAX_HEARTBEAT_INTERVAL.max(self.gossip_interval * 2),
                // The prior of the mean heartbeat interval. chitchat's default
                // (5 s) makes a young node take tens of seconds to be declared
                // dead; our heartbeats come about once a gossip round.
                initial_interval: self.gossip_interval,
                dead_node_grace_period: self.dead_node_grace,
            },
            marked_for_deletion_grace_period: MARKED_FOR_DELETION_GRACE,
            catchup_callback: None,
            extra_liveness_predicate: None,
            // V1 compresses digests but older chitchat peers cannot read it.
            protocol_version: ProtocolVersion::V0,
        }
    }
}

/// Checks that `seed` is `host:port` (an IP, `[v6]` or a name, and a port 1..=65535).
fn check_host_port(seed: &str) -> Result<(), String> {
    if seed.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = seed
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_owned())?;
    if host.is_empty() || host.contains(':') || host.contains(char::is_whitespace) {
        return Err(format!("{host:?} is not a host name"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{port:?} is not a port")),
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GossipConfig {
        let addr: SocketAddr = "127.0.0.1:7946".parse().unwrap();
        GossipConfig::new(addr, addr)
    }

    #[test]
    fn defaults_are_valid() {
        let c = config();
        assert_eq!(c.cluster_id, "univrs");
        assert_eq!(c.gossip_interval, Duration::from_millis(100));
        assert_eq!(c.dead_node_grace, Duration::from_secs(3600));
        assert!(c.generation > 1_600_000_000_000, "generation is Unix ms");
        c.validate().unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        type Change = fn(&mut GossipConfig);
        let cases: Vec<(Change, &str)> = vec![
            (
                |c| c.gossip_interval = Duration::from_millis(5),
                "gossip_interval",
            ),
            (
                |c| c.gossip_interval = Duration::from_secs(11),
                "gossip_interval",
            ),
            (|c| c.phi_threshold = 0.0, "phi_threshold"),
            (|c| c.phi_threshold = f64::NAN, "phi_threshold"),
            (|c| c.phi_threshold = f64::INFINITY, "phi_threshold"),
            (
                |c| c.dead_node_grace = Duration::from_millis(999),
                "dead_node_grace",
            ),
            (
                |c| c.advertise_addr = "0.0.0.0:7946".parse().unwrap(),
                "advertise_addr",
            ),
            (
                |c| c.advertise_addr = "127.0.0.1:0".parse().unwrap(),
                "advertise_addr",
            ),
            (|c| c.seeds = vec!["no-port".into()], "seed"),
            (|c| c.seeds = vec!["host:99999".into()], "seed"),
            (|c| c.seeds = vec![":7946".into()], "seed"),
            (|c| c.cluster_id.clear(), "cluster_id"),
        ];
        for (change, field) in cases {
            let mut c = config();
            change(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.contains(field), "{err:?} does not name {field}");
        }
    }

    #[test]
    fn seeds_may_be_names_or_addresses() {
        let mut c = config();
        c.seeds = vec![
            "10.0.0.1:7946".into(),
            "[::1]:7946".into(),
            "cp.example.org:7946".into(),
        ];
        c.validate().unwrap();
    }

    #[test]
    fn chitchat_config_carries_every_setting() {
        let mut c = config();
        c.seeds = vec!["10.0.0.1:7946".into()];
        let id = ChitchatId::new("n", c.generation, c.advertise_addr);
        let cc = c.chitchat_config(id.clone());
        assert_eq!(cc.chitchat_id, id);
        assert_eq!(cc.cluster_id, "univrs");
        assert_eq!(cc.seed_nodes, c.seeds);
        assert_eq!(
            cc.failure_detector_config.dead_node_grace_period,
            c.dead_node_grace
        );
        assert_eq!(cc.failure_detector_config.phi_threshold, 8.0);
        assert_eq!(cc.protocol_version, ProtocolVersion::V0);
    }
}
