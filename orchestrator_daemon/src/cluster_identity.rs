//! The cluster identity a node keeps in its data directory: `cluster.json`
//! (the cluster id and the control-plane keys it pins) and `gossip.keys`
//! (the gossip key file's default place, mode 0600).
//!
//! - A control plane without `--cluster-id` and without `--join` creates the
//!   cluster at its first start: a random cluster id and a gossip key; later
//!   starts reuse them, and it pins its own key.
//! - A node started with `--join TOKEN` asks the token's control plane to
//!   admit it (a join request signed with its node key), then records the
//!   token's cluster id and control-plane keys and writes the gossip key. A
//!   later start finds them and does not ask again, so the token (used once)
//!   may stay in its configuration.
//! - A node with an explicit `--cluster-id` and no token keeps the behaviour
//!   before admission (no identity, no member list), with a warning that the
//!   id is public.
//! - A worker with neither is refused (already at configuration: `--seed`
//!   alone is not a way in).

use orchestrator_shared_types::error::chain;
use orchestrator_shared_types::private_fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cluster_manager::GossipKey;
use ed25519_dalek::SigningKey;
use orchestrator_api::JoinAdmitted;
use orchestrator_shared_types::admission::{JoinRequest, JoinToken};
use orchestrator_shared_types::net::Ipv4Subnet;
use orchestrator_shared_types::{NodeId, PublicKey};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::{ClusterSettings, Role};
use crate::error::{Error, Result};

/// File of the cluster identity in the data directory.
pub const IDENTITY_FILE: &str = "cluster.json";
/// Default gossip key file in the data directory.
pub const GOSSIP_KEY_FILE: &str = "gossip.keys";

/// What `cluster.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The cluster id.
    pub cluster_id: String,
    /// The control-plane keys this node obeys and whose member lists it follows.
    pub control_planes: Vec<NodeId>,
    /// This node's place in the cluster network (absent in identities made
    /// before it: the node then keeps `--node-subnet` and no overlay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NodeNetwork>,
}

/// The cluster network's range and this node's subnet of it, handed out by
/// the control plane at admission (or taken by the control plane that
/// created the cluster: the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeNetwork {
    /// The cluster's range.
    pub cidr: Ipv4Subnet,
    /// This node's subnet.
    pub subnet: Ipv4Subnet,
}

impl NodeNetwork {
    /// The network of an admission answer: both present, the subnet a node
    /// subnet inside the range. A control plane that gave neither (one made
    /// before the cluster network) gives none; anything else is refused.
    fn from_admission(cidr: Option<&str>, subnet: Option<&str>) -> Result<Option<Self>> {
        let (cidr, subnet) = match (cidr, subnet) {
            (None, None) => return Ok(None),
            (Some(c), Some(s)) => (c, s),
            _ => {
                return Err(Error::Join(
                    "the admission names a cluster network without a subnet for this node, \
                     or the other way round"
                        .into(),
                ))
            }
        };
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Error::Join(format!("the admission's {what} is not one: {e}"))
        };
        let cidr: Ipv4Subnet = cidr.parse().map_err(|e| bad("cluster range", &e))?;
        let subnet: Ipv4Subnet = subnet.parse().map_err(|e| bad("subnet", &e))?;
        if subnet.prefix != orchestrator_shared_types::net::NODE_SUBNET_PREFIX
            || !cidr.covers(&subnet)
        {
            return Err(Error::Join(format!(
                "the admission hands this node subnet {subnet}, which is not a /{} of the \
                 cluster network {cidr}",
                orchestrator_shared_types::net::NODE_SUBNET_PREFIX
            )));
        }
        Ok(Some(Self { cidr, subnet }))
    }
}

/// The default gossip key file of `data_dir`.
pub fn default_key_file(data_dir: &Path) -> PathBuf {
    data_dir.join(GOSSIP_KEY_FILE)
}

/// Reads `cluster.json` of `data_dir`, if there is one.
pub fn load(data_dir: &Path) -> Result<Option<Identity>> {
    let path = data_dir.join(IDENTITY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::ClusterIdentity(format!(
                "reading {}: {e}",
                path.display()
            )))
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::ClusterIdentity(format!("{} is not a cluster identity: {e}", path.display()))
    })
}

fn save(data_dir: &Path, identity: &Identity) -> Result<()> {
    let path = data_dir.join(IDENTITY_FILE);
    let text = serde_json::to_string_pretty(identity)
        .map_err(|e| Error::ClusterIdentity(format!("encoding the cluster identity: {e}")))?;
    write_private(&path, text.as_bytes())
}

/// Writes `bytes` as the file `path`, mode 0600, atomically and durably
/// ([`private_fs::write_atomic`]).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    private_fs::write_atomic(path, bytes).map_err(|e| Error::ClusterIdentity(chain(&e)))
}

