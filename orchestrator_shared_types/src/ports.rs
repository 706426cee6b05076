//! Ports an instance takes on its node ([`HostPort`]), which the schedulers
//! never give twice on one node (SPEC §9).
//!
//! On the host's network (`network: host`, which a node refuses unless its
//! operator allows it), a container listening on a port takes that port on the node, so
//! every declared `container_port` is a host port; `host_port`, when given,
//! must be the same number (the host's network cannot remap). On the node's
//! bridge (the default, an address of its own) every declared
//! port is published on the node ([`PublishedPort`]): on its `host_port`
//! when the manifest fixes one — the only ports the schedulers count — or
//! else on a free port the node takes from its range. With
//! `univrs.io/network: none` an instance takes none.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::workload::WorkloadSpec;

/// The workload label naming its network: `bridge` (the default), `host` or
/// `none`. The manifest's `network` field says the same and wins; the
/// runtime is told through this label.
pub const NETWORK_LABEL: &str = "univrs.io/network";

/// The container label naming the owner of its workload (the owner's key in
/// lowercase hex): on the bridge, only instances of the same owner may
/// connect to it. The orchestrator sets it on every container, over any
/// label of the same name in the manifest.
pub const OWNER_LABEL: &str = "univrs.io/owner";

/// The DNS zone of workload names: from inside a bridged instance, `web`
/// and `web.univrs.internal` are the workload `web` of the same owner (the
/// node's DNS server answers them; `.internal` is the top-level domain
/// ICANN keeps for private use).
pub const CLUSTER_DNS_ZONE: &str = "univrs.internal";

/// The node label listing the networks a node offers, comma-separated
/// (`bridge,none`, `bridge,host,none`): `host` only when its operator allows
/// it, `bridge` only with the CNI plugins. Schedulers place an instance only
/// on a node that offers its network; a node without the label is not
/// filtered (it enforces its own rules when it starts the instance).
pub const NODE_NETWORKS_LABEL: &str = "univrs.io/networks";

/// Whether a node with `labels` offers `mode` ([`NODE_NETWORKS_LABEL`]).
pub fn node_offers_network(
    labels: &std::collections::BTreeMap<String, String>,
    mode: NetworkMode,
) -> bool {
    labels
        .get(NODE_NETWORKS_LABEL)
        .is_none_or(|list| list.split(',').any(|w| w.trim() == mode.as_str()))
}

/// The network of a workload's instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A namespace of its own on the node's bridge, ports published on the node.
    Bridge,
    /// The node's own network.
    Host,
    /// A namespace with only loopback.
    None,
}

impl NetworkMode {
    /// The word the manifest and the label use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Host => "host",
            Self::None => "none",
        }
    }

    /// The mode `word` names (as [`Self::as_str`] spells it), if any.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "bridge" => Some(Self::Bridge),
            "host" => Some(Self::Host),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// One port on a node, with its protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// The port number, 1–65535.
    pub port: u16,
    /// UDP rather than TCP.
    pub udp: bool,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, if self.udp { "udp" } else { "tcp" })
    }
}

/// A port of an instance published on its node: connections to the node's
/// `host_port` reach the instance's `container_port`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishedPort {
    /// The port inside the instance.
    pub container_port: u16,
    /// The node's port.
    pub host_port: u16,
    /// `TCP` or `UDP`.
    pub protocol: String,
}

impl std::fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}->{}/{}",
            self.host_port,
            self.container_port,
            self.protocol.to_ascii_lowercase()
        )
    }
}

impl WorkloadSpec {
    /// The network of its instances: the `network` field, else the label
    /// [`NETWORK_LABEL`], else `bridge`. A label that names no mode (refused
    /// by validation) counts as `bridge`.
    pub fn network_mode(&self) -> NetworkMode {
        self.network
            .or_else(|| {
                self.labels
                    .get(NETWORK_LABEL)
                    .and_then(|w| NetworkMode::parse(w))
            })
            .unwrap_or(NetworkMode::Bridge)
    }

    /// Whether instances run on the node's own network (no namespace of
    /// their own).
    pub fn on_host_network(&self) -> bool {
        self.network_mode() == NetworkMode::Host
    }

    /// Whether instances are attached to the node's bridge.
    pub fn on_bridge_network(&self) -> bool {
        self.network_mode() == NetworkMode::Bridge
    }

    /// The ports one instance takes on its node whatever the node: every
    /// declared port on the host's network, the fixed `host_port`s on the
    /// bridge. Sorted, each once; ports out of range (refused by validation)
    /// are left out.
    pub fn host_ports(&self) -> Vec<HostPort> {
        let host = self.on_host_network();
        if !host && !self.on_bridge_network() {
            return Vec::new();
        }
        let ports: BTreeSet<HostPort> = self
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .filter_map(|p| {
                let fixed = if host {
                    Some(p.host_port.unwrap_or(p.container_port))
                } else {
                    p.host_port
                };
                let port = u16::try_from(fixed?).ok()?;
                (port != 0).then_some(HostPort {
                    port,
                    udp: p.protocol == "UDP",
                })
            })
            .collect();
        ports.into_iter().collect()
    }
}

