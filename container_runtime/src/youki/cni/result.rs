//! What an attachment is: the chain's ADD result, read into addresses.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CniError, Command, Result};

/// A published port (the `portMappings` capability of `portmap`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// The port on the node.
    pub host_port: u16,
    /// The port in the instance.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// One address of the attachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpConfig {
    /// The address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The gateway, if the plugin gave one.
    pub gateway: Option<IpAddr>,
    /// The interface it is on (by name), when the result says.
    pub interface: Option<String>,
}

/// An instance's attachment to the network, from the chain's ADD result.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// The addresses given to the instance (those on its interface in the
    /// namespace, when the result says which).
    pub ips: Vec<IpConfig>,
    /// The result as the last plugin returned it (kept for CHECK and DEL).
    pub raw: Value,
}

impl Attachment {
    /// The first IPv4 address, the one the instance is reached at.
    pub fn ipv4(&self) -> Option<std::net::Ipv4Addr> {
        self.ips.iter().find_map(|ip| match ip.address {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    }
}

#[derive(Deserialize)]
struct RawInterface {
    name: String,
    #[serde(default)]
    sandbox: Option<String>,
}

#[derive(Deserialize)]
struct RawIp {
    address: String,
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    interface: Option<usize>,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    interfaces: Vec<RawInterface>,
    #[serde(default)]
    ips: Vec<RawIp>,
}

/// Reads the result `plugin` returned for ADD into an [`Attachment`].
pub fn parse_result(plugin: &str, raw: Value) -> Result<Attachment> {
    let bad = |reason: String| CniError::BadResult {
        plugin: plugin.to_owned(),
        command: Command::Add,
        reason,
    };
    let parsed: RawResult =
        serde_json::from_value(raw.clone()).map_err(|e| bad(format!("{e}: {raw}")))?;
    let mut ips = Vec::new();
    for ip in parsed.ips {
        let iface = ip.interface.and_then(|i| parsed.interfaces.get(i));
        // Addresses on host-side interfaces (the bridge) are not the instance's.
        if iface.is_some_and(|i| i.sandbox.as_deref().unwrap_or("").is_empty()) {
            continue;
        }
        let (addr, prefix) = ip
            .address
            .split_once('/')
            .ok_or_else(|| bad(format!("address {:?} is not ADDRESS/PREFIX", ip.address)))?;
        ips.push(IpConfig {
            address: addr
                .parse()
                .map_err(|e| bad(format!("address {:?}: {e}", ip.address)))?,
            prefix: prefix
                .parse()
                .map_err(|e| bad(format!("prefix of {:?}: {e}", ip.address)))?,
            gateway: ip.gateway,
            interface: iface.map(|i| i.name.clone()),
        });
    }
    if ips.is_empty() {
        return Err(bad(format!("no address for the instance: {raw}")));
    }
    Ok(Attachment { ips, raw })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_instance_address_is_the_one_on_the_sandboxed_interface() {
        let raw = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "univrs0", "mac": "aa:bb:cc:dd:ee:ff"},
                {"name": "veth1", "mac": "aa:bb:cc:dd:ee:fe"},
                {"name": "eth0", "mac": "aa:bb:cc:dd:ee:fd", "sandbox": "/run/netns/x"}
            ],
            "ips": [{"interface": 2, "address": "10.89.1.2/24", "gateway": "10.89.1.1"}]
        });
        let att = parse_result("firewall", raw).expect("parses");
        assert_eq!(att.ips.len(), 1);
        assert_eq!(att.ipv4(), Some("10.89.1.2".parse().expect("ip")));
        assert_eq!(att.ips[0].prefix, 24);
        assert_eq!(att.ips[0].gateway, Some("10.89.1.1".parse().expect("ip")));
        assert_eq!(att.ips[0].interface.as_deref(), Some("eth0"));
    }

    #[test]
    fn a_result_without_addresses_or_with_a_bad_one_is_an_error_naming_the_plugin() {
        let err = parse_result("bridge", json!({"ips": []})).expect_err("empty");
        assert!(err.to_string().contains("bridge"), "{err}");
        let err = parse_result("bridge", json!({"ips": [{"address": "10.1.1.1"}]}))
            .expect_err("no prefix");
        assert!(err.to_string().contains("10.1.1.1"), "{err}");
    }

    #[test]
    fn port_mappings_serialise_as_portmap_expects() {
        let p = PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
        };
        assert_eq!(
            serde_json::to_value(&p).expect("json"),
            json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"})
        );
    }
}
