//! This node's end of the encrypted cluster overlay (SPEC §9; the tunnel
//! itself is `container_runtime::youki::cni::overlay`): its WireGuard key,
//! made from the node key, and a task that keeps the tunnel's peers in step
//! with the member list.
//!
//! Who is a peer, with which subnet, comes from the newest member list a
//! pinned control plane signed: a node cannot claim another's subnet, and a
//! removed member is dropped from every tunnel within a second. Where a peer
//! listens comes from its gossiped node record (its advertised address and
//! the cluster's overlay port); a wrong address there only keeps its own
//! traffic from arriving, since WireGuard authenticates every packet by the
//! member's key.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use cluster_manager_interface::ClusterManager;
use container_runtime::youki::cni::overlay::{
    device_name, Overlay, OverlayPeer, OverlaySettings, OVERLAY_MTU,
};
use container_runtime::youki::cni::CniConfig;
use ed25519_dalek::{SigningKey, VerifyingKey};
use orchestrator_shared_types::NodeId;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::cluster_config::ClusterSettings;
use crate::cluster_identity::{NodeNetwork, Settled};
use crate::config::{DaemonConfig, RuntimeKind};
use crate::error::{Error, Result};
use orchestrator_shared_types::net::Ipv4Subnet;

/// How often the peers are compared with the member list.
const FOLLOW_PERIOD: Duration = Duration::from_millis(500);

/// The WireGuard (X25519) private key of the node whose Ed25519 key is
/// `key`: the same secret scalar, so that its public half is the node id in
/// Montgomery form ([`public_key`]).
pub fn private_key(key: &SigningKey) -> [u8; 32] {
    key.to_scalar_bytes()
}

/// The WireGuard public key of node `id`, or none when `id` is not a point.
pub fn public_key(id: &NodeId) -> Option<[u8; 32]> {
    VerifyingKey::from_bytes(&id.0)
        .ok()
        .map(|k| k.to_montgomery().to_bytes())
}

/// `config` for a cluster node: when the cluster has a network, the bridge
/// takes the subnet this node was handed (a `--node-subnet` naming another
/// is refused) and the overlay's MTU, and, on the youki runtime with the
/// bridge on, the overlay starts. The mock runtime has nothing to tunnel.
pub async fn configure(
    config: &DaemonConfig,
    cs: &ClusterSettings,
    settled: &Settled,
    key: &SigningKey,
) -> Result<(DaemonConfig, Option<Arc<Overlay>>)> {
    let mut config = config.clone();
    let Some(network) = settled.network else {
        return Ok((config, None));
    };
    if let Some(given) = &cs.node_subnet {
        if given.parse::<Ipv4Subnet>().ok() != Some(network.subnet) {
            return Err(Error::Config(format!(
                "--node-subnet {given} is not the subnet {} this node was handed when it joined \
                 the cluster (network {}): drop --node-subnet",
                network.subnet, network.cidr
            )));
        }
    }
    if !matches!(config.runtime, RuntimeKind::Youki) {
        return Ok((config, None));
    }
    let Some(cni) = config.youki.cni.as_mut() else {
        return Ok((config, None));
    };
    cni.subnet = network.subnet;
    cni.mtu = Some(OVERLAY_MTU);
    let overlay = start(key, network, cni, cs.overlay_port).await?;
    Ok((config, Some(overlay)))
}

/// Starts this node's tunnel for `network` on the bridge of `cni`.
async fn start(
    key: &SigningKey,
    network: NodeNetwork,
    cni: &CniConfig,
    port: u16,
) -> Result<Arc<Overlay>> {
    let me = NodeId(key.verifying_key().to_bytes());
    let settings = OverlaySettings {
        device: device_name(&me.to_hex()),
        subnet: network.subnet,
        cidr: network.cidr,
        port,
        isolate_owners: cni.isolate_owners,
    };
    Overlay::start(settings, private_key(key))
        .await
        .map(Arc::new)
        .map_err(|e| Error::Youki(e.to_string()))
}

/// Keeps `overlay`'s peers in step with the members of `cluster_id` until
/// `cancel`.
pub async fn follow(
    overlay: Arc<Overlay>,
    cluster: Arc<dyn ClusterManager>,
    cluster_id: String,
    me: NodeId,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(FOLLOW_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error = String::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let port = overlay.settings().port;
        let result = match wanted(cluster.as_ref(), &cluster_id, me, port).await {
            Ok(peers) => overlay
                .apply(&peers)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Err(e) if e != last_error => {
                warn!(error = %e, "keeping the cluster overlay in step with the members");
                last_error = e;
            }
            Err(_) => {}
            Ok(()) => last_error.clear(),
        }
    }
}

/// The peers the newest verified member list names (this node left out),
/// each where its node record says it is.
async fn wanted(
    cluster: &dyn ClusterManager,
    cluster_id: &str,
    me: NodeId,
    port: u16,
) -> std::result::Result<Vec<OverlayPeer>, String> {
    let Some(list) = cluster.member_list().filter(|l| l.cluster_id == cluster_id) else {
        // No list yet (just started): no peers yet.
        return Ok(Vec::new());
    };
    let nodes = cluster
        .list_nodes()
        .await
        .map_err(|e| format!("listing the nodes: {e}"))?;
    let mut peers = Vec::new();
    for m in list.members.iter().filter(|m| m.node_id != me) {
        let (Some(subnet), Some(public_key)) = (m.subnet, public_key(&m.node_id)) else {
            continue;
        };
        let Some(node) = nodes.iter().find(|n| n.id == m.node_id) else {
            continue;
        };
        let Some(ip) = host_ip(&node.address).await else {
            continue;
        };
        peers.push(OverlayPeer {
            public_key,
            endpoint: SocketAddr::new(ip, port),
            subnet,
        });
    }
    Ok(peers)
}

/// The IP of `address` (`host:port`), resolving a host name.
async fn host_ip(address: &str) -> Option<IpAddr> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    tokio::net::lookup_host(address)
        .await
        .ok()?
        .find(SocketAddr::is_ipv4)
        .map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunnel_key_is_the_node_key_so_both_ends_agree_without_exchanging_one() {
        // X25519 of a's private key with b's public key equals the reverse:
        // the keys the tunnels derive from node ids fit the node keys.
        use container_runtime::youki::cni::overlay::x25519::{PublicKey, StaticSecret};
        let a = SigningKey::from_bytes(&[1; 32]);
        let b = SigningKey::from_bytes(&[2; 32]);
        let id = |k: &SigningKey| NodeId(k.verifying_key().to_bytes());
        let pa = public_key(&id(&a)).expect("a point");
        let pb = public_key(&id(&b)).expect("a point");
        let sa = StaticSecret::from(private_key(&a));
        let sb = StaticSecret::from(private_key(&b));
        assert_eq!(PublicKey::from(&sa).to_bytes(), pa);
        assert_eq!(PublicKey::from(&sb).to_bytes(), pb);
        let ab = sa.diffie_hellman(&PublicKey::from(pb));
        let ba = sb.diffie_hellman(&PublicKey::from(pa));
        assert_eq!(ab.as_bytes(), ba.as_bytes());
        // Another node's key does not fit.
        let c = SigningKey::from_bytes(&[3; 32]);
        let sc = StaticSecret::from(private_key(&c));
        assert_ne!(
            sc.diffie_hellman(&PublicKey::from(pb)).as_bytes(),
            ab.as_bytes()
        );
    }
}
