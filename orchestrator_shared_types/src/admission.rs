//! Cluster admission (SPEC §8): the join token a control plane issues, the
//! join request a node sends with it, and the member list the control plane
//! signs. Pure data and signatures; keeping the tokens and the members is the
//! control plane's (`orchestrator_admission`), following the list is every
//! node's cluster manager.
//!
//! - [`JoinToken`]: `univrs-join-1.` then base64url (no padding) of a JSON
//!   body: cluster id, the control planes (node id, gossip and API
//!   addresses), the gossip key, the role, the expiry and a 32-byte random
//!   secret. Whoever holds one can join the cluster once, until it expires,
//!   and reads the gossip key: it is a secret. The control plane keeps only
//!   [`secret_hash`] of the secret.
//! - [`JoinRequest`]: what a joiner posts, signed with its node key over the
//!   cluster id, its node id, operator, role and the hash of the secret, so
//!   the request cannot be re-pointed at another node.
//! - [`MemberList`]: the admitted members with a version that only grows,
//!   signed by a control-plane key as `"<base64 sig>.<json>"`
//!   ([`MemberList::sign`], [`MemberList::verify`]).

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{NodeId, PublicKey};

/// The gossip key under which a control plane publishes its signed
/// [`MemberList`].
pub const MEMBER_LIST_KEY: &str = "admission:members";
/// First characters of every join token; a new format gets a new number.
pub const TOKEN_PREFIX: &str = "univrs-join-1.";
/// Bytes of a token's secret.
pub const SECRET_BYTES: usize = 32;
/// The longest token accepted, in characters (a few control planes fit).
pub const MAX_TOKEN_CHARS: usize = 8 * 1024;
/// Domain of a join request's signature.
const JOIN_DOMAIN: &str = "univrs-join-request-v1";
/// Domain of a member list's signature.
const LIST_DOMAIN: &str = "univrs-member-list-v1";

/// The role a token admits a node to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum JoinRole {
    /// Runs what the control plane assigns.
    #[default]
    Worker,
    /// Another control plane (a shared store is needed to use it as one).
    ControlPlane,
}

impl JoinRole {
    /// `worker` or `control-plane`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::ControlPlane => "control-plane",
        }
    }
}

impl std::str::FromStr for JoinRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "worker" => Ok(Self::Worker),
            "control-plane" => Ok(Self::ControlPlane),
            other => Err(format!(
                "role {other:?} is neither worker nor control-plane"
            )),
        }
    }
}

/// Where a joiner reaches one control plane, and the key it pins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlPlaneRef {
    /// Its node id: the key a joiner pins as the control plane's.
    pub node_id: NodeId,
    /// Its gossip address, `host:port` (the joiner's seed).
    pub gossip_addr: String,
    /// Its API address, `host:port` (where the joiner asks to be admitted).
    pub api_addr: String,
}

/// Why a token or a join request is refused. Each names what is wrong, never
/// quoting a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// Not a token of this format.
    #[error("malformed join token: {0}")]
    Malformed(String),
    /// Past its expiry.
    #[error("the join token expired at {0}")]
    Expired(DateTime<Utc>),
    /// Already used by a node.
    #[error("the join token was already used")]
    Used,
    /// The control plane never issued it (or the secret was changed).
    #[error("unknown join token: this control plane never issued it")]
    Unknown,
    /// Issued for another cluster.
    #[error("the join token is for cluster {token}, not {cluster}")]
    WrongCluster {
        /// The token's cluster.
        token: String,
        /// This cluster.
        cluster: String,
    },
    /// The request's signature does not verify against its node id.
    #[error("the join request is not signed by the key of node {0}")]
    BadSignature(NodeId),
    /// The node asks for another role than the token admits.
    #[error("the join token admits a {token}, not a {asked}")]
    WrongRole {
        /// The token's role.
        token: &'static str,
        /// The role asked for.
        asked: &'static str,
    },
    /// The node was removed from the cluster.
    #[error("node {0} was removed from the cluster")]
    Removed(NodeId),
    /// Every node subnet of the cluster network is taken.
    #[error("the cluster network {0} has no free node subnet left: remove a member first")]
    NetworkFull(String),
}

