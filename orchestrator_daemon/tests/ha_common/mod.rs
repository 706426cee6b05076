//! Control planes sharing one etcd (`--store etcd`), run as real daemon
//! processes, and what the HA tests and benchmark ask of them.
//!
//! The etcd cluster is named by `UNIVRS_TEST_ETCD` (`scripts/test-etcd
//! start`); every group of control planes gets a fresh key prefix.

#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use orchestrator_api::client::ApiClient;
use orchestrator_api::NetworkStatus;

pub const BIN: &str = env!("CARGO_BIN_EXE_orchestrator_daemon");
/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The etcd endpoints, or `None` after saying why the test is skipped.
pub fn endpoints() -> Option<String> {
    match std::env::var("UNIVRS_TEST_ETCD") {
        Ok(list) if !list.trim().is_empty() => Some(list),
        _ => {
            eprintln!("SKIPPED: UNIVRS_TEST_ETCD is not set (scripts/test-etcd start)");
            None
        }
    }
}

/// Quotas out of the way of 1,000 workloads of one owner (the write tests
/// and the leader benchmark).
pub const ROOMY: [&str; 8] = [
    "--quota-workloads",
    "1000000",
    "--quota-replicas",
    "1000000",
    "--quota-cpu",
    "100000",
    "--quota-memory",
    "100000Gi",
];