/// Writes `key` as the key file `path` unless it exists; an existing file
/// must already hold it.
fn ensure_key_file(path: &Path, key: &GossipKey) -> Result<()> {
    if path.exists() {
        let keys = crate::gossip_keys::load(path).map_err(|e| Error::ClusterIdentity(chain(&e)))?;
        if !keys.iter().any(|k| k.id() == key.id()) {
            return Err(Error::ClusterIdentity(format!(
                "the gossip key file {} lacks the cluster's key {}: remove it or add the key",
                path.display(),
                key.id()
            )));
        }
        return Ok(());
    }
    let mut line = key.to_base64();
    line.push('\n');
    write_private(path, line.as_bytes())
}

/// What the daemon runs with once the identity is settled.
#[derive(Clone, Debug, Default)]
pub struct Settled {
    /// The pinned control-plane keys; empty without an identity (legacy).
    pub control_planes: Vec<NodeId>,
    /// Whether this node keeps the member list (a control plane that
    /// created its cluster).
    pub admission: bool,
    /// Its place in the cluster network, if the cluster has one.
    pub network: Option<NodeNetwork>,
}

/// A random cluster id: `c-` and 16 hex digits.
fn new_cluster_id() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("c-{}", hex::encode(b))
}

/// Settles the identity of a cluster node: creates, reuses or joins (see
/// the module doc), and points `cs` at its cluster id and key file.
pub async fn settle(
    cs: &mut ClusterSettings,
    data_dir: &Path,
    key: &SigningKey,
    operator: Option<(PublicKey, Option<String>)>,
) -> Result<Settled> {
    let me = NodeId(key.verifying_key().to_bytes());
    if cs.cluster_id_explicit {
        warn!(cluster_id = %cs.gossip.cluster_id,
            "the cluster id was set with --cluster-id: it is public and admits nobody by itself; \
             nodes join without tokens and no member list is kept");
        return Ok(Settled::default());
    }
    let existing = load(data_dir)?;
    let identity = match (&cs.join, existing) {
        (Some(token), Some(id)) if id.cluster_id == token.cluster_id => {
            info!(cluster_id = %id.cluster_id, "already joined this cluster; the token is not used again");
            id
        }
        (Some(token), _) => {
            let key_file = cs
                .gossip_key_file
                .clone()
                .unwrap_or_else(|| default_key_file(data_dir));
            let id = join(token, data_dir, &key_file, key, operator).await?;
            if cs.gossip_key_file.is_some() {
                // Read at resolution, before the key was written.
                let ring = crate::gossip_keys::keyring(&key_file)
                    .map_err(|e| Error::ClusterIdentity(chain(&e)))?;
                cs.gossip.keyring = Some(Arc::new(ring));
            }
            info!(cluster_id = %id.cluster_id, control_planes = id.control_planes.len(),
                "joined the cluster");
            id
        }
        (None, Some(id)) => id,
        (None, None) if cs.role == Role::ControlPlane => {
            // The creator takes the range's first node subnet.
            let cidr = cs.cluster_cidr;
            let network = cidr
                .nth(orchestrator_shared_types::net::NODE_SUBNET_PREFIX, 0)
                .map(|subnet| NodeNetwork { cidr, subnet });
            let id = Identity {
                cluster_id: new_cluster_id(),
                control_planes: vec![me],
                network,
            };
            let key_file = cs
                .gossip_key_file
                .clone()
                .unwrap_or_else(|| default_key_file(data_dir));
            if !key_file.exists() {
                ensure_key_file(&key_file, &GossipKey::generate())?;
            }
            save(data_dir, &id)?;
            info!(cluster_id = %id.cluster_id, gossip_key_file = %key_file.display(),
                "created a new cluster");
            id
        }
        // Refused at resolution already (a worker needs seeds, and seeds
        // need --join or --cluster-id); kept so no path admits it.
        (None, None) => {
            return Err(Error::Config(
                crate::cluster_config::SEED_WITHOUT_JOIN.into(),
            ));
        }
    };
    cs.gossip.cluster_id = identity.cluster_id.clone();
    // Only the pinned control planes and the nodes on their signed member
    // list are members.
    cs.gossip.control_planes = identity.control_planes.clone();
    if cs.gossip_key_file.is_none() {
        let path = default_key_file(data_dir);
        if path.exists() {
            let ring = crate::gossip_keys::keyring(&path)
                .map_err(|e| Error::ClusterIdentity(chain(&e)))?;
            cs.gossip.keyring = Some(Arc::new(ring));
            cs.gossip_key_file = Some(path);
        }
    }
    Ok(Settled {
        admission: identity.control_planes.contains(&me) && cs.role == Role::ControlPlane,
        control_planes: identity.control_planes,
        network: identity.network,
    })
}

