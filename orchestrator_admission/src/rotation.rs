//! The gossip key rotation that follows a removal (SPEC §8: "gossip packets
//! are sealed with the cluster key (AEAD, rotating keyring)").
//!
//! A removed member still holds the cluster's gossip key, so the member list
//! alone does not silence it: after [`Admission::remove`](crate::Admission::remove)
//! the control plane rotates the key to the remaining members through a
//! [`GossipKeyRotation`] (the daemon's implementation calls their agents,
//! Serf-style: install the new key everywhere, make it primary everywhere,
//! drop the old one everywhere). The removed node is given nothing, so its
//! packets stop opening anywhere once the old key is dropped.
//!
//! A member that does not take the new key (unreachable, or failing) is
//! named in the [`RotationReport`] as left behind; the rotation goes on
//! without it, because keeping the old key alive for it would keep the
//! removed node in too. A member left behind is cut off from gossip until it
//! gets the current key: copy the control plane's `gossip.keys` to it and
//! send it SIGHUP (or restart it), or remove it and join it again with a new
//! token.

use async_trait::async_trait;
use orchestrator_shared_types::NodeId;

/// Rotates the cluster's gossip key to the given members (the control plane
/// itself included). Implementations must never log the key itself.
#[async_trait]
pub trait GossipKeyRotation: Send + Sync + 'static {
    /// Generates a new key, makes it the only one on this control plane and
    /// on every member of `members` it can reach, and says who was left
    /// behind. Fails only when this control plane's own keys cannot change
    /// (nothing was then sent to any member).
    async fn rotate(&self, members: &[NodeId]) -> Result<RotationReport, RotationError>;
}

/// How a rotation went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationReport {
    /// The id of the new key (8 hex digits; never the key).
    pub key_id: String,
    /// The members sealing with the new key and rid of the old one (this
    /// control plane included).
    pub rotated: Vec<NodeId>,
    /// The members that did not complete the rotation, with why.
    pub left_behind: Vec<LeftBehind>,
}

impl RotationReport {
    /// Whether every member completed the rotation.
    pub fn is_complete(&self) -> bool {
        self.left_behind.is_empty()
    }
}

/// A member that did not complete a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftBehind {
    /// The member.
    pub node_id: NodeId,
    /// What went wrong, and what it means for it.
    pub reason: String,
}

/// The control plane could not change its own gossip keys.
#[derive(Debug, thiserror::Error)]
#[error("rotating the gossip key on this control plane: {reason}")]
pub struct RotationError {
    /// Why (never quoting a key).
    pub reason: String,
}

/// What happened to the gossip key after a removal.
#[derive(Debug)]
pub enum Rotation {
    /// No rotation is configured (a control plane without sealed gossip).
    NotConfigured,
    /// Rotated; see [`RotationReport::left_behind`] for a partial rotation.
    Rotated(RotationReport),
    /// The control plane's own keys could not change: the old key stays in
    /// use everywhere, and the removed node can still gossip.
    Failed(RotationError),
}
