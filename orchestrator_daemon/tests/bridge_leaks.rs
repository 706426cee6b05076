//! Bridge networking leaves nothing behind (issue 16, "No leaks"): a real
//! `orchestrator_daemon` process (youki runtime, SQLite, images from the
//! test registry; root and the CNI plugins, as CI has) creates and deletes
//! 100 bridged instances with a published port each — 20 rounds of a
//! workload of 5 replicas — then is killed with SIGKILL while two instances
//! run, and restarted on the same data directory. After every step the
//! node's veths on the bridge, address leases, iptables rules and network
//! namespaces are counted, and every iptables rule and chain listed: each
//! count is back to its baseline once the instances are gone, with no rule
//! or chain added, exactly what two instances need while they run, and
//! unchanged by the kill and restart, after which the two still answer at
//! their addresses and on their published ports.
//!
//! It has a file of its own so that no other test's containers share the
//! node's bridge while it counts.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use container_runtime::youki::cni::{CniConfig, CniNetwork};
use ed25519_dalek::SigningKey;
use orchestrator_api::client::ApiClient;
use orchestrator_shared_types::{InstanceStatus, WorkloadInstance};

#[path = "multihost_common/warm.rs"]
mod warm;

const BRIDGE: &str = "univrs0";
const NETWORK: &str = "univrs";

fn registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

fn admin() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What bridge networking has made on the node, counted; the iptables
/// rules and chains as a set of lines (packet counters left out).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Counts {
    veths: usize,
    leases: usize,
    rules: std::collections::BTreeSet<String>,
    namespaces: usize,
}

impl Counts {
    /// What the instances made: the node's warm attachments
    /// (`--warm-networks`) are left out, once all are made.
    fn now(data_dir: &Path) -> Self {
        let warm = warm::settled(&[data_dir], orchestrator_daemon::DEFAULT_WARM_NETWORKS);
        let veths = run("ip", &["-o", "link", "show", "master", BRIDGE])
            .lines()
            .count()
            .saturating_sub(warm.ids.len());
        let leases = std::fs::read_dir(data_dir.join("runtime/cni/leases").join(NETWORK))
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .parse::<std::net::Ipv4Addr>()
                            .is_ok_and(|ip| !warm.ips.contains(&ip))
                    })
                    .count()
            })
            .unwrap_or(0);
        // Every rule and chain of every table (the plugins', the owners').
        let saved = run("iptables-save", &[]);
        let rules = saved
            .lines()
            .filter(|l| l.starts_with("-A ") || l.starts_with(':'))
            .filter(|l| !warm.owns(&saved, l))
            .map(|l| match l.split_once(' ') {
                // `:CHAIN POLICY [packets:bytes]`: the chain and policy only.
                Some((chain, rest)) if l.starts_with(':') => {
                    format!("{chain} {}", rest.split(' ').next().unwrap_or(""))
                }
                _ => l.to_owned(),
            })
            .collect();
        let namespaces = std::fs::read_dir("/run/netns")
            .map(|d| {
                d.flatten()
                    .filter(|e| !warm.ids.contains(&*e.file_name().to_string_lossy()))
                    .count()
            })
            .unwrap_or(0);
        Self {
            veths,
            leases,
            rules,
            namespaces,
        }
    }

    /// Whether nothing was added to `want` and nothing of ours is missing:
    /// the same veths, leases and namespaces, and no rule or chain that
    /// `want` did not have. (Rules of `want` may have gone: other tests'
    /// left-overs are cleaned up by others; a leak is an addition.)
    fn settled_at(&self, want: &Counts) -> bool {
        (self.veths, self.leases, self.namespaces) == (want.veths, want.leases, want.namespaces)
            && self.rules.is_subset(&want.rules)
    }

    /// The rules and chains here that `want` does not have.
    fn added(&self, want: &Counts) -> Vec<String> {
        self.rules.difference(&want.rules).cloned().collect()
    }
}

struct Node {
    daemon: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    gossip_port: u16,
    child: Option<Child>,
}

