//! Warm bridge attachments on real containers (`CniConfig::warm`, the
//! daemon's `--warm-networks`): a container takes one with its id, gets its
//! owner's rules before it runs and is Ready only once its published ports
//! are in place, and one whose ports cannot be published is killed. A
//! drain while attachments are being made leaves nothing once it returns.
//!
//! Needs root, the CNI plugins (skipped with the reason otherwise), cgroups
//! and the test registry (`./scripts/test-registry start`, as `youki.rs`).
#![cfg(target_os = "linux")]

#[allow(dead_code)]
mod cni_common;
mod youki_common;

use std::collections::BTreeMap;
use std::time::Duration;

use cni_common::*;
use container_runtime::youki::cni::NetNs;
use container_runtime::youki::{YoukiConfig, YoukiRuntime, NETWORK_LABEL};
use container_runtime_interface::ContainerRuntime;
use youki_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_takes_a_warm_attachment_with_its_owner_rules_and_ports_and_leaves_nothing() {
    use orchestrator_shared_types::ports::OWNER_LABEL;
    require_root_and_plugins!();
    let mut t = TestNet::new(13);
    t.cfg.warm = 1;
    t.cfg.host_port_range = 41300..=41309;
    let mut cfg = YoukiConfig::new(t.dir.path().join("runtime"));
    cfg.insecure_registries = vec![registry()];
    cfg.cni = Some(t.cfg.clone());
    let rt = YoukiRuntime::new(cfg).await.expect("the runtime starts");
    rt.init_node(NODE).await.expect("init node");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rt.warm_ready().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let warm = rt.warm_ready();
    assert_eq!(warm.len(), 1, "one attachment made ahead");

    let mut c = config("busybox", &["busybox", "httpd", "-f", "-p", "8088"]);
    c.ports = vec![port(8088, None)];
    let mut s = spec(c);
    s.labels = BTreeMap::from([
        (NETWORK_LABEL.to_owned(), "bridge".to_owned()),
        (OWNER_LABEL.to_owned(), "13".repeat(32)),
    ]);
    let id = create(&rt, &s).await;
    assert_eq!(
        id.as_str(),
        warm[0],
        "the container took the warm attachment's id"
    );
    let status = rt.get_container_status(&id).await.expect("status");
    let address = status.address.clone().expect("an address");
    assert_eq!(status.ports.len(), 1);
    // Its owner's rule was in place before it ran, and its port answers.
    let owner_rules = |dir: &str| {
        iptables_lines(&format!("{dir} {address}/32"))
            .iter()
            .filter(|l| l.contains("UNIVRS-O-"))
            .count()
    };
    assert_eq!(
        (owner_rules("-s"), owner_rules("-d")),
        (1, 1),
        "its owner's rules for {address}"
    );
    // Ready only once its port is published (no probe: nothing else to wait for).
    let ready = wait_status(&rt, &id, "ready", |s| s.ready).await;
    assert!(
        !iptables_lines(&format!("--dport {}", ready.ports[0].host_port)).is_empty(),
        "Ready before its port was published"
    );
    http_reply(&format!("{address}:8088")).await;
    http_reply(&format!("127.0.0.1:{}", status.ports[0].host_port)).await;

    // Removed: nothing of it is left; the pool has made another.
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .expect("stop");
    exited(&rt, &id).await;
    rt.remove_container(&id).await.expect("remove");
    assert!(!NetNs::at(&t.cfg.netns_dir, id.as_str())
        .expect("name")
        .path()
        .exists());
    assert_eq!(iptables_lines(id.as_str()), Vec::<String>::new());
    assert_eq!(
        iptables_lines(&format!("{address}/32")),
        Vec::<String>::new()
    );
    assert_eq!(
        iptables_lines(&format!("--dport {}", status.ports[0].host_port)),
        Vec::<String>::new()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rt.warm_ready().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = rt.warm_ready();
    assert_eq!(next.len(), 1);
    assert_ne!(next[0], id.as_str());
    rt.drain_warm().await;
    assert_eq!(
        (t.bridge_veths(), t.leases().len(), t.kept_results()),
        (0, 0, 0)
    );
    assert!(!NetNs::at(&t.cfg.netns_dir, &next[0])
        .expect("name")
        .path()
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_whose_ports_cannot_be_published_is_killed_never_ready_and_leaves_nothing() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    require_root_and_plugins!();
    let mut t = TestNet::new(14);
    t.cfg.host_port_range = 41400..=41409;
    // The real plugins, but a portmap that refuses to publish any port.
    let bin = t.dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    for p in container_runtime::youki::cni::REQUIRED_PLUGINS {
        if p != "portmap" {
            symlink(format!("/usr/lib/cni/{p}"), bin.join(p)).expect("symlink");
        }
    }
    let portmap = bin.join("portmap");
    std::fs::write(
        &portmap,
        "#!/bin/sh\nconf=$(cat)\ncase \"$CNI_COMMAND:$conf\" in\n  ADD:*hostPort*) \
         echo '{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"no ports today\"}'; exit 1;;\nesac\n\
         printf '%s' \"$conf\" | exec /usr/lib/cni/portmap\n",
    )
    .expect("write");
    std::fs::set_permissions(&portmap, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    t.cfg.bin_dir = bin;
    let mut cfg = YoukiConfig::new(t.dir.path().join("runtime"));
    cfg.insecure_registries = vec![registry()];
    cfg.cni = Some(t.cfg.clone());
    let rt = YoukiRuntime::new(cfg).await.expect("the runtime starts");
    rt.init_node(NODE).await.expect("init node");

    let mut c = config("busybox", &["sleep", "3600"]);
    c.ports = vec![port(8088, None)];
    let mut s = spec(c);
    s.labels = BTreeMap::from([(NETWORK_LABEL.to_owned(), "bridge".to_owned())]);
    let mut statuses = rt.subscribe_status();
    let id = create(&rt, &s).await;
    let gone = exited(&rt, &id).await;
    assert_eq!(
        gone.reason.as_deref(),
        Some("PortsNotPublished"),
        "{gone:?}"
    );
    while let Ok(s) = statuses.try_recv() {
        assert!(!s.ready, "never Ready: {s:?}");
    }
    rt.remove_container(&id).await.expect("remove");
    assert_eq!(
        (t.bridge_veths(), t.leases().len(), t.kept_results()),
        (0, 0, 0)
    );
    assert_eq!(iptables_lines(id.as_str()), Vec::<String>::new());
    assert!(!NetNs::at(&t.cfg.netns_dir, id.as_str())
        .expect("name")
        .path()
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_while_attachments_are_made_leaves_nothing_once_it_returns() {
    require_root_and_plugins!();
    let mut t = TestNet::new(15);
    t.cfg.warm = 2;
    let mut cfg = YoukiConfig::new(t.dir.path().join("runtime"));
    cfg.cni = Some(t.cfg.clone());
    let rt = YoukiRuntime::new(cfg).await.expect("the runtime starts");
    rt.init_node(NODE).await.expect("init node");
    // The pool is being filled: stop now, as a daemon that exits at once.
    rt.drain_warm().await;
    // (This network's own: the namespaces' directory is the host's.)
    assert_eq!(
        (t.bridge_veths(), t.leases().len(), t.kept_results()),
        (0, 0, 0),
        "veths, address leases and kept results left once the drain returned"
    );
}
