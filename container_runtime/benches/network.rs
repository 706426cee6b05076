//! Instance-to-instance traffic (issue 16's benchmarks): TCP round-trip
//! latency (1-byte ping-pong) and throughput (64 KiB writes)
//! - on one node: between two network namespaces attached to a bridge
//!   network by the CNI plugins — the path two bridged instances on one node
//!   take: veth, bridge, the plugins' iptables rules;
//! - across nodes: between an instance on each of two "hosts" (network
//!   namespaces joined by a veth pair, each with its own bridge network and
//!   its end of the encrypted overlay: WireGuard by boringtun, as the daemon
//!   runs it);
//!
//! against the baseline measured in the same run: two namespaces joined
//! directly by a veth pair (the two hosts themselves).
//!
//! Needs root and Debian's containernetworking-plugins.
//!
//! Run: `cargo bench -p container_runtime --features youki --bench network`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use container_runtime::youki::cni::overlay::{x25519, Overlay, OverlayPeer, OverlaySettings};
use container_runtime::youki::cni::{check_plugins, CniConfig, CniNetwork, NetNs};
use nix::sched::{setns, CloneFlags};

const ROUND_TRIPS: usize = 20_000;
const BULK_BYTES: usize = 512 << 20;
const PORT: u16 = 5201;

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `f` on a thread inside the network namespace at `ns`.
fn in_ns<T: Send + 'static>(
    ns: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let file = std::fs::File::open(ns).unwrap();
    std::thread::spawn(move || {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

/// A TCP server at `addr` in `server_ns` and a client in `client_ns`: the
/// round trips sorted, and the bulk throughput in Gbit/s.
fn measure(server_ns: &Path, client_ns: &Path, addr: Ipv4Addr) -> (Vec<Duration>, f64) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_ns(server_ns, move || {
        let listener = TcpListener::bind((addr, PORT)).unwrap();
        ready_tx.send(()).unwrap();
        // Ping-pong, then bulk.
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        for _ in 0..ROUND_TRIPS {
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        }
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0;
        while got < BULK_BYTES {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the bulk sender stopped early");
            got += n;
        }
        s.write_all(b"k").unwrap();
    });
    ready_rx.recv().unwrap();
    let client = in_ns(client_ns, move || {
        let to = SocketAddr::from((addr, PORT));
        let mut s = TcpStream::connect(to).unwrap();
        s.set_nodelay(true).unwrap();
        let mut rtts = Vec::with_capacity(ROUND_TRIPS);
        let mut b = [7u8; 1];
        for _ in 0..ROUND_TRIPS {
            let t = Instant::now();
            s.write_all(&b).unwrap();
            s.read_exact(&mut b).unwrap();
            rtts.push(t.elapsed());
        }
        let mut s = TcpStream::connect(to).unwrap();
        let chunk = vec![1u8; 64 << 10];
        let t = Instant::now();
        let mut sent = 0;
        while sent < BULK_BYTES {
            s.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        s.read_exact(&mut b).unwrap();
        let gbits = (BULK_BYTES as f64 * 8.0) / t.elapsed().as_secs_f64() / 1e9;
        rtts.sort();
        (rtts, gbits)
    });
    let result = client.join().unwrap();
    server.join().unwrap();
    result
}

/// One host of the cross-node case: in the network namespace `host`, a
/// bridge network over `subnet` with one instance, and the host's end of the
/// overlay, kept until `done` is dropped; sends back the instance's
/// namespace and address, and the overlay's public key.
struct HostEnd {
    instance: std::path::PathBuf,
    addr: Ipv4Addr,
    public: [u8; 32],
    peers: std::sync::mpsc::Sender<Vec<OverlayPeer>>,
    thread: std::thread::JoinHandle<()>,
}

fn host_end(host: &'static str, tag: &'static str, subnet: &str, seed: u8, dir: &Path) -> HostEnd {
    let (tx, rx) = std::sync::mpsc::channel();
    let (peers_tx, peers_rx) = std::sync::mpsc::channel::<Vec<OverlayPeer>>();
    let subnet: container_runtime::youki::cni::Ipv4Subnet = subnet.parse().unwrap();
    let dir = dir.join(tag);
    let thread = in_ns(&Path::new("/run/netns").join(host), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut cfg = CniConfig::new(dir, subnet);
        cfg.name = format!("ubench{tag}");
        cfg.bridge = format!("ubenchbr{tag}");
        cfg.mtu = Some(container_runtime::youki::cni::overlay::OVERLAY_MTU);
        let net = CniNetwork::new(cfg.clone()).unwrap();
        let id = format!("ubench-x{tag}");
        let inst = rt.block_on(net.attach(&id, Vec::new())).unwrap();
        let secret = [seed; 32];
        let public = x25519::PublicKey::from(&x25519::StaticSecret::from(secret)).to_bytes();
        let overlay = rt
            .block_on(Overlay::start(
                OverlaySettings {
                    device: format!("uwg-bench{tag}"),
                    subnet,
                    cidr: "10.87.0.0/16".parse().unwrap(),
                    port: 51820,
                    isolate_owners: false,
                },
                secret,
            ))
            .unwrap();
        tx.send((
            inst.netns.path().to_owned(),
            inst.attachment.ipv4().unwrap(),
            public,
        ))
        .unwrap();
        // The peers, then (the channel closed) the end.
        while let Ok(peers) = peers_rx.recv() {
            rt.block_on(overlay.apply(&peers)).unwrap();
        }
        drop(overlay);
        rt.block_on(net.detach(&id)).unwrap();
        let _ = Command::new("ip")
            .args(["link", "del", &cfg.bridge])
            .output();
    });
    let (instance, addr, public) = rx.recv().unwrap();
    HostEnd {
        instance,
        addr,
        public,
        peers: peers_tx,
        thread,
    }
}

/// Round trips and throughput between instances on two hosts (the
/// namespaces `a` and `b`, at `a_ip` and `b_ip`) over the overlay.
fn across_nodes(
    dir: &Path,
    (a, a_ip): (&'static str, Ipv4Addr),
    (b, b_ip): (&'static str, Ipv4Addr),
) -> (Vec<Duration>, f64) {
    let one = host_end(a, "a", "10.87.1.0/24", 11, dir);
    let two = host_end(b, "b", "10.87.2.0/24", 22, dir);
    one.peers
        .send(vec![OverlayPeer {
            public_key: two.public,
            endpoint: SocketAddr::from((b_ip, 51820)),
            subnet: "10.87.2.0/24".parse().unwrap(),
        }])
        .unwrap();
    two.peers
        .send(vec![OverlayPeer {
            public_key: one.public,
            endpoint: SocketAddr::from((a_ip, 51820)),
            subnet: "10.87.1.0/24".parse().unwrap(),
        }])
        .unwrap();
    // Routes are in once the peers' `apply` ran: wait for a connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe_addr = one.addr;
    let reached = in_ns(&two.instance, move || loop {
        let l = in_ns_probe(probe_addr);
        if l || Instant::now() > deadline {
            return l;
        }
        std::thread::sleep(Duration::from_millis(50));
    });
    let _ = reached.join();
    let result = measure(&one.instance, &two.instance, one.addr);
    for end in [one, two] {
        drop(end.peers);
        end.thread.join().unwrap();
    }
    result
}

/// Whether anything answers (accept or refuse) at `addr`, port 9 (a refusal
/// proves the path: the overlay forwards, the instance answers RST).
fn in_ns_probe(addr: Ipv4Addr) -> bool {
    match TcpStream::connect_timeout(&SocketAddr::from((addr, 9)), Duration::from_millis(300)) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e6
}

fn report(what: &str, rtts: &[Duration], gbits: f64) {
    println!(
        "{what}: round trip p50 {:.1} us, p99 {:.1} us; throughput {gbits:.2} Gbit/s",
        pct(rtts, 0.5),
        pct(rtts, 0.99)
    );
}

fn main() {
    if check_plugins(Path::new("/usr/lib/cni")).is_err() || !nix::unistd::Uid::effective().is_root()
    {
        println!("instance-to-instance network: not measured (needs root and the CNI plugins)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Baseline: two namespaces and a veth pair between them.
    let netns_dir = Path::new("/run/netns");
    let (base_a, base_b) = ("ubench-base-a", "ubench-base-b");
    for ns in [base_a, base_b] {
        let _ = NetNs::at(netns_dir, ns).unwrap().remove();
    }
    let a = NetNs::create(netns_dir, base_a).unwrap();
    let b = NetNs::create(netns_dir, base_b).unwrap();
    sh(&[
        "ip", "link", "add", "ubvetha", "netns", base_a, "type", "veth", "peer", "name", "ubvethb",
        "netns", base_b,
    ]);
    for (ns, ifname, ip) in [
        (base_a, "ubvetha", "10.85.0.1/24"),
        (base_b, "ubvethb", "10.85.0.2/24"),
    ] {
        sh(&["ip", "-n", ns, "addr", "add", ip, "dev", ifname]);
        sh(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    let (base_rtt, base_gbits) = measure(a.path(), b.path(), Ipv4Addr::new(10, 85, 0, 1));
    // The same two namespaces as two hosts, each with an instance, the
    // instances talking over the encrypted overlay.
    let (cross_rtt, cross_gbits) = across_nodes(
        dir.path(),
        (base_a, Ipv4Addr::new(10, 85, 0, 1)),
        (base_b, Ipv4Addr::new(10, 85, 0, 2)),
    );

    // Two instances' namespaces on a bridge network of the CNI plugins.
    let mut cfg = CniConfig::new(dir.path().join("cni"), "10.86.0.0/24".parse().unwrap());
    cfg.name = "ubenchnet".into();
    cfg.bridge = "ubenchbr0".into();
    let net = CniNetwork::new(cfg.clone()).unwrap();
    let one = rt.block_on(net.attach("ubench-one", Vec::new())).unwrap();
    let two = rt.block_on(net.attach("ubench-two", Vec::new())).unwrap();
    let server_ip = one.attachment.ipv4().unwrap();
    let (bridge_rtt, bridge_gbits) = measure(one.netns.path(), two.netns.path(), server_ip);

    for id in ["ubench-one", "ubench-two"] {
        rt.block_on(net.detach(id)).unwrap();
    }
    a.remove().unwrap();
    b.remove().unwrap();
    let _ = Command::new("ip")
        .args(["link", "del", &cfg.bridge])
        .output();

    println!(
        "instance-to-instance TCP on one node, {ROUND_TRIPS} round trips of 1 byte, {} MiB bulk:",
        BULK_BYTES >> 20
    );
    report(
        "  two namespaces on a veth pair (baseline)",
        &base_rtt,
        base_gbits,
    );
    report(
        "  two bridged instances (CNI bridge + portmap + firewall)",
        &bridge_rtt,
        bridge_gbits,
    );
    println!(
        "  bridge / baseline: round trip p50 {:.2}x, throughput {:.2}x",
        pct(&bridge_rtt, 0.5) / pct(&base_rtt, 0.5),
        bridge_gbits / base_gbits
    );
    report(
        "  two instances on two hosts, over the encrypted overlay (WireGuard, boringtun)",
        &cross_rtt,
        cross_gbits,
    );
    println!(
        "  across nodes / baseline (the two hosts' own namespaces): round trip p50 {:.2}x, throughput {:.2}x",
        pct(&cross_rtt, 0.5) / pct(&base_rtt, 0.5),
        cross_gbits / base_gbits
    );
}