impl Node {
    fn new() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let gossip_port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            daemon: PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon")),
            dir: tempfile::tempdir().unwrap(),
            port,
            gossip_port,
            child: None,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn start(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let admin =
            base64::engine::general_purpose::STANDARD.encode(admin().verifying_key().to_bytes());
        let child = Command::new(&self.daemon)
            .args(["--runtime", "youki", "--store", "sqlite", "--data-dir"])
            .arg(self.data_dir())
            .args(["--api-addr", &format!("127.0.0.1:{}", self.port)])
            .args(["--gossip-addr", &format!("127.0.0.1:{}", self.gossip_port)])
            .args(["--node-cpu", "4", "--node-memory", "8Gi"])
            .args(["--admin-key", &admin])
            .args(["--insecure-registry", &registry()])
            .env("RUST_LOG", "info,chitchat=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting orchestrator_daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = self.client();
            let up = tokio::task::spawn_blocking(move || c.list_workloads().is_ok())
                .await
                .unwrap();
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not come up: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, like pulling the plug.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn client(&self) -> ApiClient {
        ApiClient::new(&format!("http://127.0.0.1:{}", self.port), Some(admin())).unwrap()
    }

    async fn create(&self, manifest: String) {
        let c = self.client();
        tokio::task::spawn_blocking(move || {
            c.create_workload("application/yaml", manifest.as_bytes())
                .unwrap()
        })
        .await
        .unwrap();
    }

    async fn delete(&self, name: &str) {
        let c = self.client();
        let n = name.to_owned();
        tokio::task::spawn_blocking(move || c.delete_workload(&n).unwrap())
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = self.client();
            let n = name.to_owned();
            if tokio::task::spawn_blocking(move || c.get_workload(&n).is_err())
                .await
                .unwrap()
            {
                return;
            }
            assert!(Instant::now() < deadline, "{name} is not gone");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn instances(&self, name: &str) -> Vec<WorkloadInstance> {
        let c = self.client();
        let n = name.to_owned();
        tokio::task::spawn_blocking(move || {
            c.list_instances(&n).map(|p| p.data).unwrap_or_default()
        })
        .await
        .unwrap()
    }

    /// `n` instances of `name` running, each with its address and port.
    async fn running(&self, name: &str, n: usize) -> Vec<WorkloadInstance> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let all = self.instances(name).await;
            let up: Vec<WorkloadInstance> = all
                .iter()
                .filter(|i| {
                    i.status == InstanceStatus::Running && i.address.is_some() && i.ports.len() == 1
                })
                .cloned()
                .collect();
            if up.len() == n {
                return up;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {n} running wanted, have {all:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Node {
    /// Kills the daemon, then removes what a failed test would leave on the
    /// machine: its containers' processes, and their networks (DEL of every
    /// kept attachment, as a restarted daemon would).
    fn drop(&mut self) {
        self.kill();
        let runtime = self.data_dir().join("runtime");
        for entry in std::fs::read_dir(runtime.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let record = std::fs::read(entry.path().join("record.json")).unwrap_or_default();
            let pid = serde_json::from_slice::<serde_json::Value>(&record)
                .ok()
                .and_then(|r| r["pid"].as_i64());
            if let Some(pid) = pid {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let cfg = CniConfig::new(runtime.join("cni"), "10.88.0.0/24".parse().unwrap());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            if let Ok(net) = CniNetwork::new(cfg) {
                let _ = rt.block_on(net.gc(|_| false));
            }
        })
        .join()
        .ok();
    }
}

/// A workload of `replicas` bridged instances publishing one port; `server`
/// answers HTTP there, else the process only waits. Both end at SIGTERM.
fn manifest(name: &str, replicas: u32, server: bool) -> String {
    let run = if server {
        "trap 'exit 0' TERM; busybox httpd -f -p 8088 & wait"
    } else {
        "trap 'exit 0' TERM; sleep 3600 & wait"
    };
    format!(
        "name: {name}\nreplicas: {replicas}\nlabels: {{univrs.io/network: bridge}}\ncontainers:\n\
         - name: main\n  image: {}/test/busybox:1\n  command: [sh, -c, \"{run}\"]\n\
         \x20 ports: [{{container_port: 8088}}]\n  resources: {{requests: {{cpu: 10m, memory: 8Mi}}}}\n\
         restart_policy: Always\n",
        registry()
    )
}

/// Waits (up to 60 s) for the counts to settle at `want`, then asserts
/// they did, naming any rule or chain added.
async fn settle(data: &Path, want: &Counts, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Counts::now(data).settled_at(want) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = Counts::now(data);
    assert!(
        now.settled_at(want),
        "{what}: veths/leases/namespaces {:?} (want {:?}); rules or chains added: {:#?}",
        (now.veths, now.leases, now.namespaces),
        (want.veths, want.leases, want.namespaces),
        now.added(want)
    );
}

async fn answers(addr: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(reply.starts_with(b"HTTP/"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

async fn answers_within(addr: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !answers(addr).await {
        assert!(Instant::now() < deadline, "{addr} does not answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_instances_and_a_kill_minus_nine_leave_nothing_behind() {
    if container_runtime::youki::cni::check_plugins(Path::new("/usr/lib/cni")).is_err()
        || container_runtime::youki::preflight().is_err()
    {
        eprintln!("SKIPPED: needs root, cgroups and the CNI plugins (containernetworking-plugins)");
        return;
    }
    let mut node = Node::new();
    node.start().await;
    let data = node.data_dir();

    // One round first, so that the chains the plugins share between
    // instances (made by the first ADD, kept by design) are in the baseline.
    let before = Counts::now(&data);
    node.create(manifest("cycle", 1, false)).await;
    node.running("cycle", 1).await;
    node.delete("cycle").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut baseline = Counts::now(&data);
    while (baseline.veths, baseline.leases, baseline.namespaces)
        != (before.veths, 0, before.namespaces)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        baseline = Counts::now(&data);
    }
    assert_eq!(
        (baseline.veths, baseline.leases, baseline.namespaces),
        (before.veths, 0, before.namespaces),
        "the first round left nothing"
    );

    for round in 0..20 {
        node.create(manifest("cycle", 5, false)).await;
        let up = node.running("cycle", 5).await;
        let during = Counts::now(&data);
        assert_eq!(
            (during.veths, during.leases, during.namespaces),
            (baseline.veths + 5, 5, baseline.namespaces + 5),
            "round {round}: {up:?}"
        );
        node.delete("cycle").await;
        settle(&data, &baseline, &format!("after round {round}")).await;
    }

    // Two servers, then the plug pulled while they run.
    node.create(manifest("web", 2, true)).await;
    let before = node.running("web", 2).await;
    for i in &before {
        let address = i.address.clone().unwrap();
        answers_within(&format!("{address}:8088"), Duration::from_secs(20)).await;
        answers_within(
            &format!("127.0.0.1:{}", i.ports[0].host_port),
            Duration::from_secs(20),
        )
        .await;
    }
    // The owners' rules across nodes follow the control plane's directory,
    // a moment after the instances run: wait for both instances there.
    let deadline = Instant::now() + Duration::from_secs(20);
    // This node's chain (earlier runs left chains of other node ids).
    let chain = format!("-A UNIVRS-XD-uwg-{} ", &before[0].node_id.to_hex()[..9]);
    let in_directory = |rules: &std::collections::BTreeSet<String>| {
        before.iter().all(|i| {
            let to = format!(
                "-d {}/32 -j UNIVRS-XO-",
                i.address.clone().unwrap_or_default()
            );
            rules
                .iter()
                .any(|r| r.starts_with(&chain) && r.contains(&to))
        })
    };
    while !in_directory(&Counts::now(&data).rules) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let running = Counts::now(&data);
    assert!(
        in_directory(&running.rules),
        "the owners' rules across nodes name both instances"
    );
    assert_eq!(
        (running.veths, running.leases),
        (baseline.veths + 2, 2),
        "{running:?}"
    );
    assert_eq!(running.namespaces, baseline.namespaces + 2);

    node.kill();
    node.start().await;
    let after = node.running("web", 2).await;
    let key = |is: &[WorkloadInstance]| {
        let mut k: Vec<_> = is
            .iter()
            .map(|i| (i.id, i.address.clone(), i.ports.clone(), i.restarts))
            .collect();
        k.sort_by_key(|x| x.0.to_string());
        k
    };
    assert_eq!(
        key(&after),
        key(&before),
        "the same two instances, adopted with their addresses and ports"
    );
    settle(&data, &running, "nothing added or lost by the restart").await;
    let now = Counts::now(&data);
    let lost = running.added(&now);
    assert!(
        lost.is_empty(),
        "rules of the running instances lost by the restart: {lost:#?}"
    );
    for i in &after {
        let address = i.address.clone().unwrap();
        assert!(answers(&format!("{address}:8088")).await, "{address}");
        assert!(
            answers(&format!("127.0.0.1:{}", i.ports[0].host_port)).await,
            "{:?}",
            i.ports
        );
    }

    node.delete("web").await;
    settle(&data, &baseline, "after the restart and delete").await;
}
