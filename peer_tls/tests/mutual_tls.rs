//! Mutual TLS on one port, attacked: a client reaches only the node it
//! meant, a server takes only members' certificates (and stops taking one
//! the moment it is no longer a member's), and plain HTTP still works beside
//! it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::NodeId;
use peer_tls::{http_client, node_of, serve, url, Members, NodeTls, PeerClients, PeerInfo};
use tokio::net::TcpListener;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn id(key: &SigningKey) -> NodeId {
    NodeId(key.verifying_key().to_bytes())
}

type Set = Arc<Mutex<HashSet<NodeId>>>;

fn members(set: &Set) -> Members {
    let set = Arc::clone(set);
    Arc::new(move |node| {
        let ok = set.lock().unwrap().contains(&node);
        Box::pin(async move { ok })
    })
}

async fn whoami(ConnectInfo(info): ConnectInfo<PeerInfo>) -> String {
    format!(
        "tls={} node={}",
        info.tls,
        info.node
            .map_or_else(|| "none".to_owned(), |n| n.to_string())
    )
}

/// A server with `key`'s identity admitting `set`; its address.
async fn server(key: &SigningKey, set: &Set) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let tls = NodeTls::new(key).unwrap();
    let router = Router::new().route("/whoami", get(whoami));
    let members = members(set);
    tokio::spawn(async move {
        serve(listener, router, &tls, members, std::future::pending())
            .await
            .unwrap();
    });
    addr
}

#[test]
fn the_certificate_is_the_node_key() {
    let k = key(7);
    let tls = NodeTls::new(&k).unwrap();
    assert_eq!(tls.node(), id(&k));
    assert_eq!(
        node_of(&rustls::pki_types::CertificateDer::from(vec![0x30, 0x00])),
        None
    );
}

#[tokio::test]
async fn a_member_reaches_the_node_it_meant_and_is_known_by_its_key() {
    let (srv, cli, stranger) = (key(1), key(2), key(3));
    let set: Set = Arc::new(Mutex::new(HashSet::from([id(&cli)])));
    let addr = server(&srv, &set).await;
    let clients = PeerClients::new(
        Arc::new(NodeTls::new(&cli).unwrap()),
        Duration::from_secs(2),
    );
    let http = clients.client(id(&srv)).unwrap();
    let body = http
        .get(url(&addr, "/whoami"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, format!("tls=true node={}", id(&cli)));

    // Plain HTTP on the same port: served, with no node.
    let plain = reqwest::get(format!("http://{addr}/whoami"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(plain, "tls=false node=none");

    // TLS without a certificate (a joining node): served, with no node.
    let anon = http_client(
        NodeTls::anonymous_client_config(id(&srv)).unwrap(),
        Duration::from_secs(2),
    )
    .unwrap();
    let body = anon
        .get(url(&addr, "/whoami"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "tls=true node=none");

    // Expecting another node at this address: no connection at all.
    let wrong = clients.client(id(&stranger)).unwrap();
    let err = wrong.get(url(&addr, "/whoami")).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn a_stranger_s_certificate_is_refused_and_a_removed_member_is_cut_off() {
    let (srv, member, stranger) = (key(4), key(5), key(6));
    let set: Set = Arc::new(Mutex::new(HashSet::from([id(&member)])));
    let addr = server(&srv, &set).await;

    let outsider = PeerClients::new(
        Arc::new(NodeTls::new(&stranger).unwrap()),
        Duration::from_secs(2),
    );
    let err = outsider
        .client(id(&srv))
        .unwrap()
        .get(url(&addr, "/whoami"))
        .send()
        .await
        .expect_err("a stranger's certificate gets no answer");
    assert!(!err.is_status(), "{err:?}");

    let inside = PeerClients::new(
        Arc::new(NodeTls::new(&member).unwrap()),
        Duration::from_secs(2),
    );
    let http = inside.client(id(&srv)).unwrap();
    let ok = http.get(url(&addr, "/whoami")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // Removed while its connection is open: its next request is refused.
    set.lock().unwrap().clear();
    let refused = http.get(url(&addr, "/whoami")).send().await;
    match refused {
        Ok(r) => assert_eq!(r.status(), 403, "a removed member is refused"),
        Err(e) => assert!(!e.is_status(), "{e:?}"),
    }
    // And a new connection of it is refused at the handshake.
    let fresh = PeerClients::new(
        Arc::new(NodeTls::new(&member).unwrap()),
        Duration::from_secs(2),
    );
    assert!(fresh
        .client(id(&srv))
        .unwrap()
        .get(url(&addr, "/whoami"))
        .send()
        .await
        .is_err());
}
