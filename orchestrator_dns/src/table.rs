//! The names a node's DNS server answers: workload names per owner, and
//! which owner each instance address belongs to.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};

pub use orchestrator_shared_types::net::Directory;
use orchestrator_shared_types::{
    InstanceStatus, NodeId, PublicKey, WorkloadDefinition, WorkloadId, WorkloadInstance,
};

use crate::ZONE;

/// A snapshot of the names: built whole from workloads and instances, then
/// swapped into a [`NameTable`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// The owner of each instance address (any instance holding one).
    owners: HashMap<Ipv4Addr, PublicKey>,
    /// (owner, workload name) → addresses of its Ready instances, sorted.
    names: HashMap<(PublicKey, String), Vec<Ipv4Addr>>,
    /// The owner of each workload.
    workloads: HashMap<WorkloadId, PublicKey>,
    /// The owners with an instance (in any state) on each node: what a
    /// node's directory is cut down to ([`Names::to_directory_for`]).
    placed: HashMap<NodeId, HashSet<PublicKey>>,
}

impl Names {
    /// The names `workloads` and `instances` give: every instance with an
    /// IPv4 address counts as its owner's client; only Running and Ready
    /// instances are answers.
    pub fn build(workloads: &[WorkloadDefinition], instances: &[WorkloadInstance]) -> Self {
        let by_id: HashMap<WorkloadId, &WorkloadDefinition> =
            workloads.iter().map(|w| (w.id, w)).collect();
        let mut names: HashMap<(PublicKey, String), Vec<Ipv4Addr>> = HashMap::new();
        let mut owners = HashMap::new();
        for w in workloads {
            names.entry((w.owner, w.spec.name.clone())).or_default();
        }
        let owner_of = workloads.iter().map(|w| (w.id, w.owner)).collect();
        let mut placed: HashMap<NodeId, HashSet<PublicKey>> = HashMap::new();
        for i in instances {
            let Some(w) = by_id.get(&i.workload_id) else {
                continue;
            };
            placed.entry(i.node_id).or_default().insert(w.owner);
            let Some(addr) = i
                .address
                .as_deref()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            owners.insert(addr, w.owner);
            if i.status == InstanceStatus::Running && i.ready {
                names
                    .entry((w.owner, w.spec.name.clone()))
                    .or_default()
                    .push(addr);
            }
        }
        for addrs in names.values_mut() {
            addrs.sort_unstable();
            addrs.dedup();
        }
        Self {
            owners,
            names,
            workloads: owner_of,
            placed,
        }
    }
}

impl Names {
    /// These names as a [`Directory`] of `version` (in a stable order).
    pub fn to_directory(&self, version: u64) -> Directory {
        let mut owners: Vec<_> = self.owners.iter().map(|(a, o)| (*a, *o)).collect();
        owners.sort_unstable();
        let mut names: Vec<_> = self
            .names
            .iter()
            .map(|((o, n), a)| (*o, n.clone(), a.clone()))
            .collect();
        names.sort_unstable();
        let mut workloads: Vec<_> = self.workloads.iter().map(|(w, o)| (*w, *o)).collect();
        workloads.sort_unstable_by_key(|(w, _)| w.to_string());
        Directory {
            version,
            owners,
            names,
            workloads,
        }
    }

    /// The part of these names `node` needs, as a [`Directory`] of
    /// `version`: only the owners with an instance on it (their names for
    /// its DNS server, their addresses for its owner isolation), so that a
    /// node learns nothing of the workloads of owners it runs nothing for.
    pub fn to_directory_for(&self, node: &NodeId, version: u64) -> Directory {
        let empty = HashSet::new();
        let here = self.placed.get(node).unwrap_or(&empty);
        let mut d = self.to_directory(version);
        d.owners.retain(|(_, o)| here.contains(o));
        d.names.retain(|(o, _, _)| here.contains(o));
        d.workloads.retain(|(_, o)| here.contains(o));
        d
    }

    /// The names a [`Directory`] holds.
    pub fn from_directory(d: Directory) -> Self {
        let mut names: HashMap<(PublicKey, String), Vec<Ipv4Addr>> = HashMap::new();
        for (owner, name, mut addrs) in d.names {
            addrs.sort_unstable();
            addrs.dedup();
            names.insert((owner, name), addrs);
        }
        Self {
            owners: d.owners.into_iter().collect(),
            names,
            workloads: d.workloads.into_iter().collect(),
            placed: HashMap::new(),
        }
    }

    /// Every instance address with its owner.
    pub fn owners(&self) -> impl Iterator<Item = (Ipv4Addr, PublicKey)> + '_ {
        self.owners.iter().map(|(a, o)| (*a, *o))
    }
}