impl AdmissionError {
    /// A stable code for the error body (`token_expired`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "token_malformed",
            Self::Expired(_) => "token_expired",
            Self::Used => "token_used",
            Self::Unknown => "token_unknown",
            Self::WrongCluster { .. } => "wrong_cluster",
            Self::BadSignature(_) => "bad_signature",
            Self::WrongRole { .. } => "wrong_role",
            Self::Removed(_) => "node_removed",
            Self::NetworkFull(_) => "network_full",
        }
    }
}

/// A join token; see the module doc. `Debug` hides the secret and the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// The cluster it joins.
    pub cluster_id: String,
    /// Its control planes: keys to pin and addresses to reach.
    pub control_planes: Vec<ControlPlaneRef>,
    /// The gossip key, standard base64 of 32 bytes (a line of the key file).
    pub gossip_key: String,
    /// The role it admits.
    pub role: JoinRole,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// base64url of [`SECRET_BYTES`] random bytes.
    pub secret: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("cluster_id", &self.cluster_id)
            .field("control_planes", &self.control_planes)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// Lowercase hex of SHA-256 of a secret as written in a token: what the
/// control plane stores in its place.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl JoinToken {
    /// The token as text.
    pub fn encode(&self) -> String {
        // A struct of strings and a date always serialises.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{TOKEN_PREFIX}{}", B64URL.encode(json))
    }

    /// Reads a token; [`AdmissionError::Malformed`] says what is wrong.
    pub fn parse(text: &str) -> Result<Self, AdmissionError> {
        let bad = |m: &str| AdmissionError::Malformed(m.to_owned());
        let text = text.trim();
        if text.len() > MAX_TOKEN_CHARS {
            return Err(bad("longer than any token"));
        }
        let body = text
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| bad("it does not start with univrs-join-1."))?;
        let json = B64URL
            .decode(body)
            .map_err(|_| bad("its body is not base64url"))?;
        let token: Self = serde_json::from_slice(&json)
            .map_err(|e| AdmissionError::Malformed(format!("its body is not a token: {e}")))?;
        let secret = B64URL
            .decode(&token.secret)
            .map_err(|_| bad("its secret is not base64url"))?;
        if secret.len() != SECRET_BYTES {
            return Err(bad("its secret is not 32 bytes"));
        }
        let key = B64
            .decode(&token.gossip_key)
            .map_err(|_| bad("its gossip key is not base64"))?;
        if key.len() != 32 {
            return Err(bad("its gossip key is not 32 bytes"));
        }
        if token.cluster_id.is_empty() {
            return Err(bad("its cluster id is empty"));
        }
        if token.control_planes.is_empty() {
            return Err(bad("it names no control plane"));
        }
        Ok(token)
    }

    /// Fails with [`AdmissionError::Expired`] once `now` is past the expiry.
    pub fn check_expiry(&self, now: DateTime<Utc>) -> Result<(), AdmissionError> {
        if now >= self.expires_at {
            return Err(AdmissionError::Expired(self.expires_at));
        }
        Ok(())
    }

    /// The hash of its secret, as stored by the control plane.
    pub fn secret_hash(&self) -> String {
        secret_hash(&self.secret)
    }

    /// A short public id (16 hex digits of the secret's hash), for logs and
    /// the member records; it reveals nothing of the secret.
    pub fn id(&self) -> String {
        token_id(&self.secret_hash())
    }
}

/// The public id of the token whose secret hashes to `hash`.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(16).collect()
}

/// A new random secret, base64url.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand_bytes(&mut bytes);
    B64URL.encode(bytes)
}

fn rand_bytes(out: &mut [u8]) {
    use rand::RngCore as _;
    rand::rngs::OsRng.fill_bytes(out);
}

/// A node's request to be admitted; see the module doc.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequest {
    /// The cluster it means to join (the token's).
    pub cluster_id: String,
    /// The token's secret, as in the token.
    pub secret: String,
    /// The joining node.
    pub node_id: NodeId,
    /// Its operator (proven by `operator_proof` when not the node's own key).
    pub operator: PublicKey,
    /// The operator's proof, when the operator is not the node itself.
    #[serde(default)]
    pub operator_proof: Option<String>,
    /// The role it asks for.
    pub role: JoinRole,
    /// Standard base64 of the node key's signature.
    pub signature: String,
}

