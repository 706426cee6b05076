//! The control plane's admission service (SPEC §8): it issues join tokens,
//! admits the nodes that present one, keeps the members, and signs and
//! gossips the member list every node follows.
//!
//! - [`Admission`]: the service, over a [`StateStore`] and the control
//!   plane's node key; [`AdmissionConfig`] says what a token carries.
//! - [`records`]: what it keeps in the store (`join-token`, `cluster-member`
//!   and the list version), and why only a hash of each secret.
//! - [`rotation`]: the gossip key rotation that follows a removal
//!   ([`GossipKeyRotation`], implemented by the daemon).
//! - [`Error`]: its failures; a refused token is [`Error::Refused`] with the
//!   [`AdmissionError`] that names what is wrong.
//!
//! The signed list travels as one gossiped value, at most 32 KiB
//! (`cluster_manager_interface::MAX_GOSSIP_VALUE`): about 250 members. A
//! larger cluster needs the list split or summarised (not done yet).
//!
//! One writer: every change (issue, admit, remove) runs under one lock of
//! the service, so checking a token and marking it used is atomic — a replay,
//! or a second node with the same token, finds it used. The daemon's
//! `join-token` subcommand therefore asks the running daemon over its API
//! rather than writing the store itself. A second lock serialises
//! admissions with removals and their key rotation (network calls, so not
//! under the first lock): a node admitted while a key rotates would be given
//! a key about to be dropped.

pub mod records;
pub mod rotation;

use orchestrator_shared_types::net::Ipv4Subnet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cluster_manager_interface::{ClusterError, ClusterManager};
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::admission::{
    new_secret, AdmissionError, ControlPlaneRef, JoinRequest, JoinRole, JoinToken, ListedMember,
    MemberList,
};
use orchestrator_shared_types::operator::verify_operator_proof;
use orchestrator_shared_types::{NodeId, PublicKey};
use state_store_interface::{StateStore, StoreError};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use records::{Member, TokenRecord};
pub use rotation::{GossipKeyRotation, LeftBehind, Rotation, RotationError, RotationReport};

pub use orchestrator_shared_types::admission::MEMBER_LIST_KEY;
/// Default lifetime of a token.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Longest lifetime of a token.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the list is published again (gossiped values expire after an
/// hour, and a restarted control plane must publish again).
pub const REPUBLISH_PERIOD: Duration = Duration::from_secs(60);

