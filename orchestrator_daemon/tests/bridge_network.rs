//! Bridge networking through a whole daemon (youki runtime, images from the
//! test registry; root, as CI has): three replicas of an HTTP server on one
//! port, each in a network namespace of its own with an address from the
//! node's subnet, all running and all answering, at their address and on the
//! node port each publishes, as the instances API shows them; deleting the
//! workload leaves none of their namespaces behind. The bridge is the
//! default; the host's network waits for a node whose operator allows it.
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

/// Creates the workload of `manifest` (YAML) with `c`.
async fn deploy(c: orchestrator_api::client::ApiClient, manifest: String) {
    tokio::task::spawn_blocking(move || {
        c.create_workload("application/yaml", manifest.as_bytes())
            .unwrap()
    })
    .await
    .unwrap();
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
        "name: web\nreplicas: 3\ncontainers:\n\
         - name: main\n  image: {}/test/busybox:1\n  command: [busybox, httpd, -f, -p, '8088']\n\
         \x20 ports: [{{container_port: 8088}}]\n  resources: {{requests: {{cpu: 100m, memory: 32Mi}}}}\n\
         restart_policy: Always\n",
        registry()
    );
    deploy(client(&d), manifest).await;
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
    names_resolve_for_their_owner_only(&d, &addresses, host_ports[0]).await;

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
    host_network_waits_for_a_node_whose_operator_allows_it(&d).await;
    the_two_tier_example_calls_its_server_by_name(&d).await;
    tokio::time::timeout(Duration::from_secs(30), d.stop())
        .await
        .unwrap();
}

