//! The node's bridge network, and the configuration list the plugins get.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::netns::DEFAULT_NETNS_DIR;
use super::plugins::DEFAULT_BIN_DIR;
use super::{CniError, Result, CNI_VERSION};

pub use orchestrator_shared_types::net::Ipv4Subnet;

/// Settings of a node's bridge network.
#[derive(Clone, Debug)]
pub struct CniConfig {
    /// Where the plugins are (`--cni-bin-dir`, default `/usr/lib/cni`).
    pub bin_dir: PathBuf,
    /// The network's name: host-local's lease subdirectory, and part of the
    /// names and comments of the plugins' iptables chains and rules.
    pub name: String,
    /// The Linux bridge the instances are joined to (at most 15 bytes).
    pub bridge: String,
    /// The node's subnet; the bridge gets its first address (the gateway).
    pub subnet: Ipv4Subnet,
    /// The daemon's directory for the network: `leases/` (host-local's
    /// `dataDir`, instead of `/var/lib/cni`) and `results/` (each
    /// attachment's ADD result, handed to CHECK and DEL).
    pub data_dir: PathBuf,
    /// Where instances' network namespaces are made (default `/run/netns`,
    /// where `ip netns` finds them).
    pub netns_dir: PathBuf,
    /// The MTU of the bridge and the veths (none: the plugins' default).
    pub mtu: Option<u32>,
    /// How long one plugin may run before it is killed.
    pub plugin_timeout: Duration,
    /// Where a published port without a fixed `host_port` gets its node
    /// port (default 30000–32767, below Linux's ephemeral ports).
    pub host_port_range: RangeInclusive<u16>,
    /// Whether instances are kept from opening connections to the node
    /// itself (default true; see [`super::guard`]).
    pub guard_node: bool,
    /// Whether an instance with an owner accepts connections only from
    /// instances of the same owner, besides its published ports (default
    /// true; see [`super::isolation`]).
    pub isolate_owners: bool,
    /// How many attachments are kept made ahead of time for containers yet
    /// to come (default 0: each is made when its container is; see
    /// [`super::warm`]).
    pub warm: usize,
}

/// The default [`CniConfig::host_port_range`].
pub const DEFAULT_HOST_PORT_RANGE: RangeInclusive<u16> = 30000..=32767;

impl CniConfig {
    /// The node's network `univrs` on bridge `univrs0` over `subnet`, plugins
    /// from `/usr/lib/cni`, state under `data_dir`, namespaces in
    /// `/run/netns`, 30 s per plugin.
    pub fn new(data_dir: impl Into<PathBuf>, subnet: Ipv4Subnet) -> Self {
        Self {
            bin_dir: PathBuf::from(DEFAULT_BIN_DIR),
            name: "univrs".into(),
            bridge: "univrs0".into(),
            subnet,
            data_dir: data_dir.into(),
            netns_dir: PathBuf::from(DEFAULT_NETNS_DIR),
            mtu: None,
            plugin_timeout: Duration::from_secs(30),
            host_port_range: DEFAULT_HOST_PORT_RANGE,
            guard_node: true,
            isolate_owners: true,
            warm: 0,
        }
    }

    /// Checks the names: a network name and a bridge name the plugins and
    /// the kernel accept.
    pub fn validate(&self) -> Result<()> {
        check_id("name", &self.name)?;
        if self.host_port_range.is_empty() || *self.host_port_range.start() == 0 {
            return Err(CniError::InvalidSetting {
                field: "host port range",
                reason: format!(
                    "{}-{} holds no port",
                    self.host_port_range.start(),
                    self.host_port_range.end()
                ),
            });
        }
        if self.bridge.is_empty()
            || self.bridge.len() > 15
            || !self
                .bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(CniError::InvalidSetting {
                field: "bridge",
                reason: format!(
                    "{:?} must be 1 to 15 letters, digits, '-', '_' or '.'",
                    self.bridge
                ),
            });
        }
        Ok(())
    }

    /// Where host-local keeps its leases (it adds the network's name).
    pub fn lease_dir(&self) -> PathBuf {
        self.data_dir.join("leases")
    }

    /// Where the attachments' ADD results are kept.
    pub fn results_dir(&self) -> PathBuf {
        self.data_dir.join("results")
    }

    /// The configuration list (CNI 1.0.0): `bridge` with `host-local`,
    /// `portmap`, `firewall`.
    pub fn config_list(&self) -> Value {
        let mut bridge = json!({
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": self.subnet.to_string() }]],
                "routes": [{ "dst": "0.0.0.0/0" }],
                "dataDir": self.lease_dir(),
            },
        });
        if let (Some(mtu), Some(obj)) = (self.mtu, bridge.as_object_mut()) {
            obj.insert("mtu".into(), json!(mtu));
        }
        json!({
            "cniVersion": CNI_VERSION,
            "name": self.name,
            "plugins": [
                bridge,
                { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true },
                { "type": "firewall", "backend": "iptables" },
            ],
        })
    }

    /// The configuration of `lo` (the `loopback` plugin).
    pub fn loopback_config(&self) -> Value {
        json!({ "cniVersion": CNI_VERSION, "name": format!("{}-lo", self.name), "type": "loopback" })
    }
}

/// Checks an identifier the specification restricts (network names,
/// container ids): letters, digits, `_`, `.`, `-`, starting with a letter or digit.
pub(crate) fn check_id(field: &'static str, id: &str) -> Result<()> {
    let ok = id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        && id.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(CniError::InvalidSetting {
            field,
            reason: format!(
                "{id:?} must be letters, digits, '_', '.' or '-', starting with a letter or digit"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_list_chains_bridge_portmap_firewall_with_our_lease_dir() {
        let cfg = CniConfig::new("/data/cni", "10.89.3.0/24".parse().expect("subnet"));
        cfg.validate().expect("valid");
        let list = cfg.config_list();
        assert_eq!(list["cniVersion"], "1.0.0");
        let types: Vec<&str> = list["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .filter_map(|p| p["type"].as_str())
            .collect();
        assert_eq!(types, ["bridge", "portmap", "firewall"]);
        assert_eq!(list["plugins"][0]["ipam"]["dataDir"], "/data/cni/leases");
        assert_eq!(
            list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.89.3.0/24"
        );
        assert_eq!(list["plugins"][1]["capabilities"]["portMappings"], true);
    }

    #[test]
    fn bad_names_are_refused() {
        let mut cfg = CniConfig::new("/d", "10.89.3.0/24".parse().expect("subnet"));
        cfg.bridge = "a-bridge-name-too-long".into();
        assert!(cfg
            .validate()
            .expect_err("long")
            .to_string()
            .contains("bridge"));
        cfg.bridge = "ok0".into();
        cfg.name = "../x".into();
        assert!(cfg
            .validate()
            .expect_err("path")
            .to_string()
            .contains("name"));
    }
}
