//! Ports an instance takes on its node ([`HostPort`]), which the schedulers
//! never give twice on one node (SPEC §9).
//!
//! On the host's network (the default, `univrs.io/network` absent or
//! `host`), a container listening on a port takes that port on the node, so
//! every declared `container_port` is a host port; `host_port`, when given,
//! must be the same number (the host's network cannot remap). With
//! `univrs.io/network: none` or `bridge` (an address of its own on the
//! node's CNI bridge) an instance takes none: publishing a port of a bridged
//! instance on the node comes with the port mappings.

use std::collections::BTreeSet;

use crate::workload::WorkloadSpec;

/// The workload label naming its network: `host` (the default), `none` or
/// `bridge`.
pub const NETWORK_LABEL: &str = "univrs.io/network";

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

impl WorkloadSpec {
    /// Whether instances run on the node's own network (no namespace of
    /// their own).
    pub fn on_host_network(&self) -> bool {
        self.labels
            .get(NETWORK_LABEL)
            .is_none_or(|mode| mode == "host")
    }

    /// The ports one instance takes on its node, sorted, each once. Ports out
    /// of range (refused by validation) are left out.
    pub fn host_ports(&self) -> Vec<HostPort> {
        if !self.on_host_network() {
            return Vec::new();
        }
        let ports: BTreeSet<HostPort> = self
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .filter_map(|p| {
                let port = u16::try_from(p.host_port.unwrap_or(p.container_port)).ok()?;
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
    let host = spec.on_host_network();
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
            let port = p.host_port.unwrap_or(p.container_port);
            if host && !taken.insert((port, p.protocol.as_str())) {
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
            "name: web\ncontainers:\n- {name: a, image: x, ports: [{container_port: 80}, \
             {container_port: 53, protocol: UDP}]}\n- {name: b, image: x, ports: \
             [{container_port: 8080, host_port: 8080}]}\n",
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
    fn remapping_reusing_or_out_of_range_host_ports_are_refused() {
        assert_eq!(
            problems(
                "name: w\ncontainers: [{name: a, image: x, ports: [{container_port: 80, \
                 host_port: 8080}]}]\n"
            ),
            ["containers[0].ports[0].host_port"],
            "the host's network cannot remap"
        );
        assert_eq!(
            problems(
                "name: w\ncontainers:\n- {name: a, image: x, ports: [{container_port: 80}]}\n\
                 - {name: b, image: x, ports: [{container_port: 80}]}\n"
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
