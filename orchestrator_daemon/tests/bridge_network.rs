//! Bridge networking through a whole daemon (youki runtime, images from the
//! test registry; root, as CI has): three replicas of an HTTP server on one
//! port, each in a network namespace of its own with an address from the
//! node's subnet, all running and all answering, at their address and on the
//! node port each publishes, as the instances API shows them; deleting the
//! workload leaves none of their namespaces behind.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission_common;

use std::path::Path;
use std::time::{Duration, Instant};

use admission_common::{client, eventually};
use orchestrator_daemon::{Daemon, DaemonConfig, RuntimeKind, Settings, StoreKind};
use orchestrator_shared_types::{InstanceStatus, WorkloadInstance};

fn registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

async fn daemon(dir: &Path) -> Daemon {
    use base64::Engine as _;
    let admin = admission_common::admin().verifying_key().to_bytes();
    let s = Settings {
        data_dir: Some(dir.to_owned()),
        runtime: Some(RuntimeKind::Youki),
        store: Some(StoreKind::Memory),
        api_addr: Some("127.0.0.1:0".into()),
        admin_keys: vec![base64::engine::general_purpose::STANDARD.encode(admin)],
        insecure_registries: vec![registry()],
        node_cpu: Some("2".into()),
        node_memory: Some("4Gi".into()),
        ..Settings::default()
    };
    Daemon::start(&DaemonConfig::resolve(s, Settings::default()).unwrap())
        .await
        .unwrap_or_else(|e| panic!("a youki daemon must start here (root): {e}"))
}

async fn instances(d: &Daemon, name: &str) -> Vec<WorkloadInstance> {
    let c = client(d);
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || c.list_instances(&name).unwrap().data)
        .await
        .unwrap()
}

/// The IPv4 address of `eth0` in network namespace `ns`.
fn address_in(ns: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    Some(field.split('/').next()?.to_owned())
}

/// The reply to `GET /` on `addr`, within 20 s.
async fn http_get(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&reply).into_owned())
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(reply)) if !reply.is_empty() => return reply,
            other => assert!(Instant::now() < deadline, "{addr}: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_port_each_get_their_own_network_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = daemon(tmp.path()).await;
    let manifest = format!(
        "name: web\nreplicas: 3\nnetwork: bridge\ncontainers:\n\
         - name: main\n  image: {}/test/busybox:1\n  command: [busybox, httpd, -f, -p, '8088']\n\
         \x20 ports: [{{container_port: 8088}}]\n  resources: {{requests: {{cpu: 100m, memory: 32Mi}}}}\n\
         restart_policy: Always\n",
        registry()
    );
    let c = client(&d);
    tokio::task::spawn_blocking(move || {
        c.create_workload("application/yaml", manifest.as_bytes())
            .unwrap()
    })
    .await
    .unwrap();
    eventually(
        "3 replicas running, each with its address and port",
        Duration::from_secs(60),
        || async {
            instances(&d, "web")
                .await
                .iter()
                .filter(|i| {
                    i.status == InstanceStatus::Running && i.address.is_some() && i.ports.len() == 1
                })
                .count()
                == 3
        },
    )
    .await;
    // Each in a namespace of its own, with an address of the node's subnet,
    // answering on the one port all three listen on.
    let running = instances(&d, "web").await;
    let mut addresses = Vec::new();
    let mut namespaces = Vec::new();
    let mut host_ports = Vec::new();
    for i in &running {
        let ns = i.container_ids[0].0.clone();
        assert!(Path::new("/run/netns").join(&ns).exists(), "namespace {ns}");
        let ip = address_in(&ns).unwrap_or_else(|| panic!("no address in {ns}"));
        assert!(ip.starts_with("10.88.0."), "{ip}");
        assert_eq!(i.address.as_deref(), Some(ip.as_str()), "the API shows it");
        let published = &i.ports[0];
        assert_eq!(published.container_port, 8088);
        assert!(
            (30000..=32767).contains(&published.host_port),
            "{published:?}"
        );
        host_ports.push(published.host_port);
        let answered = Instant::now() + Duration::from_secs(20);
        loop {
            let conn = tokio::net::TcpStream::connect(format!("{ip}:8088")).await;
            if conn.is_ok() {
                break;
            }
            assert!(
                Instant::now() < answered,
                "{ip}:8088 does not answer: {conn:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        addresses.push(ip);
        namespaces.push(ns);
    }
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 3, "three addresses: {addresses:?}");
    host_ports.sort_unstable();
    host_ports.dedup();
    assert_eq!(host_ports.len(), 3, "three node ports: {host_ports:?}");
    // Each published port answers from the host with the server's reply.
    for port in &host_ports {
        let reply = http_get(&format!("127.0.0.1:{port}")).await;
        assert!(reply.starts_with("HTTP/1."), "{port}: {reply}");
    }
    assert!(
        running.iter().all(|i| i.restarts == 0),
        "nobody fought over the port: {running:?}"
    );

    let c = client(&d);
    tokio::task::spawn_blocking(move || c.delete_workload("web").unwrap())
        .await
        .unwrap();
    eventually(
        "their namespaces are gone",
        Duration::from_secs(60),
        || async {
            namespaces
                .iter()
                .all(|ns| !Path::new("/run/netns").join(ns).exists())
        },
    )
    .await;
    tokio::time::timeout(Duration::from_secs(30), d.stop())
        .await
        .unwrap();
}