/// Asks the token's control planes to admit this node, then records the
/// identity and the gossip key.
async fn join(
    token: &JoinToken,
    data_dir: &Path,
    key_file: &Path,
    key: &SigningKey,
    operator: Option<(PublicKey, Option<String>)>,
) -> Result<Identity> {
    let (operator, proof) =
        operator.unwrap_or_else(|| (PublicKey(key.verifying_key().to_bytes()), None));
    let mut gossip_key = GossipKey::from_base64(&token.gossip_key, 1)
        .map_err(|e| Error::Join(format!("the token's gossip key: {e}")))?;
    let request = JoinRequest::new(key, token, operator, proof);
    let body = serde_json::to_vec(&request)
        .map_err(|e| Error::Join(format!("encoding the join request: {e}")))?;
    let mut last = String::from("the token names no control plane");
    let mut admitted = None;
    for cp in &token.control_planes {
        // Over TLS to the control plane the token pins, and no other: the
        // token's secret and the gossip key in the answer never cross the
        // network in clear, and a node at that address that is not this
        // control plane gets nothing. No client certificate: this node is no
        // member yet.
        let tls = peer_tls::NodeTls::anonymous_client_config(cp.node_id)
            .map_err(|e| Error::Join(format!("setting up TLS: {e}")))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(Error::HttpClient)?;
        let url = peer_tls::url(&cp.api_addr, orchestrator_api::routes::CLUSTER_JOIN);
        let answer = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match answer {
            Err(e) => last = format!("reaching the control plane at {}: {e}", cp.api_addr),
            Ok(r) if r.status().is_success() => {
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| Error::Join(format!("reading the admission: {e}")))?;
                let got: JoinAdmitted = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Join(format!("the admission is not one: {e}")))?;
                if got.cluster_id != token.cluster_id {
                    return Err(Error::Join(format!(
                        "admitted to cluster {}, not the token's {}",
                        got.cluster_id, token.cluster_id
                    )));
                }
                // The current key: the token's may have been rotated away.
                if let Some(current) = got.gossip_key.as_deref() {
                    gossip_key = GossipKey::from_base64(current, 1)
                        .map_err(|e| Error::Join(format!("the admission's gossip key: {e}")))?;
                }
                admitted = Some(NodeNetwork::from_admission(
                    got.cluster_cidr.as_deref(),
                    got.member.subnet.as_deref(),
                )?);
                break;
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let message = serde_json::from_str::<orchestrator_api::ErrorBody>(&text)
                    .map(|b| b.error.message)
                    .unwrap_or(text);
                // A refusal is final: another control plane keeps the same tokens.
                return Err(Error::Join(format!(
                    "the control plane at {} refused to admit this node ({status}): {message}",
                    cp.api_addr
                )));
            }
        }
    }
    let Some(network) = admitted else {
        return Err(Error::Join(last));
    };
    ensure_key_file(key_file, &gossip_key)?;
    let identity = Identity {
        cluster_id: token.cluster_id.clone(),
        control_planes: token.control_planes.iter().map(|c| c.node_id).collect(),
        network,
    };
    save(data_dir, &identity)?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DaemonConfig;
    use crate::settings::Settings;
    use std::os::unix::fs::PermissionsExt as _;

    fn cluster(dir: &Path, cluster_id: Option<&str>) -> ClusterSettings {
        let s = Settings {
            runtime: Some(crate::config::RuntimeKind::Mock),
            data_dir: Some(dir.to_owned()),
            gossip_addr: Some("127.0.0.1:7946".into()),
            cluster_id: cluster_id.map(str::to_owned),
            ..Settings::default()
        };
        DaemonConfig::resolve(s, Settings::default())
            .unwrap()
            .cluster
            .unwrap()
    }

    #[tokio::test]
    async fn a_control_plane_creates_its_cluster_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[1; 32]);
        let me = NodeId(key.verifying_key().to_bytes());
        let mut first = cluster(dir.path(), None);
        let settled = settle(&mut first, dir.path(), &key, None).await.unwrap();
        assert!(settled.admission);
        assert_eq!(settled.control_planes, vec![me]);
        assert!(first.gossip.cluster_id.starts_with("c-"));
        assert_eq!(first.gossip.control_planes, vec![me]);
        assert!(first.gossip.keyring.is_some(), "gossip is sealed");
        let key_file = default_key_file(dir.path());
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let key_before = std::fs::read(&key_file).unwrap();

        let mut again = cluster(dir.path(), None);
        settle(&mut again, dir.path(), &key, None).await.unwrap();
        assert_eq!(again.gossip.cluster_id, first.gossip.cluster_id);
        assert_eq!(std::fs::read(&key_file).unwrap(), key_before);
    }

    #[tokio::test]
    async fn an_explicit_cluster_id_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut cs = cluster(dir.path(), Some("prod"));
        let settled = settle(&mut cs, dir.path(), &key, None).await.unwrap();
        assert!(!settled.admission && settled.control_planes.is_empty());
        assert_eq!(cs.gossip.cluster_id, "prod");
        assert!(cs.gossip.control_planes.is_empty());
        assert!(load(dir.path()).unwrap().is_none());
        assert!(!default_key_file(dir.path()).exists());
    }
}