/// What a query for a name gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A cluster name with these addresses.
    Addresses(Vec<Ipv4Addr>),
    /// A cluster name that does not exist for this client (no such
    /// workload, another owner's, no Ready instance, or a client that is
    /// not an instance).
    NoSuchName,
    /// Not a cluster name: the upstream resolvers answer it.
    Upstream,
}

/// The workload name `query` asks for, if it is a cluster name: one label
/// (`web`) or one label in [`ZONE`] (`web.univrs.internal`); a trailing dot
/// and case do not matter. `Some(None)`: in the zone but no workload name
/// (the zone itself, or more labels).
fn cluster_name(query: &str) -> Option<Option<String>> {
    let q = query.trim_end_matches('.').to_ascii_lowercase();
    if q.is_empty() {
        return None;
    }
    if !q.contains('.') {
        return Some(Some(q));
    }
    if q == ZONE {
        return Some(None);
    }
    let label = q.strip_suffix(ZONE)?.strip_suffix('.')?;
    Some((!label.contains('.') && !label.is_empty()).then(|| label.to_owned()))
}

/// The names a DNS server answers now, swapped whole when they change,
/// with a version that grows at each change (and can be waited on).
#[derive(Debug)]
pub struct NameTable {
    names: RwLock<Arc<Names>>,
    version: tokio::sync::watch::Sender<u64>,
}

