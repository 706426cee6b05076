//! The control plane's gossip key rotation after a removal
//! ([`orchestrator_admission::rotation`]), Serf-style, through the members'
//! agents (`POST /agent/v1/gossip-keys`, signed by this control plane):
//!
//! 1. generate a key; install it here and on every remaining live member
//!    (each writes it to its key file before it answers);
//! 2. make it primary here and on every member that installed it;
//! 3. drop the old keys (all this control plane held) here and on every
//!    member that switched.
//!
//! Each step waits for the previous one on every member, so no member ever
//! receives a packet sealed with a key it does not hold. Each call is tried
//! [`ATTEMPTS`] times (the changes are idempotent), each try bounded by
//! [`ATTEMPT_TIMEOUT`]. A member that still fails — or is not live in gossip
//! when the rotation starts — is left behind and skipped by the later steps:
//! the rotation is not held up for it, since keeping the old key for it would
//! keep the removed node in too. Once the old key is dropped it is cut off
//! from gossip (its packets are dropped as `unknown_key`, and it drops
//! ours). It comes back when it gets the current key — copy this node's key
//! file to it and send it SIGHUP, or restart it — or when it is removed and
//! joins again with a new token. The answer to the removal, and the log,
//! name every member left behind.
//!
//! The key travels once per member, in the install call's body (never
//! logged); `use` and `remove` name keys by id.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cluster_manager::GossipKey;
use cluster_manager_interface::ClusterManager;
use node_agent::client::AgentClient;
use node_agent::gossip_keys::{GossipKeyChange, GossipKeyStore};
use orchestrator_admission::{GossipKeyRotation, LeftBehind, RotationError, RotationReport};
use orchestrator_shared_types::{Node, NodeId, NodeStatus};
use tracing::{debug, info};

use crate::key_store::KeyFileStore;

/// Tries of one change on one member.
pub const ATTEMPTS: u32 = 3;
/// Longest wait for one try.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// What a member that failed to drop an old key is left with.
const STILL_OPENS_OLD: &str =
    "seals with the new key but still opens an old one (and so the removed node's packets)";
/// Wait before the first retry (doubled before each next one).
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Rotates the key of this control plane's key file to the members.
pub struct AgentKeyRotation {
    local: KeyFileStore,
    client: AgentClient,
    cluster: Arc<dyn ClusterManager>,
}

impl AgentKeyRotation {
    /// Rotates `local` (this node's keys) and, through `client`, the keys of
    /// the members `cluster` knows.
    pub fn new(local: KeyFileStore, client: AgentClient, cluster: Arc<dyn ClusterManager>) -> Self {
        Self {
            local,
            client,
            cluster,
        }
    }

    /// Applies `change` to one member, retried; why it failed.
    async fn change_one(&self, node: &Node, change: &GossipKeyChange) -> Result<(), String> {
        let mut delay = RETRY_DELAY;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match tokio::time::timeout(
                ATTEMPT_TIMEOUT,
                self.client.change_gossip_keys(node, change),
            )
            .await
            {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer within {ATTEMPT_TIMEOUT:?}"),
            }
            debug!(node = %node.id.short(), op = change.op(), attempt, error = %last,
                "gossip key change failed");
            if attempt < ATTEMPTS {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(last)
    }

    /// Applies `change` to every member of `nodes` at once; those that took
    /// it, the others added to `left` with `what` and why.
    async fn step(
        &self,
        nodes: Vec<Node>,
        change: &GossipKeyChange,
        what: &str,
        left: &mut Vec<LeftBehind>,
    ) -> Vec<Node> {
        let results =
            futures::future::join_all(nodes.iter().map(|n| self.change_one(n, change))).await;
        let mut ok = Vec::with_capacity(nodes.len());
        for (node, result) in nodes.into_iter().zip(results) {
            match result {
                Ok(()) => ok.push(node),
                Err(e) => left.push(LeftBehind {
                    node_id: node.id,
                    reason: format!("{what}: {e}"),
                }),
            }
        }
        ok
    }

    async fn local(&self, change: &GossipKeyChange) -> Result<(), RotationError> {
        self.local
            .apply(change)
            .await
            .map(drop)
            .map_err(|e| RotationError {
                reason: format!(
                    "{} on its key file {}: {e}",
                    change.op(),
                    self.local.path().display()
                ),
            })
    }
}

#[async_trait]
impl GossipKeyRotation for AgentKeyRotation {
    async fn rotate(&self, members: &[NodeId]) -> Result<RotationReport, RotationError> {
        let me = self.client.node_id();
        // Every key this control plane holds now is dropped at the end, not
        // only the primary: the removed node may hold any of them.
        let old = self
            .local
            .current()
            .await
            .map_err(|e| RotationError {
                reason: e.to_string(),
            })?
            .keys;
        let new = GossipKey::generate();
        let key_id = new.id().to_string();
        let mut left = Vec::new();
        let mut nodes = Vec::new();
        for id in members.iter().filter(|id| **id != me) {
            match self.cluster.get_node(id).await {
                Ok(Some(n)) if n.status != NodeStatus::Down => nodes.push(n),
                Ok(Some(_)) => left.push(LeftBehind {
                    node_id: *id,
                    reason: "down in gossip: not given the new key".into(),
                }),
                Ok(None) | Err(_) => left.push(LeftBehind {
                    node_id: *id,
                    reason: "not in gossip: not given the new key".into(),
                }),
            }
        }
        info!(old = ?old, new = %key_id, members = nodes.len(), "rotating the gossip key");

        let install = GossipKeyChange::Install {
            key: new.to_base64().to_string(),
        };
        self.local(&install).await?;
        let nodes = self
            .step(
                nodes,
                &install,
                "did not install the new key (it keeps only the old one)",
                &mut left,
            )
            .await;
        let use_new = GossipKeyChange::Use {
            key_id: key_id.clone(),
        };
        self.local(&use_new).await?;
        let mut nodes = self
            .step(
                nodes,
                &use_new,
                "installed the new key but still seals with the old one",
                &mut left,
            )
            .await;
        for key_id in old {
            let drop_old = GossipKeyChange::Remove { key_id };
            self.local(&drop_old).await?;
            nodes = self
                .step(nodes, &drop_old, STILL_OPENS_OLD, &mut left)
                .await;
        }
        let mut rotated = vec![me];
        rotated.extend(nodes.iter().map(|n| n.id));
        Ok(RotationReport {
            key_id,
            rotated,
            left_behind: left,
        })
    }
}