/// Problems with the ports of `spec`: a `host_port` out of range, one that
/// differs from its container port on the host's network, and a port two
/// containers of one instance would both take.
pub(crate) fn check(spec: &WorkloadSpec, problems: &mut Vec<(String, String)>) {
    if let Some(word) = spec.labels.get(NETWORK_LABEL) {
        match (NetworkMode::parse(word), spec.network) {
            (None, _) => problems.push((
                format!("labels.{NETWORK_LABEL}"),
                format!("{word:?} is not a network (bridge, host or none)"),
            )),
            (Some(label), Some(field)) if label != field => problems.push((
                "network".to_owned(),
                format!(
                    "{} contradicts the label {NETWORK_LABEL}: {word} (give one of them)",
                    field.as_str()
                ),
            )),
            _ => {}
        }
    }
    let host = spec.on_host_network();
    let bridge = spec.on_bridge_network();
    let mut taken = BTreeSet::new();
    for (ci, c) in spec.containers.iter().enumerate() {
        for (pi, p) in c.ports.iter().enumerate() {
            let path = format!("containers[{ci}].ports[{pi}].host_port");
            if let Some(h) = p.host_port {
                if h == 0 || h > 65535 {
                    problems.push((path.clone(), format!("{h} is not a port (1–65535)")));
                } else if host && h != p.container_port {
                    problems.push((
                        path.clone(),
                        format!(
                            "on the host's network a container's port is the node's port: \
                             {h} cannot publish container port {} (give the same number, \
                             or leave host_port out)",
                            p.container_port
                        ),
                    ));
                }
            }
            let port = if host {
                Some(p.host_port.unwrap_or(p.container_port))
            } else {
                p.host_port.filter(|_| bridge)
            };
            if let Some(port) = port {
                if !taken.insert((port, p.protocol.as_str())) {
                    problems.push((
                        path,
                        format!(
                            "port {port}/{} is taken twice by one instance",
                            p.protocol.to_ascii_lowercase()
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> WorkloadSpec {
        crate::manifest::from_yaml(yaml).expect("the manifest parses")
    }

    fn problems(yaml: &str) -> Vec<String> {
        match spec(yaml).validate() {
            Ok(()) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| p.field).collect(),
        }
    }

    #[test]
    fn on_the_host_network_every_declared_port_is_taken_once() {
        let s = spec(
            "name: web\nnetwork: host\ncontainers:\n- {name: a, image: x, ports: \
             [{container_port: 80}, {container_port: 53, protocol: UDP}]}\n- {name: b, \
             image: x, ports: [{container_port: 8080, host_port: 8080}]}\n",
        );
        assert_eq!(s.validate(), Ok(()));
        let shown: Vec<String> = s.host_ports().iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["53/udp", "80/tcp", "8080/tcp"]);
    }

    #[test]
    fn a_workload_off_the_network_takes_no_port() {
        let s = spec(
            "name: web\nlabels: {univrs.io/network: none}\ncontainers: [{name: a, image: x, \
             ports: [{container_port: 80}]}]\n",
        );
        assert!(s.host_ports().is_empty());
    }

    #[test]
    fn on_the_bridge_only_fixed_host_ports_count_and_may_differ() {
        let s = spec(
            "name: web\nlabels: {univrs.io/network: bridge}\ncontainers: [{name: a, image: x, \
             ports: [{container_port: 80, host_port: 8080}, {container_port: 8088}]}]\n",
        );
        assert_eq!(s.validate(), Ok(()));
        let shown: Vec<String> = s.host_ports().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["8080/tcp"],
            "8088 gets a port from the node's range"
        );
        assert_eq!(
            problems(
                "name: w\nlabels: {univrs.io/network: bridge}\ncontainers:\n\
                 - {name: a, image: x, ports: [{container_port: 80, host_port: 9000}]}\n\
                 - {name: b, image: x, ports: [{container_port: 81, host_port: 9000}]}\n"
            ),
            ["containers[1].ports[0].host_port"],
            "one node port published twice by one instance"
        );
    }

    #[test]
    fn the_network_field_wins_and_a_contradicting_or_unknown_label_is_refused() {
        let s = spec(
            "name: web\nnetwork: bridge\ncontainers: [{name: a, image: x, ports: \
             [{container_port: 80, host_port: 8080}]}]\n",
        );
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.network_mode(), NetworkMode::Bridge);
        assert_eq!(s.host_ports().len(), 1);
        assert_eq!(
            spec("name: web\ncontainers: [{name: a, image: x}]\n").network_mode(),
            NetworkMode::Bridge,
            "the bridge is the default"
        );
        assert_eq!(
            problems(
                "name: w\nnetwork: none\nlabels: {univrs.io/network: bridge}\n\
                 containers: [{name: a, image: x}]\n"
            ),
            ["network"]
        );
        assert_eq!(
            problems(
                "name: w\nlabels: {univrs.io/network: bridged}\ncontainers: [{name: a, image: x}]\n"
            ),
            ["labels.univrs.io/network"]
        );
        assert!(WorkloadSpec::from_yaml("name: w\nnetwork: overlay\ncontainers: []\n").is_err());
    }

    #[test]
    fn remapping_reusing_or_out_of_range_host_ports_are_refused() {
        assert_eq!(
            problems(
                "name: w\nnetwork: host\ncontainers: [{name: a, image: x, ports: \
                 [{container_port: 80, host_port: 8080}]}]\n"
            ),
            ["containers[0].ports[0].host_port"],
            "the host's network cannot remap"
        );
        assert_eq!(
            problems(
                "name: w\nnetwork: host\ncontainers:\n- {name: a, image: x, ports: \
                 [{container_port: 80}]}\n- {name: b, image: x, ports: [{container_port: 80}]}\n"
            ),
            ["containers[1].ports[0].host_port"],
            "two containers of one instance on one port"
        );
        assert_eq!(
            problems(
                "name: w\ncontainers: [{name: a, image: x, ports: [{container_port: 80, \
                 host_port: 70000}]}]\n"
            ),
            ["containers[0].ports[0].host_port"]
        );
    }
}
