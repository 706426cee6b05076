//! Operator claims in gossiped records: a peer claiming a foreign operator
//! without a valid proof is listed as run by its own key; with the
//! operator's proof it keeps the operator it claims. A node's own record is
//! never rewritten.

#![allow(clippy::unwrap_used)]

mod gossip_common;

use cluster_manager::ChitchatClusterManager;
use cluster_manager_interface::ClusterManager;
use gossip_common::*;
use orchestrator_shared_types::operator::{prove_operator, OPERATOR_PROOF_LABEL};
use orchestrator_shared_types::{NodeStatus, PublicKey};

/// Starts node `seed` on `port`, seeded on `seeds`, with `edit` applied to its record.
async fn start_with(
    seed: u8,
    port: u16,
    seeds: &[u16],
    edit: impl FnOnce(&mut orchestrator_shared_types::Node),
) -> ChitchatClusterManager {
    let k = key(seed);
    let mut node = node_of(&k, seed);
    edit(&mut node);
    ChitchatClusterManager::start(config(port, seeds, GENERATION), k, node)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_proven_operator_claims_survive_gossip() {
    let operator = key(40);
    let operator_key = PublicKey(operator.verifying_key().to_bytes());
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let (two, three, four) = (id_of(&key(2)), id_of(&key(3)), id_of(&key(4)));

    let n1 = start(1, ports[0], &[], GENERATION).await;
    // Node 2 claims the operator without a proof.
    let n2 = start_with(2, ports[1], &[ports[0]], |n| n.operator = operator_key).await;
    // Node 3 claims it with the operator's proof for node 3.
    let n3 = start_with(3, ports[2], &[ports[0]], |n| {
        n.operator = operator_key;
        n.labels.insert(
            OPERATOR_PROOF_LABEL.into(),
            prove_operator(&operator, &n.id),
        );
    })
    .await;
    // Node 4 claims it with node 3's proof.
    let n4 = start_with(4, ports[3], &[ports[0]], |n| {
        n.operator = operator_key;
        n.labels.insert(
            OPERATOR_PROOF_LABEL.into(),
            prove_operator(&operator, &three),
        );
    })
    .await;
    let ids = [id_of(&key(1)), two, three, four].into();
    converge(&[&n1, &n2, &n3, &n4], &ids).await;

    let listed = |id| {
        let n1 = &n1;
        async move { n1.get_node(&id).await.unwrap().unwrap() }
    };
    let seen_two = listed(two).await;
    assert_eq!(seen_two.operator, PublicKey(two.0), "unproven claim kept");
    assert_eq!(seen_two.status, NodeStatus::Ready);
    let seen_three = listed(three).await;
    assert_eq!(seen_three.operator, operator_key, "proven claim dropped");
    assert_eq!(
        seen_three.labels.get(OPERATOR_PROOF_LABEL),
        Some(&prove_operator(&operator, &three))
    );
    assert_eq!(listed(four).await.operator, PublicKey(four.0));
    // The same through list_nodes, which the scheduler and reputation read.
    for n in n1.list_nodes().await.unwrap() {
        let want = if n.id == three {
            operator_key
        } else {
            PublicKey(n.id.0)
        };
        assert_eq!(n.operator, want, "operator of {:?}", n.id);
    }
    // Every node sees the same; a node's own record stays as given.
    assert_eq!(
        n3.get_node(&two).await.unwrap().unwrap().operator,
        PublicKey(two.0)
    );
    assert_eq!(
        n2.get_node(&three).await.unwrap().unwrap().operator,
        operator_key
    );
    assert_eq!(n2.local_node().await.unwrap().operator, operator_key);
}