/// The user who drives the API in the tests.
pub fn user() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// One control-plane daemon process.
pub struct ControlPlane {
    pub child: Child,
    pub data: PathBuf,
    pub log: PathBuf,
    /// Its API address, once it listens.
    pub addr: String,
    pub node_id: String,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // SIGCONT first: a stopped process does not die of SIGKILL until
        // it runs again on some kernels' accounting of the test's wait.
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A group of control planes on one etcd prefix.
pub struct Group {
    pub endpoints: String,
    pub prefix: String,
    pub dir: tempfile::TempDir,
    pub planes: Vec<ControlPlane>,
    pub lease_ttl: &'static str,
}

impl Drop for Group {
    fn drop(&mut self) {
        // A failed test shows what the control planes said.
        if std::thread::panicking() {
            for i in 0..self.planes.len() {
                let log = self.log_of(i);
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("=== control plane {i} (last 60 lines)");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

impl Group {
    /// A group on a fresh prefix.
    pub fn new(endpoints: String, lease_ttl: &'static str) -> Self {
        let prefix = format!("/univrs-test-ha/{}", uuid::Uuid::new_v4());
        Self::on_prefix(endpoints, lease_ttl, prefix)
    }

    /// A group on `prefix`, which may hold state already (a migration's).
    pub fn on_prefix(endpoints: String, lease_ttl: &'static str, prefix: String) -> Self {
        Self {
            endpoints,
            prefix,
            dir: tempfile::tempdir().expect("a temporary directory"),
            planes: Vec::new(),
            lease_ttl,
        }
    }

    /// Starts one more control plane (mock runtime) and waits until it
    /// listens; `extra` arguments are added.
    pub fn start(&mut self, extra: &[&str]) -> usize {
        let i = self.planes.len();
        let mut args: Vec<String> = ["--store", "etcd", "--etcd-endpoints", &self.endpoints]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend(["--etcd-prefix".into(), self.prefix.clone()]);
        args.extend(["--lease-ttl".into(), self.lease_ttl.into()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let plane = spawn(self.dir.path(), &format!("cp{i}"), &args);
        self.planes.push(plane);
        i
    }

    /// The leader every live control plane names, once they agree and it
    /// is one of them.
    pub fn agreed_leader(&self, live: &[usize]) -> usize {
        wait_for("the control planes to agree on a leader", || {
            let mut named = None;
            for &i in live {
                let l = network(&self.planes[i].addr).ok()?.leader?;
                match named {
                    None => named = Some(l.node_id.to_string()),
                    Some(ref n) if *n == l.node_id.to_string() => {}
                    Some(_) => return None,
                }
            }
            let named = named?;
            // A dead leader stays named until its lease expires.
            let at = self.planes.iter().position(|p| p.node_id == named)?;
            live.contains(&at).then_some(at)
        })
    }

    pub fn log_of(&self, i: usize) -> String {
        std::fs::read_to_string(&self.planes[i].log).unwrap_or_default()
    }

    pub fn signal(&self, i: usize, signal: &str) {
        let ok = Command::new("kill")
            .args([
                &format!("-{signal}"),
                &self.planes[i].child.id().to_string(),
            ])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} of control plane {i}");
    }

    /// kill -9, and reaped.
    pub fn kill(&mut self, i: usize) {
        let p = &mut self.planes[i];
        p.child.kill().expect("kill -9");
        p.child.wait().expect("reaping");
    }
}

/// Starts a daemon (mock runtime, API on a free loopback port) named
/// `name` under `dir` with `args`, and waits until it listens.
pub fn spawn(dir: &std::path::Path, name: &str, args: &[String]) -> ControlPlane {
    let data = dir.join(name);
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).expect("the log file");
    let err = file.try_clone().expect("the log file");
    let mut child = Command::new(BIN)
        .args(["--runtime", "mock", "--api-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .expect("starting orchestrator_daemon");
    let addr = wait_for(&format!("{name} listening"), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited ({status}) before listening:\n{text}");
        }
        text.lines()
            .find_map(|l| l.split("listening on http://").nth(1))
            .map(|a| a.split_whitespace().next().unwrap_or(a).to_owned())
    });
    let info = client(&addr).info().expect("GET /api/v1/info");
    ControlPlane {
        child,
        data,
        log,
        addr,
        node_id: info.node_id,
    }
}

/// A signing client of the API at `addr`.
pub fn client(addr: &str) -> ApiClient {
    ApiClient::new(&format!("http://{addr}"), Some(user())).expect("an API client")
}

pub fn network(addr: &str) -> Result<NetworkStatus, String> {
    client(addr)
        .network_status()
        .map(|r| r.data)
        .map_err(|e| e.to_string())
}

/// Polls `check` until it returns something, failing after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A workload manifest of `replicas` of a small image (mock runtime).
pub fn manifest(name: &str, replicas: u32) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "name": name,
        "replicas": replicas,
        "containers": [{"name": "main", "image": "busybox:latest",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
    }))
    .expect("JSON")
}

/// How many of `name`'s instances run, as the control plane at `addr` says.
pub fn running(addr: &str, name: &str) -> Option<(usize, Vec<String>)> {
    let reply = client(addr).list_instances(name).ok()?;
    let running: Vec<String> = reply
        .data
        .iter()
        .filter(|i| i.status == orchestrator_shared_types::InstanceStatus::Running)
        .map(|i| i.node_id.to_string())
        .collect();
    Some((running.len(), running))
}

/// One etcd member process, killed when dropped.
pub struct Member {
    pub child: Child,
    pub client_url: String,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A three-member etcd of a test's own under `dir`, as scripts/test-etcd
/// runs it (election timeout 600 ms): clients reach it at `client_host`
/// (loopback, or the test's address on a lab's bridge), the members talk
/// among themselves on loopback.
pub fn etcd_cluster(dir: &std::path::Path, client_host: &str) -> Vec<Member> {
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let initial: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
        .collect();
    ports
        .iter()
        .enumerate()
        .map(|(i, (client, peer))| {
            let client_url = format!("http://{client_host}:{client}");
            let log = std::fs::File::create(dir.join(format!("etcd-m{i}.log"))).expect("log");
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}")])
                .arg("--data-dir")
                .arg(dir.join(format!("m{i}")))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-token", "univrs-ha-etcd-member"])
                .args(["--initial-cluster-state", "new"])
                .args(["--heartbeat-interval", "100", "--election-timeout", "600"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("starting etcd");
            Member { child, client_url }
        })
        .collect()
}

/// The index of the member of `urls` that leads etcd's raft, once one does
/// (panics after `deadline`).
pub async fn etcd_leader(urls: &[String], deadline: Duration) -> usize {
    let start = Instant::now();
    loop {
        for (i, url) in urls.iter().enumerate() {
            let options = etcd_client::ConnectOptions::new()
                .with_connect_timeout(Duration::from_millis(500))
                .with_timeout(Duration::from_secs(1));
            let Ok(mut c) = etcd_client::Client::connect([url.as_str()], Some(options)).await
            else {
                continue;
            };
            let Ok(s) = c.status().await else { continue };
            if s.leader() != 0 && s.leader() == s.header().map(|h| h.member_id()).unwrap_or(0) {
                return i;
            }
        }
        assert!(
            start.elapsed() < deadline,
            "etcd at {urls:?} elected no leader in {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The revision etcd is at now.
pub async fn revision(etcd: &mut etcd_client::Client) -> i64 {
    etcd.get(
        "/",
        Some(
            etcd_client::GetOptions::new()
                .with_keys_only()
                .with_limit(1),
        ),
    )
    .await
    .expect("etcd get")
    .header()
    .expect("a header")
    .revision()
}

/// Every value put under `prefix/` after revision `from`, up to now: the
/// watch replays the history from `from + 1`; a sentinel key written now
/// beside the prefix (`prefix-sentinel`, outside the store's range) marks
/// where the replay has caught up.
pub async fn puts_since(
    etcd: &mut etcd_client::Client,
    prefix: &str,
    from: i64,
) -> Vec<serde_json::Value> {
    let sentinel = format!("{prefix}-sentinel");
    etcd.put(sentinel.as_str(), "now", None)
        .await
        .expect("etcd put");
    let mut stream = etcd
        .watch(
            prefix,
            Some(
                etcd_client::WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(from + 1),
            ),
        )
        .await
        .expect("etcd watch");
    let mut out = Vec::new();
    loop {
        let resp = tokio::time::timeout(DEADLINE, stream.message())
            .await
            .expect("the history within the deadline")
            .expect("etcd watch")
            .expect("a watch response");
        for e in resp.events() {
            let Some(kv) = e.kv() else { continue };
            if kv.key() == sentinel.as_bytes() {
                return out;
            }
            if e.event_type() == etcd_client::EventType::Put {
                if let Ok(v) = serde_json::from_slice(kv.value()) {
                    out.push(v);
                }
            }
        }
    }
}
