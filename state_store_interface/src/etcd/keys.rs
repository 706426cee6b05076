//! The key layout under the store's prefix `{p}`:
//!
//! ```text
//! {p}/nodes/{node id}                               Node (JSON)
//! {p}/workloads/{workload id}                       WorkloadDefinition (JSON)
//! {p}/workload-names/{owner}/{name}                 the workload id holding the name
//! {p}/instances/{instance id}                       WorkloadInstance (JSON)
//! {p}/instances-by-workload/{workload id}/{inst id} the same WorkloadInstance (JSON)
//! {p}/instances-by-node/{node id}/{inst id}         the same WorkloadInstance (JSON)
//! {p}/records/{hex(kind)}/{key}                     the record's text
//! {p}/election/leader/{lease id, hex}               a candidate's value (etcd's election API)
//! ```
//!
//! Ids print as fixed-width lowercase hex (node ids, owners) or hyphenated
//! lowercase UUIDs, so etcd's byte order of keys is the order of ids and a
//! range read comes out sorted as the contract wants. The index keys hold a
//! copy of the instance so that an indexed list is one range read. A record
//! kind is hex-encoded so that a kind containing `/` cannot reach into another
//! kind's keys; the key after it is raw, keeping byte order for listing. The
//! election's keys are etcd's: one per candidate, attached to its lease; the
//! oldest (lowest create revision) leads.

use orchestrator_shared_types::{InstanceId, NodeId, PublicKey, WorkloadId};

/// Builds and recognises the keys of one store.
#[derive(Clone, Debug)]
pub(super) struct Keys {
    /// `{prefix}/`: every key of the store starts with it.
    root: String,
}

/// A node, workload or instance key (the ones the change feed reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Entity {
    Node(NodeId),
    Workload(WorkloadId),
    Instance(InstanceId),
}

