//! Addresses of the cluster network (SPEC §9): the cluster's range
//! (`--cluster-cidr`) and the subnet each node gets from it when it joins.

use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The default range of the cluster network.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.88.0.0/16";

/// The prefix of a node's subnet: 253 instances per node.
pub const NODE_SUBNET_PREFIX: u8 = 24;

/// Why a text is not a subnet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("subnet {0}")]
pub struct SubnetError(String);

/// An IPv4 subnet such as `10.88.1.0/24` (host bits zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Subnet {
    /// The network address.
    pub addr: Ipv4Addr,
    /// The prefix length (at most 30, so that it holds a gateway and a host).
    pub prefix: u8,
}

impl Ipv4Subnet {
    fn mask(prefix: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.prefix) == u32::from(self.addr)
    }

    /// Whether `other` lies wholly inside this subnet.
    pub fn covers(&self, other: &Self) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// The first address: the bridge's (the instances' gateway and the
    /// node's DNS server).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).wrapping_add(1))
    }

    /// How many subnets of length `prefix` this one holds (none when
    /// `prefix` is shorter than its own).
    pub fn count(&self, prefix: u8) -> u32 {
        if prefix < self.prefix || prefix > 30 {
            return 0;
        }
        1u32.checked_shl(u32::from(prefix - self.prefix))
            .unwrap_or(u32::MAX)
    }

    /// Its `n`th subnet of length `prefix`, counting from zero.
    pub fn nth(&self, prefix: u8, n: u32) -> Option<Self> {
        if n >= self.count(prefix) {
            return None;
        }
        let size = 1u32.checked_shl(32 - u32::from(prefix))?;
        let addr = u32::from(self.addr).checked_add(n.checked_mul(size)?)?;
        Some(Self {
            addr: Ipv4Addr::from(addr),
            prefix,
        })
    }
}

impl FromStr for Ipv4Subnet {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Self, SubnetError> {
        let bad = SubnetError;
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| bad(format!("{s:?} is not ADDRESS/PREFIX")))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|e| bad(format!("{s:?}: address {addr:?}: {e}")))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|e| bad(format!("{s:?}: prefix {prefix:?}: {e}")))?;
        if prefix > 30 {
            return Err(bad(format!(
                "{s:?}: prefix /{prefix} leaves no room for a gateway and an instance"
            )));
        }
        let subnet = Self { addr, prefix };
        if !subnet.contains(addr) {
            return Err(bad(format!("{s:?}: address has host bits set")));
        }
        Ok(subnet)
    }
}

impl std::fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Ipv4Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The names and owners of a cluster's instances as the control plane
/// hands them to the other nodes (for their DNS servers and for keeping
/// owners apart across nodes), with the version of the control plane's
/// table they come from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// Grows with every change of the control plane's table.
    pub version: u64,
    /// Every instance address with its owner.
    pub owners: Vec<(Ipv4Addr, crate::PublicKey)>,
    /// Each owner's workload names with the addresses of their Ready
    /// instances.
    pub names: Vec<(crate::PublicKey, String, Vec<Ipv4Addr>)>,
    /// The owner of each workload.
    pub workloads: Vec<(crate::WorkloadId, crate::PublicKey)>,
}

/// The first subnet of length [`NODE_SUBNET_PREFIX`] in `cluster` that none
/// of `taken` overlaps, or none when the range is full.
pub fn free_node_subnet<'a>(
    cluster: &Ipv4Subnet,
    taken: impl IntoIterator<Item = &'a Ipv4Subnet> + Clone,
) -> Option<Ipv4Subnet> {
    (0..cluster.count(NODE_SUBNET_PREFIX))
        .filter_map(|n| cluster.nth(NODE_SUBNET_PREFIX, n))
        .find(|s| {
            !taken
                .clone()
                .into_iter()
                .any(|t| t.covers(s) || s.covers(t))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Subnet {
        s.parse().expect(s)
    }

    #[test]
    fn subnets_parse_and_bad_ones_say_why() {
        let s = net("10.89.3.0/24");
        assert_eq!(s.to_string(), "10.89.3.0/24");
        assert!(s.contains("10.89.3.77".parse().expect("ip")));
        assert!(!s.contains("10.89.4.1".parse().expect("ip")));
        for bad in [
            "10.89.3.1/24",
            "10.89.3.0",
            "10.89.3.0/31",
            "10.89.3.0/x",
            "nope/24",
        ] {
            let err = bad.parse::<Ipv4Subnet>().expect_err(bad).to_string();
            assert!(err.contains("subnet"), "{err}");
        }
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(json, "\"10.89.3.0/24\"");
        assert_eq!(serde_json::from_str::<Ipv4Subnet>(&json).expect("back"), s);
        assert!(serde_json::from_str::<Ipv4Subnet>("\"10.89.3.9/24\"").is_err());
    }

    #[test]
    fn node_subnets_are_handed_out_lowest_free_first_and_never_twice() {
        let cluster = net(DEFAULT_CLUSTER_CIDR);
        assert_eq!(cluster.count(NODE_SUBNET_PREFIX), 256);
        let none: [Ipv4Subnet; 0] = [];
        assert_eq!(free_node_subnet(&cluster, &none), Some(net("10.88.0.0/24")));
        let taken = [net("10.88.0.0/24"), net("10.88.2.0/24")];
        assert_eq!(
            free_node_subnet(&cluster, &taken),
            Some(net("10.88.1.0/24"))
        );
        // A wider subnet someone holds covers all of its /24s.
        let wide = [net("10.88.0.0/23")];
        assert_eq!(free_node_subnet(&cluster, &wide), Some(net("10.88.2.0/24")));
        // A full range has none.
        let small = net("10.88.0.0/23");
        let all = [net("10.88.0.0/24"), net("10.88.1.0/24")];
        assert_eq!(free_node_subnet(&small, &all), None);
        // A cluster range narrower than a node's subnet has none at all.
        assert_eq!(free_node_subnet(&net("10.88.0.0/26"), &none), None);
    }
}
