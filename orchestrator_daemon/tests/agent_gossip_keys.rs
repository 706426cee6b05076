//! `POST /agent/v1/gossip-keys` over a real socket: the control plane
//! changes a node's key file and keyring; any other member is refused and
//! changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use cluster_manager::mock::{test_node, MockClusterManager};
use cluster_manager::GossipKey;
use cluster_manager_interface::{ClusterManager, ROLE_CONTROL_PLANE, ROLE_LABEL, ROLE_WORKER};
use container_runtime::mock::MockRuntime;
use container_runtime_interface::ContainerRuntime;
use ed25519_dalek::SigningKey;
use node_agent::agent::{self, AgentState};
use node_agent::client::AgentClient;
use node_agent::gossip_keys::{GossipKeyChange, GossipKeyStore};
use orchestrator_daemon::key_store::KeyFileStore;
use orchestrator_shared_types::{Node, NodeId};
use signed_http::ReplayCache;

const AUDIENCE: &str = "c-test";

fn member(key: &SigningKey, role: &str, address: String) -> Node {
    let mut n = test_node(1, 4000, 8 << 30);
    n.id = NodeId(key.verifying_key().to_bytes());
    n.address = address;
    n.labels = BTreeMap::from([(ROLE_LABEL.to_owned(), role.to_owned())]);
    n
}

fn ids(path: &std::path::Path) -> Vec<String> {
    orchestrator_daemon::gossip_keys::load(path)
        .unwrap()
        .iter()
        .map(|k| k.id().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_control_plane_changes_a_nodes_gossip_keys() {
    let (cp_key, w_key, other_key) = (
        SigningKey::from_bytes(&[1; 32]),
        SigningKey::from_bytes(&[2; 32]),
        SigningKey::from_bytes(&[3; 32]),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gossip.keys");
    let old = GossipKey::generate();
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        writeln!(f, "{}", *old.to_base64()).unwrap();
    }
    let keyring = Arc::new(orchestrator_daemon::gossip_keys::keyring(&path).unwrap());
    let store = KeyFileStore::new(path.clone(), Arc::clone(&keyring));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let me = member(&w_key, ROLE_WORKER, addr.clone());
    let cluster = Arc::new(MockClusterManager::new(me.clone()));
    cluster
        .add_node(member(&cp_key, ROLE_CONTROL_PLANE, "127.0.0.1:1".into()))
        .unwrap();
    cluster
        .add_node(member(&other_key, ROLE_WORKER, "127.0.0.1:2".into()))
        .unwrap();
    let router = agent::router(AgentState {
        runtime: Arc::new(MockRuntime::new()) as Arc<dyn ContainerRuntime>,
        node: me.id,
        cluster: Arc::clone(&cluster) as Arc<dyn ClusterManager>,
        replays: Arc::new(ReplayCache::new(1000)),
        max_skew_seconds: 60,
        audience: Arc::from(AUDIENCE),
        gossip_keys: Some(Arc::new(store) as Arc<dyn GossipKeyStore>),
        directory: None,
        terms: None,
    });
    // Served as a node serves it: mutual TLS for members.
    let tls = peer_tls::NodeTls::new(&w_key).unwrap();
    let members = node_agent::members(Arc::clone(&cluster) as Arc<dyn ClusterManager>);
    tokio::spawn(async move {
        peer_tls::serve(listener, router, &tls, members, std::future::pending())
            .await
            .unwrap()
    });

    let new = GossipKey::generate();
    let install = GossipKeyChange::Install {
        key: new.to_base64().to_string(),
    };
    // Another member (a worker) is refused; nothing changes.
    let stranger = AgentClient::new(other_key, AUDIENCE).unwrap();
    let err = stranger
        .change_gossip_keys(&me, &install)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("control-plane"), "{err}");
    assert_eq!(ids(&path), vec![old.id().to_string()]);
    assert_eq!(keyring.key_ids(), vec![old.id()]);

    // The control plane installs, switches to, and drops keys.
    let cp = AgentClient::new(cp_key, AUDIENCE).unwrap();
    let after = cp.change_gossip_keys(&me, &install).await.unwrap();
    assert_eq!(after.keys, vec![old.id().to_string(), new.id().to_string()]);
    assert_eq!(ids(&path), after.keys, "written before the answer");
    assert_eq!(keyring.key_ids(), vec![old.id(), new.id()]);
    let use_new = GossipKeyChange::Use {
        key_id: new.id().to_string(),
    };
    cp.change_gossip_keys(&me, &use_new).await.unwrap();
    // Removing the primary is refused, with a reason.
    let err = cp
        .change_gossip_keys(
            &me,
            &GossipKeyChange::Remove {
                key_id: new.id().to_string(),
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("primary"), "{err}");
    let done = cp
        .change_gossip_keys(
            &me,
            &GossipKeyChange::Remove {
                key_id: old.id().to_string(),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.primary, new.id().to_string());
    assert_eq!(ids(&path), vec![new.id().to_string()]);
    assert_eq!(keyring.key_ids(), vec![new.id()]);
}