impl Keys {
    /// Keys under `prefix` (a trailing `/` is ignored).
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            root: format!("{}/", prefix.trim_end_matches('/')),
        }
    }

    /// `{p}/`, the range of every key of the store.
    pub(super) fn root(&self) -> &str {
        &self.root
    }

    pub(super) fn nodes(&self) -> String {
        format!("{}nodes/", self.root)
    }

    pub(super) fn node(&self, id: &NodeId) -> String {
        format!("{}nodes/{id}", self.root)
    }

    pub(super) fn workloads(&self) -> String {
        format!("{}workloads/", self.root)
    }

    pub(super) fn workload(&self, id: &WorkloadId) -> String {
        format!("{}workloads/{id}", self.root)
    }

    pub(super) fn workload_name(&self, owner: &PublicKey, name: &str) -> String {
        format!("{}workload-names/{owner}/{name}", self.root)
    }

    pub(super) fn instances(&self) -> String {
        format!("{}instances/", self.root)
    }

    pub(super) fn instance(&self, id: &InstanceId) -> String {
        format!("{}instances/{id}", self.root)
    }

    pub(super) fn instances_by_workload(&self) -> String {
        format!("{}instances-by-workload/", self.root)
    }

    pub(super) fn instances_of_workload(&self, workload: &WorkloadId) -> String {
        format!("{}instances-by-workload/{workload}/", self.root)
    }

    pub(super) fn instance_of_workload(&self, workload: &WorkloadId, id: &InstanceId) -> String {
        format!("{}instances-by-workload/{workload}/{id}", self.root)
    }

    pub(super) fn instances_on_node(&self, node: &NodeId) -> String {
        format!("{}instances-by-node/{node}/", self.root)
    }

    pub(super) fn instance_on_node(&self, node: &NodeId, id: &InstanceId) -> String {
        format!("{}instances-by-node/{node}/{id}", self.root)
    }

    /// `{p}/records/`, the range of every record of every kind.
    pub(super) fn all_records(&self) -> String {
        format!("{}records/", self.root)
    }

    pub(super) fn records(&self, kind: &str) -> String {
        format!("{}{}/", self.all_records(), hex::encode(kind))
    }

    /// The first key after every record of `kind`: `/` is followed by `0`,
    /// and no other kind's keys start with `{p}/records/{hex(kind)}/`.
    pub(super) fn after_records(&self, kind: &str) -> String {
        format!("{}{}0", self.all_records(), hex::encode(kind))
    }

    pub(super) fn record(&self, kind: &str, key: &str) -> String {
        format!("{}{key}", self.records(kind))
    }

    /// The name of the control planes' leader election; etcd keeps one key
    /// per candidate under `{name}/`.
    pub(super) fn election(&self) -> String {
        format!("{}election/leader", self.root)
    }

    /// The node, workload or instance whose primary key `key` is; `None`
    /// for indexes, records and keys outside the store.
    pub(super) fn entity(&self, key: &[u8]) -> Option<Entity> {
        let rest = std::str::from_utf8(key).ok()?.strip_prefix(&self.root)?;
        if let Some(id) = rest.strip_prefix("nodes/") {
            id.parse().ok().map(Entity::Node)
        } else if let Some(id) = rest.strip_prefix("workloads/") {
            id.parse().ok().map(Entity::Workload)
        } else if let Some(id) = rest.strip_prefix("instances/") {
            id.parse().ok().map(Entity::Instance)
        } else {
            None
        }
    }

    /// The workload and instance of a key under [`Keys::instances_by_workload`].
    pub(super) fn parse_instance_of_workload(
        &self,
        key: &[u8],
    ) -> Option<(WorkloadId, InstanceId)> {
        let rest = std::str::from_utf8(key)
            .ok()?
            .strip_prefix(&self.instances_by_workload())?;
        let (workload, id) = rest.split_once('/')?;
        Some((workload.parse().ok()?, id.parse().ok()?))
    }

    /// The kind of a key under [`Keys::all_records`]; `None` if it is not
    /// `{hex(kind)}/{key}` there.
    pub(super) fn record_kind(&self, key: &[u8]) -> Option<String> {
        let rest = key.strip_prefix(self.all_records().as_bytes())?;
        let end = rest.iter().position(|b| *b == b'/')?;
        String::from_utf8(hex::decode(&rest[..end]).ok()?).ok()
    }

    /// The record key of a key under [`Keys::records`] of `kind`.
    pub(super) fn record_key<'a>(&self, kind: &str, key: &'a [u8]) -> Option<&'a str> {
        let rest = key.strip_prefix(self.records(kind).as_bytes())?;
        std::str::from_utf8(rest).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn entity_keys_are_recognised_and_others_are_not() {
        let keys = Keys::new("/t/a/");
        let (n, w, i) = (NodeId([7; 32]), WorkloadId::new(), InstanceId::new());
        assert_eq!(keys.root(), "/t/a/", "a trailing slash is not doubled");
        assert_eq!(keys.entity(keys.node(&n).as_bytes()), Some(Entity::Node(n)));
        assert_eq!(
            keys.entity(keys.workload(&w).as_bytes()),
            Some(Entity::Workload(w))
        );
        assert_eq!(
            keys.entity(keys.instance(&i).as_bytes()),
            Some(Entity::Instance(i))
        );
        for other in [
            keys.instance_of_workload(&w, &i),
            keys.instance_on_node(&n, &i),
            keys.workload_name(&PublicKey([1; 32]), "web"),
            keys.record("nodes", "x"),
            format!("{}/694d7d1c0b3a4b05", keys.election()),
            Keys::new("/t/b").node(&n),
            Keys::new("/t/a2").node(&n),
        ] {
            assert_eq!(keys.entity(other.as_bytes()), None, "{other} is no entity");
        }
        assert_eq!(
            keys.parse_instance_of_workload(keys.instance_of_workload(&w, &i).as_bytes()),
            Some((w, i))
        );
    }

    #[test]
    fn key_order_is_id_order() {
        let keys = Keys::new("/p");
        let mut nodes: Vec<NodeId> = [[3u8; 32], [0xa0; 32], [0x0b; 32], [1; 32]]
            .into_iter()
            .map(NodeId)
            .collect();
        let by_key = |ids: &mut Vec<NodeId>| ids.sort_by_key(|id| keys.node(id));
        let mut sorted = nodes.clone();
        sorted.sort();
        by_key(&mut nodes);
        assert_eq!(nodes, sorted, "node keys sort as node ids");

        let mut ws: Vec<WorkloadId> = (0..64).map(|_| WorkloadId::new()).collect();
        let mut sorted = ws.clone();
        sorted.sort();
        ws.sort_by_key(|id| keys.workload(id));
        assert_eq!(ws, sorted, "workload keys sort as workload ids");
    }

    #[test]
    fn record_kinds_cannot_reach_into_each_other() {
        let keys = Keys::new("/p");
        // Without encoding, kind "a/b" key "c" and kind "a" key "b/c" would
        // be the same key.
        assert_ne!(keys.record("a/b", "c"), keys.record("a", "b/c"));
        assert!(
            !keys
                .record("approvals", "a")
                .starts_with(&keys.records("approval")),
            "a kind's range holds no longer kind's keys"
        );
        let key = keys.record("approval", "x/y");
        assert_eq!(keys.record_key("approval", key.as_bytes()), Some("x/y"));
        assert_eq!(keys.record_key("approva", key.as_bytes()), None);
        assert_eq!(
            keys.record_kind(key.as_bytes()).as_deref(),
            Some("approval")
        );
        assert_eq!(
            keys.record_kind(keys.node(&NodeId([1; 32])).as_bytes()),
            None
        );
        for (kind, other) in [("a", "a/b"), ("a", "ab"), ("approval", "approvals")] {
            let after = keys.after_records(kind);
            assert!(
                keys.record(kind, "\u{10ffff}") < after,
                "{kind}'s keys end before"
            );
            assert!(
                keys.record(other, "") > after,
                "{other} starts after {kind}"
            );
        }
    }
}
