//! Reservations: what every bound instance holds on its node.
//!
//! Keyed by [`NodeId`] and [`InstanceId`] in hash maps with [`IdHasher`], a
//! hasher that folds the key's bytes into one word: both ids are random (an
//! Ed25519 key, a UUID v4), so no SipHash is needed to spread them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use orchestrator_shared_types::{HostPort, InstanceId, NodeId, Resources};

/// A fast hasher for keys that are already random bytes (node keys, UUIDs).
///
/// Every 8-byte word of the input is folded in FxHash style (rotate, xor,
/// multiply), so ids that differ in any byte still hash apart.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// A `HashMap` keyed by ids, hashed with [`IdHasher`].
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Reserved resources per node and the reservation of every instance.
///
/// Invariant: `nodes[n]` is the sum of the resources of the instances in
/// `instances` bound to `n`; nodes with nothing reserved have no entry.
///
/// Host ports: `ports` holds every port an instance takes on its node
/// (`WorkloadSpec::host_ports`), so that no two instances take one port on
/// one node; `instance_ports` what each instance holds, to free it.
#[derive(Default, Debug)]
pub(crate) struct Ledger {
    nodes: IdMap<NodeId, Resources>,
    instances: IdMap<InstanceId, (NodeId, Resources)>,
    ports: IdMap<(NodeId, HostPort), InstanceId>,
    instance_ports: IdMap<InstanceId, Vec<HostPort>>,
}

impl Ledger {
    /// What is reserved on `node`.
    #[inline]
    pub(crate) fn reserved(&self, node: &NodeId) -> Resources {
        self.nodes.get(node).copied().unwrap_or(Resources::ZERO)
    }

    /// Whether another instance already takes one of `ports` on `node`.
    #[inline]
    pub(crate) fn ports_in_use(&self, node: &NodeId, ports: &[HostPort]) -> bool {
        !self.ports.is_empty() && ports.iter().any(|p| self.ports.contains_key(&(*node, *p)))
    }

    /// Reserves `resources` and `ports` on `node` for `instance`, moving an
    /// earlier reservation of the same instance (so binding twice counts
    /// once).
    pub(crate) fn bind(
        &mut self,
        instance: InstanceId,
        node: NodeId,
        resources: Resources,
        ports: &[HostPort],
    ) {
        self.release(instance);
        self.instances.insert(instance, (node, resources));
        let r = self.nodes.entry(node).or_insert(Resources::ZERO);
        *r = r.saturating_add(resources);
        if !ports.is_empty() {
            for p in ports {
                self.ports.insert((node, *p), instance);
            }
            self.instance_ports.insert(instance, ports.to_vec());
        }
    }

    /// Frees what `instance` reserved; unknown instances are ignored.
    pub(crate) fn release(&mut self, instance: InstanceId) {
        let Some((node, resources)) = self.instances.remove(&instance) else {
            return;
        };
        for p in self.instance_ports.remove(&instance).unwrap_or_default() {
            // Only its own: a port is never held by two instances, but a
            // stale entry must not free another's.
            if self.ports.get(&(node, p)) == Some(&instance) {
                self.ports.remove(&(node, p));
            }
        }
        if let Some(r) = self.nodes.get_mut(&node) {
            *r = r.saturating_sub(resources);
            if *r == Resources::ZERO {
                self.nodes.remove(&node);
            }
        }
    }

    /// Whether `instance` holds a reservation.
    pub(crate) fn contains(&self, instance: &InstanceId) -> bool {
        self.instances.contains_key(instance)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    fn node(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    #[test]
    fn bind_release_and_rebind_keep_sums_exact() {
        let mut l = Ledger::default();
        let (a, b) = (InstanceId::new(), InstanceId::new());
        l.bind(a, node(1), Resources::new(100, 10), &[]);
        l.bind(b, node(1), Resources::new(200, 20), &[]);
        assert_eq!(l.reserved(&node(1)), Resources::new(300, 30));
        // Re-binding the same instance elsewhere moves it.
        l.bind(a, node(2), Resources::new(100, 10), &[]);
        assert_eq!(l.reserved(&node(1)), Resources::new(200, 20));
        assert_eq!(l.reserved(&node(2)), Resources::new(100, 10));
        l.bind(a, node(2), Resources::new(100, 10), &[]);
        assert_eq!(l.reserved(&node(2)), Resources::new(100, 10));
        l.release(a);
        l.release(a);
        l.release(b);
        assert_eq!(l.reserved(&node(1)), Resources::ZERO);
        assert!(l.nodes.is_empty() && l.instances.is_empty());
    }

    #[test]
    fn a_port_is_held_once_per_node_and_freed_with_its_instance() {
        let mut l = Ledger::default();
        let web = [HostPort {
            port: 8088,
            udp: false,
        }];
        let (a, b) = (InstanceId::new(), InstanceId::new());
        l.bind(a, node(1), Resources::new(1, 1), &web);
        assert!(l.ports_in_use(&node(1), &web));
        assert!(!l.ports_in_use(&node(2), &web), "another node");
        assert!(
            !l.ports_in_use(
                &node(1),
                &[HostPort {
                    port: 8088,
                    udp: true
                }]
            ),
            "the same number over UDP"
        );
        l.bind(b, node(2), Resources::new(1, 1), &web);
        // Moving `a` frees its port on node 1.
        l.bind(a, node(3), Resources::new(1, 1), &web);
        assert!(!l.ports_in_use(&node(1), &web));
        l.release(a);
        l.release(b);
        assert!(l.ports.is_empty() && l.instance_ports.is_empty());
    }

    #[test]
    fn hasher_separates_ids_that_differ_in_a_late_byte() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let mut x = [0u8; 32];
        let h0 = build.hash_one(NodeId(x));
        x[31] = 1;
        assert_ne!(h0, build.hash_one(NodeId(x)));
    }
}