impl JoinRequest {
    /// A request for `token`, signed with `key`.
    pub fn new(
        key: &SigningKey,
        token: &JoinToken,
        operator: PublicKey,
        operator_proof: Option<String>,
    ) -> Self {
        let mut req = Self {
            cluster_id: token.cluster_id.clone(),
            secret: token.secret.clone(),
            node_id: NodeId(key.verifying_key().to_bytes()),
            operator,
            operator_proof,
            role: token.role,
            signature: String::new(),
        };
        req.signature = B64.encode(key.sign(&req.message()).to_bytes());
        req
    }

    fn message(&self) -> Vec<u8> {
        format!(
            "{JOIN_DOMAIN}\n{}\n{}\n{}\n{}\n{}",
            self.cluster_id,
            self.node_id.to_hex(),
            self.operator.to_hex(),
            self.role.as_str(),
            secret_hash(&self.secret)
        )
        .into_bytes()
    }

    /// Checks the signature against the node id.
    pub fn verify(&self) -> Result<(), AdmissionError> {
        let bad = || AdmissionError::BadSignature(self.node_id);
        let key = VerifyingKey::from_bytes(self.node_id.as_bytes()).map_err(|_| bad())?;
        let sig: [u8; 64] = B64
            .decode(&self.signature)
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        key.verify_strict(&self.message(), &Signature::from_bytes(&sig))
            .map_err(|_| bad())
    }
}

/// One admitted node as the member list names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedMember {
    /// Its id.
    pub node_id: NodeId,
    /// What it was admitted as.
    pub role: JoinRole,
    /// Its subnet of the cluster network, handed out at admission: the
    /// overlay routes this subnet to it and to no other node (absent in
    /// clusters made before the cluster network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<crate::net::Ipv4Subnet>,
}

/// The admitted members, as a control plane signs them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberList {
    /// The cluster.
    pub cluster_id: String,
    /// Grows with every change; a node keeps the highest it verified.
    pub version: u64,
    /// When it was signed.
    pub issued_at: DateTime<Utc>,
    /// The members, control planes included.
    pub members: Vec<ListedMember>,
}

/// Why a gossiped member list is ignored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// Not `"<base64 sig>.<json>"` of a list.
    #[error("member list is malformed: {0}")]
    Malformed(String),
    /// Signed by a key that is not pinned, or the signature is wrong.
    #[error("member list is not signed by a pinned control-plane key")]
    NotPinned,
    /// A list of another cluster.
    #[error("member list is for cluster {0}")]
    WrongCluster(String),
}

impl MemberList {
    /// Whether `id` is on the list.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.members.iter().any(|m| m.node_id == *id)
    }

    /// `"<issuer hex>.<base64 sig>.<json>"`, signed by `key`.
    pub fn sign(&self, key: &SigningKey) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let issuer = NodeId(key.verifying_key().to_bytes());
        let sig = key.sign(&list_message(&issuer, &json));
        format!("{}.{}.{json}", issuer.to_hex(), B64.encode(sig.to_bytes()))
    }

    /// Reads a signed list of `cluster_id`, accepting only a signature by one
    /// of `pinned`.
    pub fn verify(value: &str, cluster_id: &str, pinned: &[NodeId]) -> Result<Self, ListError> {
        let bad = |m: &str| ListError::Malformed(m.to_owned());
        let (issuer, rest) = value.split_once('.').ok_or_else(|| bad("no issuer"))?;
        let (sig, json) = rest.split_once('.').ok_or_else(|| bad("no signature"))?;
        let issuer: NodeId = issuer.parse().map_err(|_| bad("issuer is not a node id"))?;
        if !pinned.contains(&issuer) {
            return Err(ListError::NotPinned);
        }
        let key = VerifyingKey::from_bytes(issuer.as_bytes()).map_err(|_| ListError::NotPinned)?;
        let sig: [u8; 64] = B64
            .decode(sig)
            .map_err(|_| bad("signature is not base64"))?
            .try_into()
            .map_err(|_| bad("signature is not 64 bytes"))?;
        key.verify_strict(&list_message(&issuer, json), &Signature::from_bytes(&sig))
            .map_err(|_| ListError::NotPinned)?;
        let list: Self =
            serde_json::from_str(json).map_err(|e| ListError::Malformed(e.to_string()))?;
        if list.cluster_id != cluster_id {
            return Err(ListError::WrongCluster(list.cluster_id));
        }
        Ok(list)
    }
}

fn list_message(issuer: &NodeId, json: &str) -> Vec<u8> {
    format!("{LIST_DOMAIN}\n{}\n{json}", issuer.to_hex()).into_bytes()
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