/// Failures of the admission service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token or request is refused; nothing was recorded.
    #[error(transparent)]
    Refused(#[from] AdmissionError),
    /// A token lifetime outside 1 s ..= 7 days.
    #[error("token lifetime {0:?} is not between 1 second and 7 days")]
    Ttl(Duration),
    /// The store failed.
    #[error("admission state")]
    Store(#[from] StoreError),
    /// A stored record is not what this version wrote.
    #[error("admission record {kind}/{key} is unreadable")]
    Record {
        /// Its kind.
        kind: &'static str,
        /// Its key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A subnet claim in the store is not one this version wrote.
    #[error("{0}")]
    Claim(String),
    /// The signed list could not be gossiped.
    #[error("publishing the member list")]
    Publish(#[source] ClusterError),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Provides the gossip key to put in tokens (standard base64), read when a
/// token is issued so a rotated key is handed out.
pub type GossipKeySource = Arc<dyn Fn() -> String + Send + Sync>;

/// What the tokens of this cluster carry.
#[derive(Clone)]
pub struct AdmissionConfig {
    /// The cluster id.
    pub cluster_id: String,
    /// The control planes (this one first): keys to pin, addresses to reach.
    pub control_planes: Vec<ControlPlaneRef>,
    /// The gossip key handed to joiners.
    pub gossip_key: GossipKeySource,
    /// The cluster network: its range, from which every member is handed
    /// a subnet of its own at admission, and this control plane's subnet
    /// (taken when it created the cluster). None: a cluster made before the
    /// cluster network; members get no subnet.
    pub network: Option<ClusterNetwork>,
}

/// The cluster network's range and the creating control plane's subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterNetwork {
    /// `--cluster-cidr` when the cluster was created.
    pub cidr: Ipv4Subnet,
    /// The control plane's own subnet.
    pub own: Ipv4Subnet,
}

impl std::fmt::Debug for AdmissionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionConfig")
            .field("cluster_id", &self.cluster_id)
            .field("control_planes", &self.control_planes)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

/// A token just issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The token text (secret: it admits a node and carries the gossip key).
    pub token: String,
    /// Its public id.
    pub id: String,
    /// Its role.
    pub role: JoinRole,
    /// Its expiry.
    pub expires_at: DateTime<Utc>,
}

/// What [`Admission::remove`] did.
#[derive(Debug)]
pub struct Removal {
    /// Whether the node was a member (nothing else happened if not).
    pub removed: bool,
    /// The key rotation that followed; `None` when nothing was removed.
    pub rotation: Option<Rotation>,
}

/// The admission service; see the crate doc.
pub struct Admission {
    store: Arc<dyn StateStore>,
    key: SigningKey,
    cluster: Arc<dyn ClusterManager>,
    config: AdmissionConfig,
    rotation: Option<Arc<dyn GossipKeyRotation>>,
    /// Serialises every change: see the crate doc.
    lock: Mutex<()>,
    /// Serialises admissions with removals and their key rotation.
    membership: Mutex<()>,
}

impl Admission {
    /// The service of the control plane whose node key is `key`.
    pub fn new(
        store: Arc<dyn StateStore>,
        key: SigningKey,
        cluster: Arc<dyn ClusterManager>,
        config: AdmissionConfig,
    ) -> Self {
        Self {
            store,
            key,
            cluster,
            config,
            rotation: None,
            lock: Mutex::new(()),
            membership: Mutex::new(()),
        }
    }

    /// Rotates the gossip key with `rotation` after every removal.
    #[must_use]
    pub fn with_rotation(mut self, rotation: Arc<dyn GossipKeyRotation>) -> Self {
        self.rotation = Some(rotation);
        self
    }

    /// The gossip key (standard base64; a secret) that tokens issued now
    /// carry: the current primary key.
    pub fn gossip_key(&self) -> String {
        (self.config.gossip_key)()
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.config.cluster_id
    }

    /// The cluster network, if the cluster has one.
    pub fn network(&self) -> Option<ClusterNetwork> {
        self.config.network
    }

    /// This control plane's node id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.key.verifying_key().to_bytes())
    }

    /// Records this control plane as a member (once) and publishes the list.
    pub async fn start(&self) -> Result<()> {
        {
            let _guard = self.lock.lock().await;
            let me = self.node_id();
            if records::get_member(self.store.as_ref(), &me)
                .await?
                .is_none()
            {
                let member = Member {
                    node_id: me,
                    operator: PublicKey(me.0),
                    role: JoinRole::ControlPlane,
                    admitted_at: Utc::now(),
                    token_id: records::CREATOR_TOKEN.to_owned(),
                    subnet: self.config.network.map(|n| n.own),
                };
                records::put_member(self.store.as_ref(), &member).await?;
                records::bump_version(self.store.as_ref()).await?;
            }
        }
        self.publish().await
    }

    /// Issues a token for `role`, valid for `ttl`, on behalf of `issued_by`;
    /// only the hash of its secret is stored.
    pub async fn issue(
        &self,
        role: JoinRole,
        ttl: Duration,
        issued_by: PublicKey,
    ) -> Result<Issued> {
        if ttl < Duration::from_secs(1) || ttl > MAX_TOKEN_TTL {
            return Err(Error::Ttl(ttl));
        }
        let now = Utc::now();
        let expires_at = now + chrono::Duration::from_std(ttl).map_err(|_| Error::Ttl(ttl))?;
        // This control plane first, then every other one that registered
        // in the store (control planes sharing etcd).
        let mut control_planes = self.config.control_planes.clone();
        for cp in records::control_planes(self.store.as_ref()).await? {
            if !control_planes.iter().any(|c| c.node_id == cp.node_id) {
                control_planes.push(cp);
            }
        }
        let token = JoinToken {
            cluster_id: self.config.cluster_id.clone(),
            control_planes,
            gossip_key: (self.config.gossip_key)(),
            role,
            expires_at,
            secret: new_secret(),
        };
        let record = TokenRecord {
            id: token.id(),
            role,
            issued_at: now,
            expires_at,
            issued_by,
            used_by: None,
            used_at: None,
        };
        let _guard = self.lock.lock().await;
        records::put_token(self.store.as_ref(), &token.secret_hash(), &record).await?;
        info!(token = %record.id, role = role.as_str(), %expires_at, issued_by = %issued_by,
            "join token issued");
        Ok(Issued {
            token: token.encode(),
            id: record.id,
            role,
            expires_at,
        })
    }

    /// Admits the node of `req` if its token is known, unexpired and unused,
    /// marking the token used and recording the member in one step.
    pub async fn admit(&self, req: &JoinRequest) -> Result<Member> {
        self.admit_with_key(req).await.map(|(member, _)| member)
    }

    /// [`admit`](Self::admit), also giving the gossip key the new member
    /// must use (a secret): the current one, which differs from its token's
    /// when the key rotated since the token was issued.
    pub async fn admit_with_key(&self, req: &JoinRequest) -> Result<(Member, String)> {
        let _membership = self.membership.lock().await;
        let member = self.admit_locked(req).await?;
        if let Err(e) = self.publish().await {
            warn!(error = %e, "admitted, but the member list is not published yet");
        }
        Ok((member, self.gossip_key()))
    }

    async fn admit_locked(&self, req: &JoinRequest) -> Result<Member> {
        if req.cluster_id != self.config.cluster_id {
            return Err(AdmissionError::WrongCluster {
                token: req.cluster_id.clone(),
                cluster: self.config.cluster_id.clone(),
            }
            .into());
        }
        req.verify()?;
        if req.operator != PublicKey(req.node_id.0) {
            let proof = req.operator_proof.as_deref().unwrap_or_default();
            verify_operator_proof(&req.node_id, &req.operator, proof)
                .map_err(|_| AdmissionError::BadSignature(req.node_id))?;
        }
        let hash = orchestrator_shared_types::admission::secret_hash(&req.secret);
        let _guard = self.lock.lock().await;
        let mut token = records::get_token(self.store.as_ref(), &hash)
            .await?
            .ok_or(AdmissionError::Unknown)?;
        if token.used_by.is_some() {
            return Err(AdmissionError::Used.into());
        }
        let now = Utc::now();
        if now >= token.expires_at {
            return Err(AdmissionError::Expired(token.expires_at).into());
        }
        if token.role != req.role {
            return Err(AdmissionError::WrongRole {
                token: token.role.as_str(),
                asked: req.role.as_str(),
            }
            .into());
        }
        let subnet = self.free_subnet(&req.node_id).await?;
        token.used_by = Some(req.node_id);
        token.used_at = Some(now);
        // The token is marked used before the member is written: a crash in
        // between loses an admission, never lets a token admit twice.
        records::put_token(self.store.as_ref(), &hash, &token).await?;
        let member = Member {
            node_id: req.node_id,
            operator: req.operator,
            role: req.role,
            admitted_at: now,
            token_id: token.id.clone(),
            subnet,
        };
        records::put_member(self.store.as_ref(), &member).await?;
        records::bump_version(self.store.as_ref()).await?;
        info!(node = %member.node_id, token = %member.token_id, role = member.role.as_str(),
            subnet = ?member.subnet.map(|s| s.to_string()), "node admitted");
        Ok(member)
    }

    /// The subnet of the cluster network for a new member `node`: the lowest
    /// one no other member holds (nor this control plane). None without a
    /// cluster network; a full range refuses the admission.
    async fn free_subnet(&self, node: &NodeId) -> Result<Option<Ipv4Subnet>> {
        let Some(network) = self.config.network else {
            return Ok(None);
        };
        let members = records::list_members(self.store.as_ref()).await?;
        let mut taken: Vec<Ipv4Subnet> = members
            .iter()
            .filter(|m| m.node_id != *node)
            .filter_map(|m| m.subnet)
            .collect();
        taken.push(network.own);
        // Subnets other control planes on the same store took for themselves.
        taken.extend(
            records::claimed_subnets(self.store.as_ref())
                .await?
                .into_iter()
                .filter(|(_, n)| n != node)
                .map(|(s, _)| s),
        );
        orchestrator_shared_types::net::free_node_subnet(&network.cidr, &taken)
            .map(Some)
            .ok_or_else(|| AdmissionError::NetworkFull(network.cidr.to_string()).into())
    }

    /// Removes `node` from the members, publishes the shorter list, then
    /// rotates the gossip key to the remaining members (see [`rotation`]) and
    /// answers once that finished. This control plane cannot be removed.
    /// A failed or partial rotation is in the answer (and logged), not an
    /// error: the member is removed either way.
    pub async fn remove(&self, node: &NodeId) -> Result<Removal> {
        let nothing = Removal {
            removed: false,
            rotation: None,
        };
        if *node == self.node_id() {
            return Ok(nothing);
        }
        let _membership = self.membership.lock().await;
        let removed = {
            let _guard = self.lock.lock().await;
            let removed = records::delete_member(self.store.as_ref(), node).await?;
            if removed {
                records::bump_version(self.store.as_ref()).await?;
            }
            removed
        };
        if !removed {
            return Ok(nothing);
        }
        info!(node = %node, "member removed");
        self.publish().await?;
        let rotation = match &self.rotation {
            None => Rotation::NotConfigured,
            Some(r) => {
                let members: Vec<NodeId> =
                    self.members().await?.iter().map(|m| m.node_id).collect();
                match r.rotate(&members).await {
                    Ok(report) if report.is_complete() => {
                        info!(node = %node, key = %report.key_id, members = report.rotated.len(),
                            "gossip key rotated after a removal");
                        Rotation::Rotated(report)
                    }
                    Ok(report) => {
                        for lb in &report.left_behind {
                            warn!(removed = %node, member = %lb.node_id, reason = %lb.reason,
                                "gossip key rotation: member left behind");
                        }
                        warn!(node = %node, key = %report.key_id, rotated = report.rotated.len(),
                            left_behind = report.left_behind.len(),
                            "gossip key rotated after a removal, but not on every member");
                        Rotation::Rotated(report)
                    }
                    Err(e) => {
                        warn!(node = %node, error = %e,
                            "gossip key NOT rotated after a removal: the removed node can still gossip");
                        Rotation::Failed(e)
                    }
                }
            }
        };
        Ok(Removal {
            removed: true,
            rotation: Some(rotation),
        })
    }

    /// Every member, by node id.
    pub async fn members(&self) -> Result<Vec<Member>> {
        records::list_members(self.store.as_ref()).await
    }

    /// The member list's version (it grows with every change of members).
    pub async fn version(&self) -> Result<u64> {
        records::version(self.store.as_ref()).await
    }

    /// The member list as it is now, signed.
    pub async fn signed_list(&self) -> Result<String> {
        let members = self.members().await?;
        let list = MemberList {
            cluster_id: self.config.cluster_id.clone(),
            version: records::version(self.store.as_ref()).await?,
            issued_at: Utc::now(),
            members: members
                .iter()
                .map(|m| ListedMember {
                    node_id: m.node_id,
                    role: m.role,
                    subnet: m.subnet,
                })
                .collect(),
        };
        Ok(list.sign(&self.key))
    }

    /// Signs the list and gossips it under [`MEMBER_LIST_KEY`].
    pub async fn publish(&self) -> Result<()> {
        let value = self.signed_list().await?;
        self.cluster
            .publish(MEMBER_LIST_KEY, &value)
            .await
            .map_err(Error::Publish)?;
        Ok(())
    }

    /// Publishes the list again every [`REPUBLISH_PERIOD`] until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(REPUBLISH_PERIOD);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.publish().await {
                        warn!(error = %e, "publishing the member list");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
