//! Whole daemons on loopback for the admission tests: a control plane that
//! creates its cluster, nodes joining it with tokens, and the calls the
//! tests make to them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use orchestrator_api::client::ApiClient;
use orchestrator_api::JoinTokenRequest;
use orchestrator_daemon::{Daemon, DaemonConfig, Settings};
use orchestrator_shared_types::admission::JoinRole;
use orchestrator_shared_types::NodeId;

pub fn admin() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn settings(dir: &Path, join: Option<&str>) -> Settings {
    Settings {
        data_dir: Some(dir.to_owned()),
        runtime: Some(orchestrator_daemon::RuntimeKind::Mock),
        store: Some(orchestrator_daemon::StoreKind::Memory),
        api_addr: Some("127.0.0.1:0".into()),
        gossip_addr: Some(format!("127.0.0.1:{}", free_udp_port())),
        admin_keys: vec![
            base64::engine::general_purpose::STANDARD.encode(admin().verifying_key().to_bytes())
        ],
        node_cpu: Some("2".into()),
        node_memory: Some("4Gi".into()),
        join_token: join.map(str::to_owned),
        ..Settings::default()
    }
}

pub async fn start(dir: &Path, join: Option<&str>) -> orchestrator_daemon::Result<Daemon> {
    let config = DaemonConfig::resolve(settings(dir, join), Settings::default())?;
    Daemon::start(&config).await
}

pub fn client(d: &Daemon) -> ApiClient {
    ApiClient::new(&format!("http://{}", d.api_addr), Some(admin())).unwrap()
}

pub async fn issue(d: &Daemon, ttl: u64) -> String {
    let c = client(d);
    tokio::task::spawn_blocking(move || {
        c.issue_join_token(&JoinTokenRequest {
            ttl_seconds: Some(ttl),
            role: Some(JoinRole::Worker),
        })
        .unwrap()
        .data
        .token
    })
    .await
    .unwrap()
}

pub fn node_id(dir: &Path) -> NodeId {
    let key = orchestrator_daemon::node_key::open(dir).unwrap();
    orchestrator_daemon::node_key::node_id(&key)
}

pub async fn listed_by_control_plane(cp: &Daemon, id: NodeId) -> bool {
    let orch = cp.orchestrator.as_ref().unwrap();
    orch.list_nodes().await.unwrap().iter().any(|n| n.id == id)
}

pub async fn peers_of(d: &Daemon) -> Vec<NodeId> {
    let c = client(d);
    tokio::task::spawn_blocking(move || c.network_peers().unwrap().data)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.node_id)
        .collect()
}

pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP listener that counts the requests for `/api/v1` or `/mcp` it
/// receives, i.e. forwarded ones (and answers none; the control plane's
/// calls to a member's agent, `/agent/v1`, are not counted).
pub async fn counting_listener() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = std::sync::Arc::clone(&seen);
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt as _;
                let mut buf = vec![0u8; 1024];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split(' ').nth(1).unwrap_or_default();
                if path.starts_with("/api/v1") || path.starts_with("/mcp") {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    (addr, count)
}

/// Asks `cp` to admit `key` with `token`, as a joining node does: over TLS
/// to the control plane's key, with no certificate of its own.
pub async fn join_as(
    cp: &Daemon,
    key: &SigningKey,
    token: &orchestrator_shared_types::admission::JoinToken,
) {
    use orchestrator_shared_types::admission::JoinRequest;
    use orchestrator_shared_types::PublicKey;
    let id = PublicKey(key.verifying_key().to_bytes());
    let join = JoinRequest::new(key, token, id, None);
    let tls = peer_tls::NodeTls::anonymous_client_config(token.control_planes[0].node_id).unwrap();
    let http = peer_tls::http_client(tls, Duration::from_secs(2)).unwrap();
    let answer = http
        .post(peer_tls::url(
            &cp.api_addr.to_string(),
            orchestrator_api::routes::CLUSTER_JOIN,
        ))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&join).unwrap())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
}

/// A gossip member outside any daemon, admitted by `token` beforehand:
/// chitchat with the cluster's key, seeded on `cp_gossip`, publishing
/// `record` signed with `key`.
pub async fn gossip_member(
    cp_dir: &Path,
    cp_gossip: &str,
    token: &orchestrator_shared_types::admission::JoinToken,
    key: &SigningKey,
    record: orchestrator_shared_types::Node,
) -> cluster_manager::ChitchatClusterManager {
    use cluster_manager::{ChitchatClusterManager, GossipConfig, Keyring};
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let mut cfg = GossipConfig::new(addr, addr);
    cfg.cluster_id = token.cluster_id.clone();
    cfg.seeds = vec![cp_gossip.to_owned()];
    cfg.control_planes = vec![token.control_planes[0].node_id];
    let keys = orchestrator_daemon::gossip_keys::load(&cp_dir.join("gossip.keys")).unwrap();
    cfg.keyring = Some(std::sync::Arc::new(Keyring::new(&keys).unwrap()));
    ChitchatClusterManager::start(cfg, key.clone(), record)
        .await
        .unwrap()
}