impl Default for NameTable {
    fn default() -> Self {
        Self {
            names: RwLock::default(),
            version: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl NameTable {
    /// An empty table: every cluster name is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the names; the version grows if they differ.
    pub fn replace(&self, names: Names) {
        let changed = *self.snapshot() != names;
        let names = Arc::new(names);
        match self.names.write() {
            Ok(mut n) => *n = names,
            Err(poisoned) => *poisoned.into_inner() = names,
        }
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// The version of the names now.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Follows the version.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The names now as a [`Directory`], with their version.
    pub fn directory(&self) -> Directory {
        let version = self.version();
        self.snapshot().to_directory(version)
    }

    /// The part of the names `node` needs ([`Names::to_directory_for`]).
    pub fn directory_for(&self, node: &NodeId) -> Directory {
        let version = self.version();
        self.snapshot().to_directory_for(node, version)
    }

    /// The current names.
    pub fn snapshot(&self) -> Arc<Names> {
        match self.names.read() {
            Ok(n) => Arc::clone(&n),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The owner of the instance at `client`, as the store last said.
    pub fn owner_of(&self, client: IpAddr) -> Option<PublicKey> {
        let v4 = match client {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => v6.to_ipv4_mapped()?,
        };
        self.snapshot().owners.get(&v4).copied()
    }

    /// The owner of workload `id`.
    pub fn owner_of_workload(&self, id: &WorkloadId) -> Option<PublicKey> {
        self.snapshot().workloads.get(id).copied()
    }

    /// What `client` gets when it asks for `query`.
    pub fn answer(&self, client: IpAddr, query: &str) -> Answer {
        self.answer_for(self.owner_of(client), query)
    }

    /// What an instance of `owner` (none: not an instance) gets when it
    /// asks for `query`.
    pub fn answer_for(&self, owner: Option<PublicKey>, query: &str) -> Answer {
        let Some(name) = cluster_name(query) else {
            return Answer::Upstream;
        };
        let names = self.snapshot();
        let found = name
            .zip(owner)
            .and_then(|(name, owner)| names.names.get(&(owner, name)))
            .filter(|addrs| !addrs.is_empty());
        match found {
            Some(addrs) => Answer::Addresses(addrs.clone()),
            None => Answer::NoSuchName,
        }
    }

    /// Whether `query` is a cluster name (answered from the table, never
    /// sent upstream).
    pub fn is_cluster_name(query: &str) -> bool {
        cluster_name(query).is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use orchestrator_shared_types::{NodeId, WorkloadSpec};

    fn workload(owner: u8, name: &str) -> WorkloadDefinition {
        let spec = WorkloadSpec::from_yaml(&format!(
            "name: {name}\ncontainers: [{{name: main, image: x}}]\n"
        ))
        .unwrap();
        WorkloadDefinition::new(PublicKey([owner; 32]), spec)
    }

    fn instance(w: &WorkloadDefinition, addr: &str, ready: bool) -> WorkloadInstance {
        let mut i = WorkloadInstance::pending(w.id, w.generation, NodeId([9; 32]));
        i.transition(InstanceStatus::Running, None, chrono::Utc::now())
            .expect("pending to running");
        i.ready = ready;
        i.address = Some(addr.to_owned());
        i
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_directory_carries_the_same_answers_to_another_node() {
        let web = workload(1, "web");
        let other = workload(2, "web");
        let names = Names::build(
            &[web.clone(), other.clone()],
            &[
                instance(&web, "10.88.0.2", true),
                instance(&web, "10.88.1.3", true),
                instance(&other, "10.88.1.4", true),
            ],
        );
        let table = NameTable::new();
        assert_eq!(table.version(), 0);
        table.replace(names.clone());
        assert_eq!(table.version(), 1);
        // The same names again change nothing.
        table.replace(names);
        assert_eq!(table.version(), 1);
        let wire = serde_json::to_string(&table.directory()).unwrap();
        let there = NameTable::new();
        there.replace(Names::from_directory(serde_json::from_str(&wire).unwrap()));
        for (client, query) in [
            ("10.88.1.3", "web"),
            ("10.88.1.4", "web"),
            ("10.88.0.2", "db"),
            ("10.88.9.9", "web"),
        ] {
            assert_eq!(
                there.answer(ip(client), query),
                table.answer(ip(client), query),
                "{client} asking {query}"
            );
        }
        // The names went whole; the control plane's placements stay there.
        let mut here = table.snapshot().as_ref().clone();
        here.placed.clear();
        assert_eq!(*there.snapshot(), here);
    }

    #[test]
    fn a_node_gets_only_the_owners_it_runs_something_for() {
        let mine = workload(1, "web");
        let theirs = workload(2, "db");
        let mut on_a = instance(&mine, "10.88.1.2", true);
        on_a.node_id = NodeId([1; 32]);
        let mut on_b = instance(&theirs, "10.88.2.2", true);
        on_b.node_id = NodeId([2; 32]);
        let names = Names::build(&[mine.clone(), theirs.clone()], &[on_a, on_b]);
        let a = names.to_directory_for(&NodeId([1; 32]), 7);
        assert_eq!(a.version, 7);
        assert!(a.owners.iter().all(|(_, o)| *o == mine.owner), "{a:?}");
        assert!(a.names.iter().all(|(o, _, _)| *o == mine.owner), "{a:?}");
        assert!(a.workloads.iter().all(|(_, o)| *o == mine.owner), "{a:?}");
        assert_eq!(a.names.len(), 1);
        // A node that runs nothing learns nothing.
        let c = names.to_directory_for(&NodeId([3; 32]), 7);
        assert!(c.owners.is_empty() && c.names.is_empty() && c.workloads.is_empty());
    }

    #[test]
    fn a_name_answers_its_owners_ready_instances_only() {
        let web = workload(1, "web");
        let client = workload(1, "client");
        let theirs = workload(2, "db");
        let instances = [
            instance(&web, "10.88.0.3", true),
            instance(&web, "10.88.0.2", true),
            instance(&web, "10.88.0.4", false),
            instance(&client, "10.88.0.5", true),
            instance(&theirs, "10.88.0.6", true),
        ];
        let table = NameTable::new();
        table.replace(Names::build(&[web, client, theirs], &instances));
        let both = Answer::Addresses(vec![
            "10.88.0.2".parse().unwrap(),
            "10.88.0.3".parse().unwrap(),
        ]);
        assert_eq!(table.answer(ip("10.88.0.5"), "web"), both);
        assert_eq!(table.answer(ip("10.88.0.5"), "WEB.univrs.internal."), both);
        assert_eq!(
            table.answer(ip("10.88.0.5"), "db"),
            Answer::NoSuchName,
            "another owner's workload"
        );
        assert_eq!(
            table.answer(ip("10.88.0.6"), "web"),
            Answer::NoSuchName,
            "asked by another owner's instance"
        );
        assert_eq!(
            table.answer(ip("10.88.0.99"), "web"),
            Answer::NoSuchName,
            "not an instance"
        );
        assert_eq!(table.answer(ip("10.88.0.5"), "nope"), Answer::NoSuchName);
        assert_eq!(
            table.answer(ip("10.88.0.5"), "a.b.univrs.internal"),
            Answer::NoSuchName
        );
        assert_eq!(
            table.answer(ip("10.88.0.5"), "example.com"),
            Answer::Upstream
        );
        assert_eq!(
            table.answer(ip("10.88.0.5"), "web.univrs.internal.example.com"),
            Answer::Upstream
        );
    }

    #[test]
    fn a_workload_without_a_ready_instance_does_not_resolve() {
        let web = workload(1, "web");
        let client = workload(1, "client");
        let instances = [
            instance(&web, "10.88.0.2", false),
            instance(&client, "10.88.0.5", true),
        ];
        let table = NameTable::new();
        table.replace(Names::build(&[web, client], &instances));
        assert_eq!(table.answer(ip("10.88.0.5"), "web"), Answer::NoSuchName);
    }
}
