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
