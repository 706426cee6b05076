//! The CNI layer on the real plugins (`/usr/lib/cni`, Debian's
//! `containernetworking-plugins`): namespaces, addresses, reachability
//! through the bridge, CHECK, and exact cleanup by DEL.
//!
//! Needs root and the plugins; each test says SKIPPED and why otherwise.
//! Each test has a network of its own (10.89.N.0/24, bridge `ucniN`), so they
//! run in parallel with each other and with the multi-host tests (10.250.x.x).
#![cfg(target_os = "linux")]

#[allow(dead_code)]
mod cni_common;

use std::os::unix::fs::{symlink, PermissionsExt};

use cni_common::*;
use container_runtime::youki::cni::{
    CniConfig, CniError, CniNetwork, NetNs, PortMapping, WarmPool, INSTANCE_IFNAME,
    REQUIRED_PLUGINS,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_get_their_own_addresses_and_talk_through_the_bridge() {
    require_root_and_plugins!();
    let mut t = TestNet::new(1);
    let net = CniNetwork::new(t.cfg.clone()).expect("the plugins are here");
    let (ns_a, ns_b) = (t.netns("a"), t.netns("b"));
    let (req_a, req_b) = (t.request("a", &ns_a), t.request("b", &ns_b));

    let att_a = net.add(&req_a).await.expect("ADD a");
    let att_b = net.add(&req_b).await.expect("ADD b");
    let (ip_a, ip_b) = (
        att_a.ipv4().expect("a has an address"),
        att_b.ipv4().expect("b too"),
    );
    assert_ne!(ip_a, ip_b);
    for (att, ip) in [(&att_a, ip_a), (&att_b, ip_b)] {
        assert!(t.cfg.subnet.contains(ip), "{ip} in {}", t.cfg.subnet);
        assert_eq!(att.ips[0].gateway, Some("10.89.1.1".parse().expect("ip")));
    }
    // The addresses are really on eth0 inside each namespace.
    assert_eq!(addresses_in(&ns_a, "eth0"), [ip_a]);
    assert_eq!(addresses_in(&ns_b, "eth0"), [ip_b]);
    assert_eq!(t.bridge_veths(), 2);

    // b connects to a through the bridge, and a sees b's own address.
    let reply = tcp_round_trip(&ns_a, ip_a, &ns_b);
    assert_eq!(reply, format!("pong from {ip_b}"));

    net.check(&req_a)
        .await
        .expect("CHECK of a healthy attachment");
    net.check(&req_b).await.expect("CHECK of b");

    for req in [&req_a, &req_b] {
        net.del(req).await.expect("DEL");
    }
    assert_eq!(t.bridge_veths(), 0);
    assert!(t.leases().is_empty(), "leases left: {:?}", t.leases());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn del_leaves_no_veth_lease_rule_or_namespace_and_can_be_repeated() {
    require_root_and_plugins!();
    let mut t = TestNet::new(2);
    let net = CniNetwork::new(t.cfg.clone()).expect("the plugins are here");
    let ns = t.netns("a");
    let mut req = t.request("a", &ns);
    req.port_mappings = vec![PortMapping {
        host_port: 18602,
        container_port: 80,
        protocol: "tcp".into(),
    }];

    let att = net.add(&req).await.expect("ADD");
    let ip = att.ipv4().expect("an address");
    let ip_rule = format!("{ip}/32");
    assert_eq!(t.bridge_veths(), 1);
    assert_eq!(t.leases(), [ip.to_string()]);
    assert_eq!(t.kept_results(), 1);
    // bridge's masquerade and portmap's DNAT carry the container id;
    // firewall's rules name the address.
    assert!(!iptables_lines(&req.container_id).is_empty());
    assert!(iptables_lines("--dport 18602")
        .iter()
        .any(|l| l.contains("DNAT") || l.contains("CNI-DN")));
    assert!(!iptables_lines(&ip_rule).is_empty());
    net.check(&req).await.expect("CHECK");

    net.del(&req).await.expect("DEL");
    assert_eq!(t.bridge_veths(), 0, "no veth left on the bridge");
    assert!(t.leases().is_empty(), "leases left: {:?}", t.leases());
    assert_eq!(iptables_lines(&req.container_id), Vec::<String>::new());
    assert_eq!(iptables_lines(&ip_rule), Vec::<String>::new());
    assert_eq!(iptables_lines("--dport 18602"), Vec::<String>::new());
    assert_eq!(t.kept_results(), 0);
    // Only lo is left in the namespace.
    assert!(addresses_in(&ns, "eth0").is_empty());

    net.del(&req).await.expect("a second DEL succeeds");
    match net.check(&req).await {
        Err(CniError::NotAttached { .. }) => {}
        other => panic!("CHECK after DEL must say not attached, got {other:?}"),
    }
    ns.remove().expect("removing the namespace");
    assert!(!ns.exists() && !ns.path().exists());
    ns.remove().expect("removing it twice");
    net.del(&req)
        .await
        .expect("DEL after the namespace is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn del_after_the_namespace_is_gone_still_removes_lease_and_rules() {
    require_root_and_plugins!();
    let mut t = TestNet::new(3);
    let net = CniNetwork::new(t.cfg.clone()).expect("the plugins are here");
    let ns = t.netns("a");
    let req = t.request("a", &ns);
    let ip = net
        .add(&req)
        .await
        .expect("ADD")
        .ipv4()
        .expect("an address");
    ns.remove().expect("removing the namespace first");
    assert!(!ns.exists());
    // (The veth ends with the namespace, but the kernel frees a namespace
    // asynchronously: its count is not asserted here.)

    net.del(&req)
        .await
        .expect("DEL tolerates a missing namespace");
    assert!(t.leases().is_empty(), "leases left: {:?}", t.leases());
    // firewall's rules go too: DEL hands it the kept result.
    assert_eq!(
        iptables_lines(&format!("{ip}/32 -j ACCEPT")),
        Vec::<String>::new()
    );
    assert_eq!(t.kept_results(), 0);
    // bridge 1.1.1 finds its masquerade rules through the interface in the
    // namespace, and leaves them when the namespace went first; DEL removes
    // them after it.
    assert_eq!(iptables_lines(&req.container_id), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_plugin_is_named_and_leaves_nothing_behind() {
    require_root_and_plugins!();
    let mut t = TestNet::new(4);
    let bin = t.dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    for p in REQUIRED_PLUGINS.iter().filter(|p| **p != "firewall") {
        symlink(format!("/usr/lib/cni/{p}"), bin.join(p)).expect("symlink");
    }
    t.cfg.bin_dir = bin.clone();
    match CniNetwork::new(t.cfg.clone()) {
        Err(CniError::PluginsMissing { missing, dir }) => {
            assert_eq!(missing, ["firewall"]);
            assert_eq!(dir, bin);
        }
        other => panic!("the daemon's start-up check must name firewall, got {other:?}"),
    }

    // Run anyway: ADD gets as far as firewall, then undoes the rest.
    let cfg: CniConfig = t.cfg.clone();
    let net = CniNetwork::with_list(cfg.config_list(), cfg).expect("directories");
    let ns = t.netns("a");
    let req = t.request("a", &ns);
    let err = net.add(&req).await.expect_err("firewall is missing");
    assert!(err.to_string().contains("firewall"), "{err}");
    assert_nothing_left(&t, &ns, &req.container_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_refusing_its_config_is_named_with_its_message_and_nothing_is_left() {
    require_root_and_plugins!();
    let t = TestNet::new(5);
    // portmap runs after bridge has made the veth, the lease and the
    // masquerade rules: all of them must be undone.
    let mut list = t.cfg.config_list();
    list["plugins"][1]["snat"] = "yes".into();
    let net = CniNetwork::with_list(list, t.cfg.clone()).expect("directories");
    let ns = NetNs::at(&t.cfg.netns_dir, "ucni5-a").expect("name");
    match net.attach("ucni5-a", Vec::new()).await {
        Err(CniError::Plugin { plugin, msg, .. }) => {
            assert_eq!(plugin, "portmap");
            assert!(msg.contains("snat"), "{msg}");
        }
        other => panic!("expected portmap's error JSON, got {other:?}"),
    }
    assert!(
        !ns.exists() && !ns.path().exists(),
        "the namespace is removed"
    );
    assert_nothing_left(&t, &ns, "ucni5-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_detach_make_and_remove_the_namespace_with_the_attachment() {
    require_root_and_plugins!();
    let t = TestNet::new(6);
    let net = CniNetwork::new(t.cfg.clone()).expect("the plugins are here");
    let ports = vec![PortMapping {
        host_port: 18606,
        container_port: 8080,
        protocol: "tcp".into(),
    }];
    let inst = net.attach("ucni6-a", ports).await.expect("attach");
    let ip = inst.attachment.ipv4().expect("an address");
    assert!(inst.netns.exists());
    assert_eq!(inst.netns.path(), t.cfg.netns_dir.join("ucni6-a"));
    assert_eq!(addresses_in(&inst.netns, INSTANCE_IFNAME), [ip]);
    assert!(!iptables_lines("--dport 18606").is_empty());
    net.check_instance("ucni6-a").await.expect("CHECK");
    // The same name cannot be attached twice, and the first is untouched.
    net.attach("ucni6-a", Vec::new()).await.expect_err("taken");
    assert_eq!(addresses_in(&inst.netns, INSTANCE_IFNAME), [ip]);

    // CHECK notices a broken attachment and names the plugin.
    run(
        "ip",
        &["-n", "ucni6-a", "addr", "flush", "dev", INSTANCE_IFNAME],
    );
    match net.check_instance("ucni6-a").await {
        Err(CniError::Plugin { plugin, msg, .. }) => {
            assert_eq!(plugin, "bridge");
            assert!(msg.contains(&ip.to_string()), "{msg}");
        }
        other => panic!("CHECK must fail once the address is gone, got {other:?}"),
    }

    net.detach("ucni6-a").await.expect("detach");
    assert!(!inst.netns.exists() && !inst.netns.path().exists());
    assert_nothing_left(&t, &inst.netns, "ucni6-a");
    assert_eq!(iptables_lines("--dport 18606"), Vec::<String>::new());
    assert_eq!(iptables_lines(&format!("{ip}/32")), Vec::<String>::new());
    net.detach("ucni6-a").await.expect("detach twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_daemon_death_gc_removes_what_is_not_kept_even_halfway_through_add() {
    require_root_and_plugins!();
    let mut t = TestNet::new(7);
    // A chain whose last plugin hangs, so that ADD can be cut off halfway
    // (bridge and portmap done), as a daemon killed then would leave it.
    let bin = t.dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    for p in REQUIRED_PLUGINS {
        symlink(format!("/usr/lib/cni/{p}"), bin.join(p)).expect("symlink");
    }
    // It says it started through a FIFO, then hangs.
    let started = bin.join("started");
    nix::unistd::mkfifo(&started, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let hang = bin.join("hang");
    let script = format!(
        "#!/bin/sh\necho started > {}\nexec sleep 600\n",
        started.display()
    );
    std::fs::write(&hang, script).expect("write");
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    t.cfg.bin_dir = bin;

    let net = CniNetwork::new(t.cfg.clone()).expect("the plugins are here");
    let kept = net.attach("ucni7-a", Vec::new()).await.expect("attach a");
    let mut list = t.cfg.config_list();
    list["plugins"][2]["type"] = "hang".into();
    let cut = CniNetwork::with_list(list, t.cfg.clone()).expect("dirs");
    // ADD is dropped (its plugin killed) once the hanging plugin runs.
    let reader = tokio::task::spawn_blocking(move || std::fs::read_to_string(&started));
    tokio::select! {
        r = cut.attach("ucni7-b", Vec::new()) => panic!("ADD must hang, got {r:?}"),
        said = reader => assert_eq!(said.expect("join").expect("read the FIFO"), "started\n"),
    }
    assert_eq!(
        t.leases().len(),
        2,
        "bridge gave b its lease before the cut"
    );
    assert_eq!(t.bridge_veths(), 2);

    // The restarted daemon: a new CniNetwork on the same data dir.
    let net = CniNetwork::new(t.cfg.clone()).expect("reopen");
    let listed: Vec<String> = net
        .attachments()
        .expect("list")
        .into_iter()
        .map(|r| r.container_id)
        .collect();
    assert_eq!(listed, ["ucni7-a", "ucni7-b"]);
    let detached = net.gc(|id| id == "ucni7-a").await.expect("gc");
    assert_eq!(detached, ["ucni7-b"]);
    let b = NetNs::at(&t.cfg.netns_dir, "ucni7-b").expect("name");
    assert!(
        !b.exists() && !b.path().exists(),
        "b's namespace is removed"
    );
    assert_eq!(t.bridge_veths(), 1);
    assert_eq!(iptables_lines("ucni7-b"), Vec::<String>::new());
    let ip_a = kept.attachment.ipv4().expect("a's address");
    assert_eq!(t.leases(), [ip_a.to_string()]);
    // a is untouched, and cannot be attached twice.
    net.check_instance("ucni7-a").await.expect("a still CHECKs");
    let req_a = t.request("a", &kept.netns);
    match net.add(&req_a).await {
        Err(CniError::AlreadyAttached { .. }) => {}
        other => panic!("a second ADD must be refused, got {other:?}"),
    }
    net.check_instance("ucni7-a")
        .await
        .expect("a still CHECKs after the refusal");
    net.detach("ucni7-a").await.expect("detach a");
    assert_nothing_left(&t, &kept.netns, "ucni7-a");
}

fn assert_nothing_left(t: &TestNet, ns: &NetNs, container_id: &str) {
    assert_eq!(t.bridge_veths(), 0, "no veth left");
    assert!(t.leases().is_empty(), "leases left: {:?}", t.leases());
    assert_eq!(iptables_lines(container_id), Vec::<String>::new());
    assert_eq!(t.kept_results(), 0);
    assert!(addresses_in(ns, "eth0").is_empty());
}

fn warm_id() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "ucni12-w{}",
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

/// Waits (up to 30 s) until the pool has `n` attachments ready.
async fn ready(pool: &WarmPool, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = pool.ready();
        if ready.len() == n || std::time::Instant::now() > deadline {
            assert_eq!(ready.len(), n, "warm attachments ready");
            return ready;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The kept records marked warm.
fn warm_records(t: &TestNet) -> usize {
    std::fs::read_dir(t.cfg.results_dir())
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter(|v| v["warm"] == serde_json::json!(true))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_attachments_are_made_ahead_taken_once_given_ports_and_leave_nothing() {
    require_root_and_plugins!();
    let t = TestNet::new(12);
    let net = std::sync::Arc::new(CniNetwork::new(t.cfg.clone()).expect("the plugins are here"));
    let pool = WarmPool::new(net.clone(), 2, warm_id);
    pool.fill();
    let made = ready(&pool, 2).await;
    assert_eq!((t.bridge_veths(), t.leases().len()), (2, 2));
    assert_eq!(warm_records(&t), 2, "both records say warm");

    // Taken: it is an ordinary attachment under its id, and the pool refills.
    let id = pool.take().expect("one is ready");
    assert!(made.contains(&id));
    let inst = net.attached(&id).expect("the taken attachment");
    let ip = inst.attachment.ipv4().expect("an address");
    assert!(t.cfg.subnet.contains(ip));
    assert_eq!(addresses_in(&inst.netns, INSTANCE_IFNAME), [ip]);
    let refilled = ready(&pool, 2).await;
    assert!(!refilled.contains(&id), "never handed out twice");
    assert_eq!(warm_records(&t), 2);
    assert_eq!(t.bridge_veths(), 3);

    // Its ports are published by a second ADD of portmap, and CHECK passes.
    assert!(iptables_lines("--dport 18612").is_empty());
    let ports = vec![PortMapping {
        host_port: 18612,
        container_port: 8080,
        protocol: "tcp".into(),
    }];
    net.publish(&id, ports).await.expect("publish");
    assert!(!iptables_lines("--dport 18612").is_empty());
    net.check_instance(&id).await.expect("CHECK with the ports");

    // DEL removes the ports with the rest.
    net.detach(&id).await.expect("detach");
    assert!(!inst.netns.exists());
    assert_eq!(iptables_lines("--dport 18612"), Vec::<String>::new());
    assert_eq!(iptables_lines(&format!("{ip}/32")), Vec::<String>::new());
    assert_eq!(iptables_lines(&id), Vec::<String>::new());

    // A daemon that dies leaves its pool; the next one's gc removes it.
    drop(pool);
    let reopened = CniNetwork::new(t.cfg.clone()).expect("reopen");
    let mut left = reopened.gc(|_| false).await.expect("gc");
    left.sort();
    let mut want = refilled.clone();
    want.sort();
    assert_eq!(left, want);
    assert_eq!(
        (t.bridge_veths(), t.leases().len(), t.kept_results()),
        (0, 0, 0)
    );

    // Drained: nothing is left, and nothing is made any more.
    let pool = WarmPool::new(std::sync::Arc::new(reopened), 2, warm_id);
    pool.fill();
    let made = ready(&pool, 2).await;
    pool.drain().await;
    pool.fill();
    assert!(pool.take().is_none(), "a drained pool hands out nothing");
    assert_eq!(
        (t.bridge_veths(), t.leases().len(), t.kept_results()),
        (0, 0, 0)
    );
    for id in made {
        assert_eq!(iptables_lines(&id), Vec::<String>::new());
        assert!(!NetNs::at(&t.cfg.netns_dir, &id)
            .expect("name")
            .path()
            .exists());
    }
}
