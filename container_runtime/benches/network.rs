//! Instance-to-instance traffic on one node (issue 16's benchmarks): TCP
//! round-trip latency (1-byte ping-pong) and throughput (64 KiB writes)
//! between two network namespaces attached to a bridge network by the CNI
//! plugins — the path two bridged instances on one node take: veth, bridge,
//! the plugins' iptables rules — against the baseline measured in the same
//! run: two namespaces joined directly by a veth pair.
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
}
