//! Many nodes, one cluster (SPEC §8): how a scheduling decision made on the
//! control plane reaches the node that must run it, and how any node answers
//! every API request.
//!
//! The design, chosen once (see also the README's "Cluster" section):
//!
//! - **One scheduler.** The daemon started with the `control-plane` role keeps
//!   the state (its SQLite database) and runs the reconciler and the
//!   scheduler; it is the only one that decides. Workers run what it assigns
//!   to them and nothing else, so a worker cut off from it never starts a
//!   duplicate.
//! - **Push.** A decision reaches a node through that node's agent endpoint
//!   ([`agent`], under `/agent/v1`): the control plane calls it through
//!   [`RoutingRuntime`], a `ContainerRuntime` that routes each call by node id
//!   (container ids carry their node, see [`routed_id`]). The agent accepts
//!   only requests signed by the key of a live control plane: on a node that
//!   joined with a token, a control-plane key it pinned (or one a pinned key
//!   added to the signed member list), whatever any record's role label
//!   says; without pinned keys (an explicit `--cluster-id`), a member whose
//!   signed gossip record says it is the control plane.
//! - **Any node answers.** A worker forwards every `/api/v1` request, with the
//!   caller's signature untouched, to the control plane, chosen the same way
//!   ([`proxy`]), so the
//!   answer is the same whichever node is asked; `/api/v1/network` is answered
//!   locally ([`network`]).
//! - **Failure.** Gossip (`cluster_manager::ChitchatClusterManager`) declares a
//!   dead worker `Down`; the reconciler replaces its instances on live nodes.
//!   When it comes back, its containers that no instance of it owns any more
//!   are removed (the reconciler's sweep, through the agent), and replicas
//!   above the desired count are removed. If the control plane dies, workers
//!   keep running what they run (static stability) and the API answers 503
//!   until it returns; moving the control plane needs the etcd store.
//! - **Terms.** With control planes on etcd, the leader's calls carry its
//!   term (etcd's revision at which it won, [`client::AgentClient::with_term`])
//!   inside their signature; an agent keeps the highest term it has seen and
//!   refuses a lower one, or none once one was seen (409 `stale_term`), so
//!   a leader that wakes up past its lease cannot start or stop anything
//!   ([`term`]). A cluster with one control plane sends no term.
//!
//! Modules: [`wire`] (the agent protocol's bodies and error codes),
//! [`client`] (signed calls to one agent), [`agent`] (its routes),
//! [`gossip_keys`] (the control plane changing a node's gossip keys),
//! [`routing`] ([`RoutingRuntime`]), [`proxy`], [`term`] (the term gate),
//! [`directory`] (the directory of names and owners a node is handed). `/api/v1/network` is a REST
//! route (`orchestrator_rest::network`).
//!
//! May depend on the runtime and cluster interfaces, the shared types and the
//! signed-HTTP layer; it takes the local runtime and membership as
//! `Arc<dyn Trait>` from the daemon and names no backend.

pub mod agent;
pub mod client;
pub mod directory;
pub mod gossip_keys;
pub mod proxy;
pub mod routing;
pub mod term;
pub mod wire;

pub use cluster_manager_interface::{find_control_plane, is_control_plane, is_control_plane_of};
use orchestrator_shared_types::{ContainerId, NodeId};

pub use routing::RoutingRuntime;

/// Whether a node is a member `cluster` lists or a pinned control plane, for
/// [`peer_tls::serve`]: a
/// node that is not (a stranger, or a member since removed) gets no
/// mutual-TLS connection and no answer on one it holds.
pub fn members(
    cluster: std::sync::Arc<dyn cluster_manager_interface::ClusterManager>,
) -> peer_tls::Members {
    std::sync::Arc::new(move |id| {
        let cluster = std::sync::Arc::clone(&cluster);
        // A pinned control plane is one from the start (its key came with
        // the join token), before its gossip record arrives.
        let pinned = cluster.pinned_control_planes().contains(&id);
        Box::pin(async move { pinned || cluster.get_node(&id).await.ok().flatten().is_some() })
    })
}

/// Separates the node from the node-local id in a routed container id.
const ID_SEPARATOR: char = ':';

/// The cluster-wide id of container `inner` on `node`: `NODEHEX:inner`.
pub fn routed_id(node: &NodeId, inner: &ContainerId) -> ContainerId {
    ContainerId(format!("{node}{ID_SEPARATOR}{}", inner.0))
}

/// Splits a routed container id into its node and node-local id.
pub fn split_routed_id(id: &ContainerId) -> Option<(NodeId, ContainerId)> {
    let (node, inner) = id.0.split_once(ID_SEPARATOR)?;
    let node = node.parse().ok()?;
    (!inner.is_empty()).then(|| (node, ContainerId(inner.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routed_ids_round_trip_and_reject_garbage() {
        let node = NodeId([9; 32]);
        let inner = ContainerId("abc:def".into());
        let id = routed_id(&node, &inner);
        assert_eq!(split_routed_id(&id), Some((node, inner)));
        assert_eq!(split_routed_id(&ContainerId("nocolon".into())), None);
        assert_eq!(split_routed_id(&ContainerId("zz:x".into())), None);
        assert_eq!(
            split_routed_id(&ContainerId(format!("{node}:"))),
            None,
            "an empty local id is not an id"
        );
    }
}
