//! What admission keeps in the store, as JSON records:
//!
//! - `join-token`, keyed by the SHA-256 (hex) of the token's secret: a
//!   [`TokenRecord`] (role, expiry, who issued it, who used it). The secret
//!   itself is never stored, so reading the state does not yield a token.
//! - `cluster-member`, keyed by node id (hex): a [`Member`].
//! - `cluster`/`member-list-version`: the list's version, which only grows,
//!   so nodes can tell a newer list from a replayed older one across
//!   restarts of the control plane.
//! - `control-plane`, keyed by node id (hex): a [`ControlPlaneRef`] that a
//!   control plane sharing an etcd store wrote about itself at its start.
//!   Join tokens name every one of them (after the issuer), so a worker
//!   pins them all.
//! - `subnet-claim`, keyed by a node subnet's network address: the node id
//!   (hex) that claimed it. Control planes sharing an etcd store claim their
//!   own subnets this way, each with a create-if-absent write, before any of
//!   them leads; admission hands none of those out.

use chrono::{DateTime, Utc};
use orchestrator_shared_types::admission::{ControlPlaneRef, JoinRole};
use orchestrator_shared_types::net::Ipv4Subnet;
use orchestrator_shared_types::{NodeId, PublicKey};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use state_store_interface::StateStore;

use crate::{Error, Result};

/// Record kind of issued tokens.
pub const TOKEN_KIND: &str = "join-token";
/// Record kind of members.
pub const MEMBER_KIND: &str = "cluster-member";
const CLUSTER_KIND: &str = "cluster";
const VERSION_KEY: &str = "member-list-version";
/// Record kind of the control planes that registered themselves.
pub const CONTROL_PLANE_KIND: &str = "control-plane";
/// Record kind of the subnets control planes claimed for themselves.
pub const SUBNET_CLAIM_KIND: &str = "subnet-claim";
/// The token id recorded for the control plane that created the cluster.
pub const CREATOR_TOKEN: &str = "created-the-cluster";

/// An issued token, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Its public id (16 hex digits of the secret's hash).
    pub id: String,
    /// The role it admits.
    pub role: JoinRole,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The key that asked for it (an admin, or the control plane's own).
    pub issued_by: PublicKey,
    /// The node it admitted, once used.
    pub used_by: Option<NodeId>,
    /// When it was used.
    pub used_at: Option<DateTime<Utc>>,
}

/// An admitted node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its id.
    pub node_id: NodeId,
    /// Its operator.
    pub operator: PublicKey,
    /// What it was admitted as.
    pub role: JoinRole,
    /// When.
    pub admitted_at: DateTime<Utc>,
    /// The id of the token it used.
    pub token_id: String,
    /// Its subnet of the cluster network (absent in clusters made before
    /// the cluster network, or when the range was full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Ipv4Subnet>,
}

async fn get<T: DeserializeOwned>(
    store: &dyn StateStore,
    kind: &'static str,
    key: &str,
) -> Result<Option<T>> {
    let Some(text) = store.get_record(kind, key).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| Error::Record {
            kind,
            key: key.to_owned(),
            source,
        })
}

async fn put<T: Serialize>(
    store: &dyn StateStore,
    kind: &'static str,
    key: &str,
    value: &T,
) -> Result<()> {
    let text = serde_json::to_string(value).map_err(|source| Error::Record {
        kind,
        key: key.to_owned(),
        source,
    })?;
    store.put_record(kind, key, &text).await?;
    Ok(())
}

/// The token whose secret hashes to `hash`.
pub async fn get_token(store: &dyn StateStore, hash: &str) -> Result<Option<TokenRecord>> {
    get(store, TOKEN_KIND, hash).await
}

/// Writes the token whose secret hashes to `hash`.
pub async fn put_token(store: &dyn StateStore, hash: &str, token: &TokenRecord) -> Result<()> {
    put(store, TOKEN_KIND, hash, token).await
}

/// A member.
pub async fn get_member(store: &dyn StateStore, id: &NodeId) -> Result<Option<Member>> {
    get(store, MEMBER_KIND, &id.to_hex()).await
}

/// Writes a member.
pub async fn put_member(store: &dyn StateStore, member: &Member) -> Result<()> {
    put(store, MEMBER_KIND, &member.node_id.to_hex(), member).await
}

/// Deletes a member; whether it was one.
pub async fn delete_member(store: &dyn StateStore, id: &NodeId) -> Result<bool> {
    Ok(store.delete_record(MEMBER_KIND, &id.to_hex()).await?)
}

/// Every member.
pub async fn list_members(store: &dyn StateStore) -> Result<Vec<Member>> {
    let mut out = Vec::new();
    for (key, text) in store.list_records(MEMBER_KIND).await? {
        let member = serde_json::from_str(&text).map_err(|source| Error::Record {
            kind: MEMBER_KIND,
            key,
            source,
        })?;
        out.push(member);
    }
    Ok(out)
}

/// The subnets claimed by control planes, with who claimed each; a claim
/// that is not a subnet and a node id is an error (the store is not ours).
pub async fn claimed_subnets(store: &dyn StateStore) -> Result<Vec<(Ipv4Subnet, NodeId)>> {
    let mut out = Vec::new();
    for (key, text) in store.list_records(SUBNET_CLAIM_KIND).await? {
        let subnet = format!(
            "{key}/{}",
            orchestrator_shared_types::net::NODE_SUBNET_PREFIX
        )
        .parse::<Ipv4Subnet>()
        .ok();
        let node = text.trim().parse::<NodeId>().ok();
        match (subnet, node) {
            (Some(s), Some(n)) => out.push((s, n)),
            _ => {
                return Err(Error::Claim(format!(
                    "the subnet claim {key:?} = {text:?} is not a node subnet and a node id"
                )))
            }
        }
    }
    Ok(out)
}

/// The control planes that registered themselves, by node id; a record
/// that names another node than its key is an error (the store is not ours).
pub async fn control_planes(store: &dyn StateStore) -> Result<Vec<ControlPlaneRef>> {
    let mut out = Vec::new();
    for (key, text) in store.list_records(CONTROL_PLANE_KIND).await? {
        let cp: ControlPlaneRef = serde_json::from_str(&text).map_err(|source| Error::Record {
            kind: CONTROL_PLANE_KIND,
            key: key.clone(),
            source,
        })?;
        if cp.node_id.to_hex() != key {
            return Err(Error::Claim(format!(
                "the control plane record {key} names another node ({})",
                cp.node_id
            )));
        }
        out.push(cp);
    }
    Ok(out)
}

/// Registers the control plane `cp` (its own record; overwritten at each
/// of its starts, so a changed address is followed).
pub async fn put_control_plane(store: &dyn StateStore, cp: &ControlPlaneRef) -> Result<()> {
    put(store, CONTROL_PLANE_KIND, &cp.node_id.to_hex(), cp).await
}

/// The list's version (0 before the first change).
pub async fn version(store: &dyn StateStore) -> Result<u64> {
    Ok(get(store, CLUSTER_KIND, VERSION_KEY).await?.unwrap_or(0))
}

/// Makes the version one higher.
pub async fn bump_version(store: &dyn StateStore) -> Result<u64> {
    let next = version(store).await?.saturating_add(1);
    put(store, CLUSTER_KIND, VERSION_KEY, &next).await?;
    Ok(next)
}
