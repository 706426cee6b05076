//! Scaffolding of the CNI tests: a network of its own per test (subnet
//! 10.89.N.0/24, bridge and network `ucniN`), namespaces under /run/netns,
//! and looks at the host (veths, leases, iptables) to assert cleanup.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use container_runtime::youki::cni::netns::DEFAULT_NETNS_DIR;
use container_runtime::youki::cni::{AttachRequest, CniConfig, NetNs, REQUIRED_PLUGINS};
use tempfile::TempDir;

/// Why these tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("not root".into());
    }
    let dir = Path::new("/usr/lib/cni");
    let missing: Vec<&str> = REQUIRED_PLUGINS
        .iter()
        .copied()
        .filter(|p| !dir.join(p).exists())
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "CNI plugins missing from /usr/lib/cni: {} (apt-get install containernetworking-plugins)",
            missing.join(", ")
        ));
    }
    None
}

/// Returns early from a test, saying why, when it cannot run here.
#[macro_export]
macro_rules! require_root_and_plugins {
    () => {
        if let Some(reason) = cni_common::skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

/// One test's network: its data dir, its config, and cleanup of its bridge
/// and namespaces on drop.
pub struct TestNet {
    pub n: u8,
    pub dir: TempDir,
    pub cfg: CniConfig,
    namespaces: Vec<NetNs>,
}

impl TestNet {
    pub fn new(n: u8) -> Self {
        let dir = TempDir::new().expect("tempdir");
        let subnet = format!("10.89.{n}.0/24").parse().expect("subnet");
        let mut cfg = CniConfig::new(dir.path().join("cni"), subnet);
        cfg.name = format!("ucni{n}");
        cfg.bridge = format!("ucni{n}");
        cfg.plugin_timeout = Duration::from_secs(60);
        // A bridge left by an earlier, interrupted run.
        delete_bridge(&cfg.bridge);
        Self {
            n,
            dir,
            cfg,
            namespaces: Vec::new(),
        }
    }

    /// A namespace of this test (removed on drop if the test does not).
    pub fn netns(&mut self, which: &str) -> NetNs {
        let name = format!("ucni{}-{which}", self.n);
        let dir = Path::new(DEFAULT_NETNS_DIR);
        let stale = NetNs::at(dir, &name).expect("name");
        stale.remove().expect("removing a stale namespace");
        let ns = NetNs::create(dir, &name).expect("creating a namespace");
        self.namespaces.push(ns.clone());
        ns
    }

    /// A request for container `ucniN-WHICH` in `ns`, on eth0.
    pub fn request(&self, which: &str, ns: &NetNs) -> AttachRequest {
        AttachRequest {
            container_id: format!("ucni{}-{which}", self.n),
            netns: ns.path().to_owned(),
            ifname: "eth0".into(),
            port_mappings: Vec::new(),
            warm: false,
        }
    }

    /// host-local's lease files of this network.
    pub fn leases(&self) -> Vec<String> {
        let dir = self.cfg.lease_dir().join(&self.cfg.name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // Not leases: the lock and the allocator's cursor.
            .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
            .collect()
    }

    /// The kept ADD results.
    pub fn kept_results(&self) -> usize {
        std::fs::read_dir(self.cfg.results_dir()).map_or(0, |d| d.count())
    }

    /// Host veths enslaved to this test's bridge.
    pub fn bridge_veths(&self) -> usize {
        let out = run("ip", &["-j", "link", "show", "master", &self.cfg.bridge]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or(serde_json::json!([]));
        v.as_array().map_or(0, |a| a.len())
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Those `attach` made, named after their container ids.
        for which in ["a", "b"] {
            if let Ok(ns) = NetNs::at(
                Path::new(DEFAULT_NETNS_DIR),
                &format!("ucni{}-{which}", self.n),
            ) {
                self.namespaces.push(ns);
            }
        }
        for ns in &self.namespaces {
            if let Err(e) = ns.remove() {
                eprintln!("cleanup: {e}");
            }
        }
        delete_bridge(&self.cfg.bridge);
        // The node guard a runtime on this network set up.
        let bridge = self.cfg.bridge.clone();
        for (from, dir, chain) in [
            ("INPUT", "-i", format!("UNIVRS-IN-{bridge}")),
            ("FORWARD", "-o", format!("UNIVRS-FWD-{bridge}")),
        ] {
            for args in [
                vec!["-w", "-D", from, dir, &bridge, "-j", &chain],
                vec!["-w", "-F", &chain],
                vec!["-w", "-X", &chain],
            ] {
                let _ = Command::new("iptables").args(&args).output();
            }
        }
        // Rules a failed test (or bridge's masquerade, when the namespace
        // went before DEL) left; the tests assert on them before this.
        purge_rules(&format!("name: \\\"{}\\\"", self.cfg.name));
        purge_rules(&format!("10.89.{}.", self.n));
    }
}

/// Chains the plugins share between containers (never deleted here).
const SHARED_CHAINS: [&str; 5] = [
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-SETMARK",
    "CNI-HOSTPORT-MASQ",
    "CNI-FORWARD",
    "CNI-ADMIN",
];

/// Deletes every iptables rule containing `needle`, then the per-container
/// chains those rules were in.
pub fn purge_rules(needle: &str) {
    let mut table = String::new();
    let mut chains = Vec::new();
    for line in run("iptables-save", &[]).lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_owned();
        } else if let Some(rule) = line.strip_prefix("-A ").filter(|_| line.contains(needle)) {
            let cmd = format!("iptables -w -t {table} -D {rule}");
            run("sh", &["-c", &cmd]);
            let chain = rule.split(' ').next().unwrap_or_default();
            if chain.starts_with("CNI-") && !SHARED_CHAINS.contains(&chain) {
                chains.push((table.clone(), chain.to_owned()));
            }
        }
    }
    for (table, chain) in chains {
        run("iptables", &["-w", "-t", &table, "-X", &chain]);
    }
}

fn delete_bridge(name: &str) {
    // Absent already is fine: nothing to report.
    let _ = Command::new("ip").args(["link", "del", name]).output();
}

/// Runs a command and returns its stdout (panics if it cannot start).
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lines of `iptables-save` (all tables) containing `needle`.
pub fn iptables_lines(needle: &str) -> Vec<String> {
    run("iptables-save", &[])
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// The IPv4 addresses on `ifname` inside namespace `ns` (by `ip -n -j addr`).
pub fn addresses_in(ns: &NetNs, ifname: &str) -> Vec<Ipv4Addr> {
    let name = ns
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("a name");
    let out = run("ip", &["-n", &name, "-j", "addr", "show", "dev", ifname]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or(serde_json::json!([]));
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["family"] == "inet")
        .filter_map(|a| a["local"].as_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// Runs `f` on a thread that has entered the namespace at `path` (sockets
/// made there belong to that namespace).
pub fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path: PathBuf = path.to_owned();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("opening the namespace");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// A TCP round trip from namespace `from` to a listener in namespace `to`
/// at `addr`: returns what the client read back.
pub fn tcp_round_trip(to: &NetNs, addr: Ipv4Addr, from: &NetNs) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = in_netns(to.path(), move || {
        let listener = TcpListener::bind((addr, 0)).expect("bind in the server namespace");
        tx.send(listener.local_addr().expect("addr").port())
            .expect("send port");
        let (mut conn, peer) = listener.accept().expect("accept");
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).expect("read");
        conn.write_all(format!("pong from {}", peer.ip()).as_bytes())
            .expect("write");
    });
    let port = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the server's port");
    let client = in_netns(from.path(), move || {
        let mut s =
            TcpStream::connect_timeout(&SocketAddr::from((addr, port)), Duration::from_secs(10))
                .expect("connect through the bridge");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(b"ping").expect("write");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("read");
        reply
    });
    let reply = client.join().expect("client thread");
    server.join().expect("server thread");
    reply
}

/// A reply to `GET /` on `addr`, within 20 s.
pub async fn http_reply(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&reply).into_owned())
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(reply)) if reply.starts_with("HTTP/") => return reply,
            other => assert!(
                std::time::Instant::now() < deadline,
                "{addr} does not answer: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn port(container_port: u32, host_port: Option<u32>) -> orchestrator_shared_types::PortSpec {
    orchestrator_shared_types::PortSpec {
        container_port,
        protocol: "TCP".into(),
        name: None,
        host_port,
    }
}
