//! Control planes on etcd with workers (`--store etcd --gossip-addr …`):
//! what they take from etcd to be one cluster, what each of them runs, and
//! what only the leader runs.
//!
//! **One identity, in etcd.** Each of these is written once, by whichever
//! control plane comes first (a create-if-absent transaction), and read by
//! the others: the cluster id (the audience of signed requests), the gossip
//! key (copied into a control plane's key file when it has none) and the
//! cluster network's range. Then each control plane, before it campaigns:
//!
//! - claims a node subnet of its own (`subnet-claim` records, written once
//!   each, from the top of the range down; admission hands subnets out from
//!   the bottom up and skips claimed ones);
//! - records itself as a member (role control plane), so the signed member
//!   list names it and the workers obey it;
//! - records itself in the registry of control planes (`control-plane`,
//!   keyed by node id: its key, gossip and API addresses). Every control
//!   plane reads the registry at its start: they pin each other's keys, seed
//!   their gossip with each other's addresses, and the leader's join tokens
//!   name all of them, so a worker pins the whole set.
//!
//! These registration writes are the only ones a control plane makes while
//! it does not lead (they are not fenced: each touches only its own keys).
//!
//! **Every control plane** gossips, serves its node agent over mutual TLS
//! (the leader runs instances on all of them) and forwards what it does not
//! answer to the leader over mutual TLS, so a join request and its answer
//! (the gossip key) never cross the network in clear.
//!
//! **Only the leader drives the nodes**: its routing runtime, directory
//! pushes and gossip key rotations call the agents with a client that
//! carries its term (the fence revision, which grows with every new leader).
//! Each agent keeps the highest term it has seen and refuses a lower one,
//! so a deposed leader that wakes up from a pause cannot start or stop
//! anything.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cluster_manager::{ChitchatClusterManager, GossipKey};
use cluster_manager_interface::ClusterManager;
use container_runtime_interface::ContainerRuntime;
use ed25519_dalek::SigningKey;
use node_agent::client::AgentClient;
use node_agent::RoutingRuntime;
use orchestrator_admission::{
    records, Admission, AdmissionConfig, ClusterNetwork, GossipKeyRotation,
};
use orchestrator_dns::NameTable;
use orchestrator_shared_types::admission::{ControlPlaneRef, JoinRole};
use orchestrator_shared_types::net::{Ipv4Subnet, NODE_SUBNET_PREFIX};
use orchestrator_shared_types::{NodeId, PublicKey};
use peer_tls::PeerClients;
use state_store_interface::{EtcdStore, StateStore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cluster_identity::{NodeNetwork, Settled};
use crate::config::ClusterSettings;
use crate::directory::DirectoryReceiver;
use crate::error::{Error, Result};
use crate::key_rotation::AgentKeyRotation;
use crate::key_store::KeyFileStore;

/// The record kind and key of the gossip key handed to control planes that
/// have none.
const GOSSIP_KEY: (&str, &str) = ("cluster", "gossip-key");
/// The record kind and key of the cluster network's range.
const CIDR: (&str, &str) = ("cluster", "cidr");
/// How often the leader looks for a changed member list to publish.
const LIST_CHECK: Duration = Duration::from_secs(1);
/// How often the leader lists the containers of other nodes.
const REMOTE_STATUS_POLL: Duration = Duration::from_secs(1);

fn store_err(e: state_store_interface::StoreError) -> Error {
    Error::Store(e)
}

fn admission_err(what: &str, e: &orchestrator_admission::Error) -> Error {
    Error::Config(format!(
        "{what}: {}",
        orchestrator_shared_types::error::chain(e)
    ))
}

/// What a control plane on etcd settled before it campaigns.
pub(super) struct Joined {
    /// The cluster settings with the identity filled in.
    pub(super) cs: ClusterSettings,
    /// For the overlay.
    pub(super) settled: Settled,
    /// Its place in the cluster network.
    pub(super) network: NodeNetwork,
    /// How the others reach it.
    pub(super) me: ControlPlaneRef,
}

/// Takes the cluster's identity from `store` and registers this control
/// plane (see the module doc).
pub(super) async fn settle(
    store: &EtcdStore,
    cs: &ClusterSettings,
    (data_dir, key): (&Path, &SigningKey),
    cluster_id: &str,
    (api_addr, advertise_api): (SocketAddr, Option<SocketAddr>),
) -> Result<Joined> {
    let me = NodeId(key.verifying_key().to_bytes());
    let mut cs = cs.clone();
    let cidr = network_range(store, &cs).await?;
    gossip_key(store, &mut cs, data_dir).await?;
    let subnet = claim_subnet(store, &cidr, me).await?;
    enroll(store, me, subnet).await?;
    let (gossip_addr, api) = crate::cluster_run::advertised(&cs, api_addr).await?;
    let me_ref = ControlPlaneRef {
        node_id: me,
        gossip_addr: gossip_addr.to_string(),
        api_addr: advertise_api.unwrap_or(api).to_string(),
    };
    records::put_control_plane(store, &me_ref)
        .await
        .map_err(|e| admission_err("registering this control plane", &e))?;
    let all = registry(store, me).await?;
    cs.gossip.cluster_id = cluster_id.to_owned();
    cs.gossip.control_planes = all.iter().map(|c| c.node_id).collect();
    for c in all.iter().filter(|c| c.node_id != me) {
        if !cs.gossip.seeds.contains(&c.gossip_addr) {
            cs.gossip.seeds.push(c.gossip_addr.clone());
        }
    }
    info!(control_planes = all.len(), %subnet, %cidr, "this control plane is registered in etcd");
    let network = NodeNetwork { cidr, subnet };
    Ok(Joined {
        settled: Settled {
            control_planes: cs.gossip.control_planes.clone(),
            admission: true,
            network: Some(network),
        },
        cs,
        network,
        me: me_ref,
    })
}

/// The registered control planes, `first` first (the one a join token
/// names first is asked first).
pub(super) async fn registry(
    store: &dyn StateStore,
    first: NodeId,
) -> Result<Vec<ControlPlaneRef>> {
    let mut out = records::control_planes(store)
        .await
        .map_err(|e| admission_err("reading the registered control planes", &e))?;
    out.sort_by_key(|c| c.node_id != first);
    Ok(out)
}

/// The cluster network's range: the first control plane's `--cluster-cidr`.
async fn network_range(store: &EtcdStore, cs: &ClusterSettings) -> Result<Ipv4Subnet> {
    let ours = cs.cluster_cidr.to_string();
    let stored = store
        .record_once(CIDR.0, CIDR.1, &ours)
        .await
        .map_err(store_err)?;
    let cidr: Ipv4Subnet = stored.trim().parse().map_err(|e| {
        Error::Config(format!(
            "the cluster network in etcd ({stored:?}) is not a range: {e}"
        ))
    })?;
    if cidr != cs.cluster_cidr {
        warn!(cluster = %cidr, given = %cs.cluster_cidr,
            "the cluster network is the one in etcd; this control plane's --cluster-cidr is not used");
    }
    Ok(cidr)
}

/// Points `cs` at a gossip key file: the one given or the data directory's.
/// The first control plane to start puts its primary key (or a new one) in
/// etcd; a control plane without a key file gets that key written into one.
/// A key file that lacks the cluster's key is kept, with a warning (after a
/// rotation the files hold the newer key, and etcd the first).
async fn gossip_key(store: &EtcdStore, cs: &mut ClusterSettings, data_dir: &Path) -> Result<()> {
    let path = cs
        .gossip_key_file
        .clone()
        .unwrap_or_else(|| crate::cluster_identity::default_key_file(data_dir));
    let local = if path.exists() {
        crate::gossip_keys::load(&path)
            .map_err(|e| Error::ClusterIdentity(orchestrator_shared_types::error::chain(&e)))?
    } else {
        Vec::new()
    };
    let ours = local
        .first()
        .map_or_else(GossipKey::generate, Clone::clone)
        .to_base64()
        .to_string();
    let stored = store
        .record_once(GOSSIP_KEY.0, GOSSIP_KEY.1, &ours)
        .await
        .map_err(store_err)?;
    let cluster_key = GossipKey::from_base64(stored.trim(), 1)
        .map_err(|e| Error::Config(format!("the gossip key in etcd: {e}")))?;
    if !path.exists() {
        let mut line = stored.trim().to_owned();
        line.push('\n');
        crate::cluster_identity::write_private(&path, line.as_bytes())?;
        info!(file = %path.display(), "wrote the cluster's gossip key from etcd");
    } else if !local.iter().any(|k| k.id() == cluster_key.id()) {
        warn!(file = %path.display(), cluster_key = %cluster_key.id(),
            "this gossip key file lacks the key the first control plane put in etcd: unless the \
             cluster's key was rotated since, this control plane cannot gossip with the others");
    }
    let ring = crate::gossip_keys::keyring(&path)
        .map_err(|e| Error::ClusterIdentity(orchestrator_shared_types::error::chain(&e)))?;
    cs.gossip.keyring = Some(Arc::new(ring));
    cs.gossip_key_file = Some(path);
    Ok(())
}

/// This node's subnet: the one it claimed before, or the highest one that
/// no member holds and no one claimed, claimed now (write-once, so two
/// control planes starting together never take the same).
async fn claim_subnet(store: &EtcdStore, cidr: &Ipv4Subnet, me: NodeId) -> Result<Ipv4Subnet> {
    let claims = records::claimed_subnets(store)
        .await
        .map_err(|e| admission_err("reading the subnet claims", &e))?;
    if let Some((subnet, _)) = claims.iter().find(|(_, n)| *n == me) {
        return Ok(*subnet);
    }
    let members = records::list_members(store)
        .await
        .map_err(|e| admission_err("reading the members", &e))?;
    let taken: Vec<Ipv4Subnet> = members
        .iter()
        .filter_map(|m| m.subnet)
        .chain(claims.iter().map(|(s, _)| *s))
        .collect();
    let count = cidr.count(NODE_SUBNET_PREFIX);
    for n in (0..count).rev() {
        let Some(subnet) = cidr.nth(NODE_SUBNET_PREFIX, n) else {
            continue;
        };
        if taken.contains(&subnet) {
            continue;
        }
        let winner = store
            .record_once(
                records::SUBNET_CLAIM_KIND,
                &subnet.addr.to_string(),
                &me.to_hex(),
            )
            .await
            .map_err(store_err)?;
        if winner.trim() == me.to_hex() {
            return Ok(subnet);
        }
    }
    Err(Error::Config(format!(
        "the cluster network {cidr} has no node subnet left for this control plane"
    )))
}

/// Records this control plane as a member holding `subnet` (once), and
/// makes the member list's version grow so that the next list names it.
async fn enroll(store: &EtcdStore, me: NodeId, subnet: Ipv4Subnet) -> Result<()> {
    let existing = records::get_member(store, &me)
        .await
        .map_err(|e| admission_err("reading this control plane's membership", &e))?;
    if existing.is_some_and(|m| m.subnet == Some(subnet) && m.role == JoinRole::ControlPlane) {
        return Ok(());
    }
    let member = records::Member {
        node_id: me,
        operator: PublicKey(me.0),
        role: JoinRole::ControlPlane,
        admitted_at: chrono::Utc::now(),
        token_id: records::CREATOR_TOKEN.to_owned(),
        subnet: Some(subnet),
    };
    records::put_member(store, &member)
        .await
        .map_err(|e| admission_err("recording this control plane as a member", &e))?;
    records::bump_version(store)
        .await
        .map_err(|e| admission_err("bumping the member list's version", &e))?;
    Ok(())
}

/// What a control plane on etcd keeps for the terms it may lead.
pub(super) struct Workers {
    pub(super) gossip: Arc<ChitchatClusterManager>,
    pub(super) peers: Arc<PeerClients>,
    pub(super) audience: Arc<str>,
    pub(super) key_store: Option<KeyFileStore>,
    pub(super) local_runtime: Arc<dyn ContainerRuntime>,
    pub(super) names: Arc<NameTable>,
    pub(super) receiver: Arc<DirectoryReceiver>,
    pub(super) network: NodeNetwork,
    pub(super) me: ControlPlaneRef,
}

/// What a leader with workers runs in one term besides the orchestrator.
pub(super) struct Driving {
    /// Its hands on every node, carrying the term.
    pub(super) routing: Arc<RoutingRuntime>,
    /// The same client, for directory pushes.
    pub(super) client: AgentClient,
    /// What its join tokens carry.
    pub(super) admission: AdmissionConfig,
    /// The gossip key rotation after a removal.
    pub(super) rotation: Option<Arc<dyn GossipKeyRotation>>,
}

impl Workers {
    /// The runtime, admission and key rotation of the term `term` (the
    /// fence revision) of the leader whose node key is `key`.
    pub(super) async fn drive(
        &self,
        store: &dyn StateStore,
        key: &SigningKey,
        cluster_id: &str,
        term: u64,
    ) -> Result<Driving> {
        let cluster = Arc::clone(&self.gossip) as Arc<dyn ClusterManager>;
        let client = AgentClient::with_peers(
            key.clone(),
            Arc::clone(&self.audience),
            Arc::clone(&self.peers),
        )
        .with_term(term);
        let routing = Arc::new(RoutingRuntime::new(
            Arc::clone(&self.local_runtime),
            Arc::clone(&cluster),
            client.clone(),
            REMOTE_STATUS_POLL,
        ));
        let rotation = self.key_store.clone().map(|local| {
            Arc::new(AgentKeyRotation::new(
                local,
                client.clone(),
                Arc::clone(&cluster),
            )) as Arc<dyn GossipKeyRotation>
        });
        // The tokens name this one first; admission adds every other
        // registered one at each issue.
        let control_planes = registry(store, self.me.node_id).await?;
        let key_file = self.key_store.as_ref().map(|k| k.path().to_path_buf());
        let admission = AdmissionConfig {
            cluster_id: cluster_id.to_owned(),
            control_planes,
            gossip_key: crate::cluster_run::gossip_key_source(key_file),
            network: Some(ClusterNetwork {
                cidr: self.network.cidr,
                own: self.network.subnet,
            }),
        };
        Ok(Driving {
            routing,
            client,
            admission,
            rotation,
        })
    }

    /// Starts what the leader runs beside the orchestrator until `acting`
    /// is cancelled: the directory pushes, and publishing the member list
    /// as soon as it changes (a control plane that registered, a node
    /// admitted by this leader or the last).
    pub(super) fn spawn(
        &self,
        d: &Driving,
        (store, key): (Arc<dyn StateStore>, &SigningKey),
        tasks: &tokio_util::task::TaskTracker,
        acting: &CancellationToken,
    ) {
        let cluster = Arc::clone(&self.gossip) as Arc<dyn ClusterManager>;
        tasks.spawn(crate::directory::push(
            Arc::clone(&self.names),
            (Arc::clone(&cluster), d.client.clone(), self.me.node_id),
            Arc::clone(&self.receiver),
            acting.child_token(),
        ));
        let admission = Admission::new(store, key.clone(), cluster, d.admission.clone());
        tasks.spawn(publish_changes(admission, acting.child_token()));
    }
}

/// Publishes the signed member list whenever its version changes.
async fn publish_changes(admission: Admission, cancel: CancellationToken) {
    let mut published = None;
    let mut tick = tokio::time::interval(LIST_CHECK);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let version = match admission.version().await {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "reading the member list's version");
                continue;
            }
        };
        if published == Some(version) {
            continue;
        }
        match admission.publish().await {
            Ok(()) => published = Some(version),
            Err(e) => warn!(error = %e, "publishing the member list"),
        }
    }
}