/// The output of a one-shot workload `name` running `script` in busybox,
/// deployed by `key`, once it printed `END`.
async fn run_once(d: &Daemon, key: &ed25519_dalek::SigningKey, name: &str, script: &str) -> String {
    let manifest = format!(
        "name: {name}\nrestart_policy: Never\ncontainers:\n- name: main\n  image: {}/test/busybox:1\n\
         \x20 command: [sh, -c, {script:?}]\n",
        registry()
    );
    let url = format!("http://{}", d.api_addr);
    let key = key.clone();
    let c = move || orchestrator_api::client::ApiClient::new(&url, Some(key.clone())).unwrap();
    deploy(c(), manifest).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = c();
        let workload = name.to_owned();
        let out = tokio::task::spawn_blocking(move || {
            logs.workload_log_lines(&workload, None, false)
                .map(|lines| lines.filter_map(Result::ok).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default()
        })
        .await
        .unwrap();
        if out.contains("END") {
            return out;
        }
        assert!(Instant::now() < deadline, "{name} did not finish: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// From inside an instance, the workload `web` of the same owner resolves
/// to its Ready instances (the node's DNS server on the bridge's gateway)
/// and answers by name. Another owner's instance can neither resolve it nor
/// connect to it, but reaches its published port like anyone.
async fn names_resolve_for_their_owner_only(d: &Daemon, addresses: &[String], published: u16) {
    let owner = admission_common::admin();
    let out = run_once(
        d,
        &owner,
        "client",
        &format!(
            "cat /etc/resolv.conf; nslookup web.univrs.internal; wget -O - http://web:8088/ 2>&1; \
             echo DIRECT; wget -O - http://{}:8088/ 2>&1; echo END",
            addresses[0]
        ),
    )
    .await;
    assert!(out.contains("nameserver 10.88.0.1"), "{out}");
    for a in addresses {
        assert!(out.contains(a.as_str()), "{a} in the answer: {out}");
    }
    let (by_name, direct) = out.split_once("DIRECT").unwrap();
    assert!(
        by_name.contains("HTTP/1.1 404"),
        "the server answered a request sent by name: {out}"
    );
    assert!(
        direct.contains("HTTP/1.1 404"),
        "same owner, by address: {out}"
    );
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    let out = run_once(
        d,
        &stranger,
        "intruder",
        &format!(
            "nslookup web.univrs.internal; echo DIRECT; wget -O - http://{}:8088/ 2>&1; \
             echo PUBLISHED; wget -O - http://10.88.0.1:{published}/ 2>&1; echo END",
            addresses[0]
        ),
    )
    .await;
    let (lookup, rest) = out.split_once("DIRECT").unwrap();
    let (direct, public) = rest.split_once("PUBLISHED").unwrap();
    assert!(lookup.contains("NXDOMAIN"), "another owner's name: {out}");
    assert!(
        addresses.iter().all(|a| !lookup.contains(a.as_str())),
        "no address leaks: {out}"
    );
    assert!(
        direct.contains("Connection refused") && !direct.contains("HTTP/1.1"),
        "another owner's instance is refused: {out}"
    );
    assert!(
        public.contains("HTTP/1.1 404"),
        "a published port answers anyone: {out}"
    );
    for (key, name) in [(owner, "client"), (stranger, "intruder")] {
        let url = format!("http://{}", d.api_addr);
        tokio::task::spawn_blocking(move || {
            orchestrator_api::client::ApiClient::new(&url, Some(key))
                .unwrap()
                .delete_workload(name)
                .unwrap()
        })
        .await
        .unwrap();
    }
}

/// A node whose operator has not allowed the host's network says so in its
/// record, and a workload asking for it waits for a node with the reason
/// given; nothing runs on the host's network. (In the same test as the
/// bridge: two daemons on one bridge would share its guard chains.)
async fn host_network_waits_for_a_node_whose_operator_allows_it(d: &Daemon) {
    let c = client(d);
    let nodes = tokio::task::spawn_blocking(move || c.list_nodes().unwrap().data)
        .await
        .unwrap();
    assert_eq!(
        nodes[0]
            .labels
            .get("univrs.io/networks")
            .map(String::as_str),
        Some("bridge,none"),
        "{nodes:?}"
    );
    let manifest = format!(
        "name: hosted\nnetwork: host\ncontainers:\n- name: main\n  image: {}/test/busybox:1\n\
         \x20 command: [sleep, '3600']\n",
        registry()
    );
    deploy(client(d), manifest).await;
    eventually(
        "the replica waits, saying why",
        Duration::from_secs(30),
        || async {
            let c = client(d);
            let w = tokio::task::spawn_blocking(move || c.get_workload("hosted").unwrap().data)
                .await
                .unwrap();
            w.status.unscheduled == 1
                && w.status
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.contains("1 network mode not offered"))
        },
    )
    .await;
    assert!(instances(d, "hosted").await.is_empty());
}

/// `examples/two-tier` as the README runs it: the client prints the page of
/// a `web` replica, found by name, and both go away when deleted.
async fn the_two_tier_example_calls_its_server_by_name(d: &Daemon) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/two-tier");
    for file in ["web.yaml", "client.yaml"] {
        let manifest = std::fs::read_to_string(examples.join(file))
            .unwrap()
            .replace("127.0.0.1:5000", &registry());
        deploy(client(d), manifest).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = client(d);
        let out = tokio::task::spawn_blocking(move || {
            c.workload_log_lines("client", None, false)
                .map(|lines| lines.filter_map(Result::ok).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default()
        })
        .await
        .unwrap();
        if out.contains("hello from u-") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client never got the page: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut namespaces = Vec::new();
    for name in ["client", "web"] {
        namespaces.extend(
            instances(d, name)
                .await
                .into_iter()
                .flat_map(|i| i.container_ids)
                .map(|c| Path::new("/run/netns").join(c.0)),
        );
        let c = client(d);
        tokio::task::spawn_blocking(move || c.delete_workload(name).unwrap())
            .await
            .unwrap();
    }
    eventually(
        "the example's namespaces are gone",
        Duration::from_secs(60),
        || async { namespaces.iter().all(|ns| !ns.exists()) },
    )
    .await;
    eventually("the example is gone", Duration::from_secs(60), || async {
        let c = client(d);
        tokio::task::spawn_blocking(move || {
            ["web", "client"].iter().all(|w| match c.list_instances(w) {
                Ok(page) => page.data.is_empty(),
                Err(orchestrator_api::client::ClientError::Api { status: 404, .. }) => true,
                Err(e) => panic!("{w}: {e}"),
            })
        })
        .await
        .unwrap()
    })
    .await;
}
