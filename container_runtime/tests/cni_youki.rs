//! Bridge networking on real containers: `univrs.io/network: bridge` puts a
//! container in a namespace of its own on the node's CNI bridge, and removing
//! the container leaves nothing of it behind.
//!
//! Needs root, the CNI plugins (skipped with the reason otherwise), cgroups
//! and the test registry (`./scripts/test-registry start`, as `youki.rs`).
#![cfg(target_os = "linux")]

#[allow(dead_code)]
mod cni_common;
mod youki_common;

use std::collections::BTreeMap;

use cni_common::*;
use std::time::Duration;

use container_runtime::youki::cni::{CniNetwork, NetNs};
use container_runtime::youki::{YoukiConfig, YoukiRuntime, NETWORK_LABEL};
use container_runtime_interface::{ContainerRuntime, LogOptions};
use youki_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_container_gets_an_address_of_the_subnet_and_removal_leaves_nothing() {
    require_root_and_plugins!();
    let t = TestNet::new(8);
    let mut cfg = YoukiConfig::new(t.dir.path().join("runtime"));
    cfg.insecure_registries = vec![registry()];
    cfg.cni = Some(t.cfg.clone());
    let rt = YoukiRuntime::new(cfg).await.expect("the runtime starts");
    rt.init_node(NODE).await.expect("init node");

    let mut s = spec(config(
        "busybox",
        &[
            "sh",
            "-c",
            "ip -4 -o addr show dev eth0; ip -4 route show default",
        ],
    ));
    s.labels = BTreeMap::from([(NETWORK_LABEL.to_owned(), "bridge".to_owned())]);
    let id = create(&rt, &s).await;
    let status = exited(&rt, &id).await;
    let lines = rt
        .get_container_logs(&id, LogOptions::default())
        .await
        .expect("logs");
    let out: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(status.exit_code, Some(0), "{out:?}");
    // The one lease of the network is the address the container saw.
    let leases = t.leases();
    assert_eq!(leases.len(), 1);
    let addr_line = out.first().copied().unwrap_or_default();
    assert!(
        addr_line.contains(&format!("inet {}/24", leases[0])),
        "{out:?}"
    );
    assert!(
        out.iter().any(|l| l.contains("default via 10.89.8.1")),
        "{out:?}"
    );
    let ns = NetNs::at(&t.cfg.netns_dir, id.as_str()).expect("name");
    assert!(ns.exists());
    assert_eq!(t.bridge_veths(), 1);

    rt.remove_container(&id).await.expect("remove");
    assert!(
        !ns.exists() && !ns.path().exists(),
        "the namespace is removed"
    );
    assert_eq!(t.bridge_veths(), 0);
    assert!(t.leases().is_empty(), "leases left: {:?}", t.leases());
    assert_eq!(iptables_lines(id.as_str()), Vec::<String>::new());
    assert_eq!(
        iptables_lines(&format!("{}/32", leases[0])),
        Vec::<String>::new()
    );
    assert_eq!(t.kept_results(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_mode_is_refused_clearly_where_no_cni_network_is_configured() {
    require_root_and_plugins!();
    let t = runtime().await;
    let mut s = spec(config("busybox", &["true"]));
    s.labels = BTreeMap::from([(NETWORK_LABEL.to_owned(), "bridge".to_owned())]);
    let err =
        t.rt.create_container(NODE, &s)
            .await
            .expect_err("no CNI network here");
    assert!(
        err.to_string().contains("bridge networking is not set up"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_runtime_keeps_its_containers_networks_and_detaches_orphans() {
    require_root_and_plugins!();
    let t = TestNet::new(9);
    let open = || async {
        let mut cfg = YoukiConfig::new(t.dir.path().join("runtime"));
        cfg.insecure_registries = vec![registry()];
        cfg.cni = Some(t.cfg.clone());
        let rt = YoukiRuntime::new(cfg).await.expect("the runtime starts");
        rt.init_node(NODE).await.expect("init node");
        rt
    };
    let first = open().await;
    let mut s = spec(config("busybox", &["sleep", "3600"]));
    s.labels = BTreeMap::from([(NETWORK_LABEL.to_owned(), "bridge".to_owned())]);
    let running = create(&first, &s).await;
    let pid = first.pid(&running).expect("pid");
    // A daemon that died between attaching a container and recording it.
    let orphan = CniNetwork::new(t.cfg.clone())
        .expect("network")
        .attach("u-orphan", Vec::new())
        .await
        .expect("attach the orphan");
    assert_eq!(t.leases().len(), 2);
    first.shutdown();
    drop(first);

    let second = open().await;
    assert_eq!(second.pid(&running), Some(pid), "adopted, not restarted");
    assert!(!orphan.netns.exists() && !orphan.netns.path().exists());
    assert_eq!(t.leases().len(), 1, "only the running container's lease");
    assert_eq!(iptables_lines("u-orphan"), Vec::<String>::new());
    let ns = NetNs::at(&t.cfg.netns_dir, running.as_str()).expect("name");
    assert!(ns.exists());
    assert_eq!(t.bridge_veths(), 1);

    second
        .stop_container(&running, Duration::from_secs(1))
        .await
        .expect("stop");
    exited(&second, &running).await;
    second.remove_container(&running).await.expect("remove");
    assert!(!ns.exists());
    assert_eq!(t.bridge_veths(), 0);
    assert!(t.leases().is_empty(), "leases left: {:?}", t.leases());
    assert_eq!(iptables_lines(running.as_str()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ports_answer_on_the_node_and_probes_reach_the_instance() {
    use container_runtime_interface::ContainerState;
    use orchestrator_shared_types::{Probe, ProbeAction};
    require_root_and_plugins!();
    let mut t = TestNet::new(10);
    t.cfg.host_port_range = 41170..=41179;
    let mut cfg = YoukiConfig::new(t.dir.path().join("runtime"));
    cfg.insecure_registries = vec![registry()];
    cfg.cni = Some(t.cfg.clone());
    let rt = YoukiRuntime::new(cfg).await.expect("the runtime starts");
    rt.init_node(NODE).await.expect("init node");

    let server = |ports| {
        let mut c = config("busybox", &["busybox", "httpd", "-f", "-p", "8088"]);
        c.ports = ports;
        // Nothing listens on the node's 127.0.0.1:8088: ready only if the
        // probe reaches the instance's own address.
        c.readiness_probe = Some(Probe {
            action: ProbeAction::TcpSocket { port: 8088 },
            initial_delay_seconds: 0,
            period_seconds: 1,
            timeout_seconds: 1,
            failure_threshold: 1,
        });
        let mut s = spec(c);
        s.labels = BTreeMap::from([(NETWORK_LABEL.to_owned(), "bridge".to_owned())]);
        s
    };
    let auto = create(&rt, &server(vec![port(8088, None)])).await;
    let fixed = create(&rt, &server(vec![port(8088, Some(28190))])).await;
    let mut seen = Vec::new();
    for id in [&auto, &fixed] {
        let s = wait_status(&rt, id, "ready", |s| s.ready).await;
        assert_eq!(s.state, ContainerState::Running);
        let address = s.address.clone().expect("an address on the bridge");
        assert!(address.starts_with("10.89.10."), "{address}");
        assert_eq!(s.ports.len(), 1, "{s:?}");
        assert_eq!(s.ports[0].container_port, 8088);
        // The instance answers at its address, and on its node port.
        http_reply(&format!("{address}:8088")).await;
        http_reply(&format!("127.0.0.1:{}", s.ports[0].host_port)).await;
        seen.push(s);
    }
    assert!((41170..=41179).contains(&seen[0].ports[0].host_port));
    assert_eq!(seen[1].ports[0].host_port, 28190);
    assert_ne!(seen[0].address, seen[1].address);

    // From another host: a namespace joined to the node by a veth pair; its
    // connections to the node's port cross FORWARD, whose policy here (as
    // Docker leaves it) is DROP.
    let remote = t.netns("remote");
    let remote_name = remote
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("a name");
    for args in [
        vec![
            "link",
            "add",
            "ucni10-r",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &remote_name,
        ],
        vec!["addr", "add", "192.168.241.1/30", "dev", "ucni10-r"],
        vec!["link", "set", "ucni10-r", "up"],
        vec![
            "-n",
            &remote_name,
            "addr",
            "add",
            "192.168.241.2/30",
            "dev",
            "eth0",
        ],
        vec!["-n", &remote_name, "link", "set", "eth0", "up"],
        vec![
            "-n",
            &remote_name,
            "route",
            "add",
            "default",
            "via",
            "192.168.241.1",
        ],
    ] {
        let out = std::process::Command::new("ip")
            .args(&args)
            .output()
            .expect("ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for s in &seen {
        let to = std::net::SocketAddr::from(([192, 168, 241, 1], s.ports[0].host_port));
        let reply = in_netns(remote.path(), move || {
            use std::io::{Read, Write};
            let mut c = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5))
                .map_err(|e| format!("connecting to {to}: {e}"))?;
            c.set_read_timeout(Some(Duration::from_secs(5))).ok();
            c.write_all(b"GET / HTTP/1.0\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let mut reply = String::new();
            c.read_to_string(&mut reply).map_err(|e| e.to_string())?;
            Ok::<_, String>(reply)
        })
        .join()
        .expect("the remote client");
        assert!(
            reply.as_deref().is_ok_and(|r| r.starts_with("HTTP/")),
            "from another host to {to}: {reply:?}"
        );
    }

    // The fixed port is the node's once.
    let err = rt
        .create_container(NODE, &server(vec![port(80, Some(28190))]))
        .await
        .expect_err("28190 is published already");
    assert!(err.to_string().contains("already published"), "{err}");
    assert_eq!(t.leases().len(), 2, "the refused one took no lease");

    for id in [&auto, &fixed] {
        rt.stop_container(id, Duration::from_secs(1))
            .await
            .expect("stop");
        exited(&rt, id).await;
        rt.remove_container(id).await.expect("remove");
        assert_eq!(iptables_lines(id.as_str()), Vec::<String>::new());
    }
    assert!(t.leases().is_empty(), "leases left: {:?}", t.leases());
    assert_eq!(iptables_lines("28190"), Vec::<String>::new());
    // Given back: the fixed port can be published again.
    let again = create(&rt, &server(vec![port(8088, Some(28190))])).await;
    rt.stop_container(&again, Duration::from_secs(1))
        .await
        .expect("stop");
    exited(&rt, &again).await;
    rt.remove_container(&again).await.expect("remove");
}

/// A server on every address of the host answering `200 ok` to each
/// connection; counts the connections it accepted.
fn host_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut conn = conn;
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    (port, accepted)
}

/// The host's source address towards the internet, if it has a route there.
fn host_address() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "route", "get", "1.1.1.1"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    words.find(|w| *w == "src")?;
    words.next().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_cannot_open_connections_to_the_node_unless_the_operator_allows_it() {
    use std::sync::atomic::Ordering;
    require_root_and_plugins!();
    let t = TestNet::new(11);
    let (port, accepted) = host_server();
    let gateway = "10.89.11.1".to_owned();
    let targets: Vec<String> = std::iter::once(gateway)
        .chain(host_address())
        .map(|ip| format!("http://{ip}:{port}/"))
        .collect();
    let script = targets
        .iter()
        .map(|u| {
            format!(
                "if wget -q -O /dev/null {u}; then echo REACHED {u}; else echo KEPT OFF {u}; fi"
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let run = |guard: bool| {
        let t = &t;
        let script = script.clone();
        async move {
            let mut net = t.cfg.clone();
            net.guard_node = guard;
            let mut cfg = YoukiConfig::new(t.dir.path().join(format!("runtime-{guard}")));
            cfg.insecure_registries = vec![registry()];
            cfg.cni = Some(net);
            let rt = YoukiRuntime::new(cfg).await.expect("the runtime starts");
            rt.init_node(NODE).await.expect("init node");
            let mut s = spec(config("busybox", &["sh", "-c", &script]));
            s.labels = BTreeMap::from([(NETWORK_LABEL.to_owned(), "bridge".to_owned())]);
            let id = create(&rt, &s).await;
            exited(&rt, &id).await;
            let out: Vec<String> = rt
                .get_container_logs(&id, LogOptions::default())
                .await
                .expect("logs")
                .into_iter()
                .map(|l| l.line)
                .collect();
            rt.remove_container(&id).await.expect("remove");
            rt.shutdown();
            out
        }
    };

    let kept = run(true).await;
    for u in &targets {
        assert!(kept.contains(&format!("KEPT OFF {u}")), "{u}: {kept:?}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the node's port was reached"
    );
    let chain = container_runtime::youki::cni::guard::chain(&t.cfg.bridge);
    assert!(!iptables_lines(&chain).is_empty(), "the guard is in place");

    // The operator relaxes it: the same requests now reach the node, which
    // shows the refusal above was the guard's.
    let reached = run(false).await;
    for u in &targets {
        assert!(
            reached.contains(&format!("REACHED {u}")),
            "{u}: {reached:?}"
        );
    }
    assert!(accepted.load(Ordering::SeqCst) >= targets.len());
    assert_eq!(iptables_lines(&chain), Vec::<String>::new(), "removed");
}
