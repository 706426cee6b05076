//! `--mock-nodes N`: a standalone node with the mock runtime that shows N
//! nodes, itself and N−1 simulated ones of its size, on which the mock
//! runtime runs simulated instances. For demos and benchmarks (the
//! dashboard's first paint with 100 nodes): selected explicitly, refused
//! with a real runtime and in a cluster, and every simulated node says so
//! in its labels.
//!
//! Each simulated node has an Ed25519 key of its own, derived from this
//! node's id and its number (so the same data directory shows the same
//! nodes after a restart), and is its own operator, as a node started
//! without `--operator` is.

use chrono::Utc;
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::{Node, NodeId, NodeStatus, PublicKey};
use sha2::{Digest as _, Sha256};

use crate::config::RuntimeKind;
use crate::error::{Error, Result};

/// The most nodes `--mock-nodes` simulates.
pub const MAX: u32 = 1000;

/// The label every simulated node carries (`univrs.io/simulated=true`).
pub const LABEL: &str = "univrs.io/simulated";

/// Checks `--mock-nodes`: the nodes to show in all (1: none simulated).
pub fn resolve(asked: Option<u32>, runtime: RuntimeKind, clustered: bool) -> Result<u32> {
    let n = asked.unwrap_or(1);
    if n == 0 || n > MAX {
        return Err(Error::Config(format!(
            "--mock-nodes {n} is not between 1 and {MAX}"
        )));
    }
    if n > 1 && runtime != RuntimeKind::Mock {
        return Err(Error::Config(
            "--mock-nodes simulates nodes for the mock runtime only: add --runtime mock (real \
             containers need real nodes)"
                .into(),
        ));
    }
    if n > 1 && clustered {
        return Err(Error::Config(
            "--mock-nodes is for a standalone node: a cluster's nodes are its members".into(),
        ));
    }
    Ok(n)
}

/// The `n − 1` nodes simulated beside `local`, each Ready, of its size.
pub fn nodes(local: &Node, n: u32) -> Vec<Node> {
    (1..n)
        .map(|i| {
            let mut seed = Sha256::new();
            seed.update(b"univrs simulated node\0");
            seed.update(local.id.0);
            seed.update(i.to_le_bytes());
            let key = SigningKey::from_bytes(&seed.finalize().into());
            let id = key.verifying_key().to_bytes();
            let mut labels = local.labels.clone();
            labels.insert(LABEL.to_owned(), "true".to_owned());
            labels.insert("hostname".to_owned(), format!("simulated-{i}"));
            Node {
                id: NodeId(id),
                address: format!("simulated-{i}"),
                status: NodeStatus::Ready,
                unschedulable: false,
                labels,
                taints: Vec::new(),
                resources_capacity: local.resources_capacity,
                resources_allocatable: local.resources_allocatable,
                operator: PublicKey(id),
                joined_at: Utc::now(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_mock_runtime_on_a_standalone_node_simulates() {
        assert_eq!(resolve(None, RuntimeKind::Youki, true).ok(), Some(1));
        assert_eq!(resolve(Some(100), RuntimeKind::Mock, false).ok(), Some(100));
        for (n, runtime, clustered, says) in [
            (2, RuntimeKind::Youki, false, "--runtime mock"),
            (2, RuntimeKind::Mock, true, "standalone"),
            (0, RuntimeKind::Mock, false, "between 1 and 1000"),
            (MAX + 1, RuntimeKind::Mock, false, "between 1 and 1000"),
        ] {
            let e = resolve(Some(n), runtime, clustered).expect_err("refused");
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn simulated_nodes_are_distinct_stable_and_labelled() {
        let local = cluster_manager::mock::test_node(1, 4000, 8 << 30);
        let a = nodes(&local, 100);
        assert_eq!(a.len(), 99);
        let ids: std::collections::BTreeSet<_> = a.iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 99, "every node has its own id");
        assert!(!ids.contains(&local.id));
        assert!(a
            .iter()
            .all(|n| n.labels.get(LABEL).map(String::as_str) == Some("true")));
        let again: Vec<_> = nodes(&local, 100).iter().map(|n| n.id).collect();
        assert_eq!(a.iter().map(|n| n.id).collect::<Vec<_>>(), again);
    }
}
