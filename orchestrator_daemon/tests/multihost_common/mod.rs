//! Hosts for multi-node tests and benchmarks: each host is a network
//! namespace with its own address, joined to the others by a bridge in a
//! "switch" namespace (so the machine's own firewall never sees the traffic),
//! and runs a real `orchestrator_daemon` (mock runtime, SQLite). The test
//! process reaches every host from the root namespace through one more port
//! on that bridge.
//!
//! A host can be killed (SIGKILL, like pulling its plug), restarted with the
//! same data directory (same node key), cut off the network (its switch port
//! goes down) and healed, and given random packet loss on its network link
//! (iptables `statistic` on `eth0` inside the host: the kernel here has no
//! netem).
//!
//! Gossip is sealed: every host reads the lab's gossip key file (one fresh
//! key, mode 600) unless given another ([`Lab::set_key_file`]), and re-reads
//! it on SIGHUP ([`Lab::hup`]).
//!
//! Needs root and `ip`/`iptables` (Debian: iproute2, iptables); CI runs as root.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod capture;
pub mod operators;
#[path = "../../../tests/support/holding.rs"]
#[allow(dead_code)] // Only the lab tests of secrets search disks.
pub mod search;
pub mod ui;
pub mod warm;
pub mod youki;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::Utc;
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::auth::{
    sign_request, Payload, HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use serde_json::Value;

/// API port of every host (each has its own address).
pub const API_PORT: u16 = 9090;
/// Gossip port of every host.
pub const GOSSIP_PORT: u16 = 7946;

/// Writes a gossip key file of `keys` (the first primary), mode 600.
pub fn write_key_file(path: &Path, keys: &[&cluster_manager::GossipKey]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = File::options()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .unwrap();
    for k in keys {
        writeln!(f, "{}", k.to_base64().as_str()).unwrap();
    }
    drop(f);
    // Renamed into place, so a daemon re-reading it never sees half a file.
    std::fs::rename(&tmp, path).unwrap();
}

/// Runs a command and panics with its output if it fails.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!("running {args:?}: {e} (the multi-host tests need root, iproute2 and iptables)")
        });
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command, ignoring failure (clean-up of what may not exist).
fn sh_quiet(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// One host.
pub struct Host {
    pub ns: String,
    pub ip: String,
    /// Its port on the switch (down = partitioned).
    port: String,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
    /// Its `--gossip-key-file`.
    key_file: PathBuf,
    /// Started without a join token (a stranger, or host 0).
    no_token: bool,
    /// Its store flags, when not `--store sqlite`.
    store: Option<Vec<String>>,
}

impl Host {
    pub fn api(&self) -> String {
        format!("http://{}:{API_PORT}", self.ip)
    }
    pub fn gossip(&self) -> String {
        format!("{}:{GOSSIP_PORT}", self.ip)
    }
}

/// A set of hosts on one private network.
pub struct Lab {
    tag: String,
    switch: String,
    root_port: String,
    pub hosts: Vec<Host>,
    daemon: PathBuf,
    _dir: tempfile::TempDir,
    /// The gossip key file every host reads unless told otherwise.
    pub key_file: PathBuf,
    pub key: SigningKey,
    pub http: reqwest::Client,
    /// `--runtime` of every host (default `mock`).
    pub runtime: &'static str,
}

impl Lab {
    /// `n` hosts on 10.250.`net`.0/24, named after `tag` (2–3 characters,
    /// unique per concurrently running lab, as is `net`). Host 0 is the
    /// control plane; the others are workers seeded on it. Nothing is started.
    pub fn new(tag: &str, net: u8, n: usize, daemon: &Path) -> Self {
        assert!(tag.len() <= 3 && n <= 9);
        let dir = tempfile::tempdir().unwrap();
        let switch = format!("{tag}sw");
        let root_port = format!("{tag}r0");
        let key_file = dir.path().join("gossip.keys");
        write_key_file(&key_file, &[&cluster_manager::GossipKey::generate()]);
        let mut lab = Self {
            key_file,
            tag: tag.to_owned(),
            switch: switch.clone(),
            root_port: root_port.clone(),
            hosts: Vec::new(),
            daemon: daemon.to_owned(),
            key: SigningKey::from_bytes(&[net; 32]),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            _dir: dir,
            runtime: "mock",
        };
        lab.clean();
        sh(&["ip", "netns", "add", &switch]);
        sh(&["ip", "-n", &switch, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &switch, "link", "set", "br0", "up"]);
        sh(&["ip", "-n", &switch, "link", "set", "lo", "up"]);
        // The test process's own port on the switch.
        let peer = format!("{tag}r1");
        sh(&[
            "ip", "link", "add", &root_port, "type", "veth", "peer", "name", &peer,
        ]);
        sh(&["ip", "link", "set", &peer, "netns", &switch]);
        sh(&[
            "ip", "-n", &switch, "link", "set", &peer, "master", "br0", "up",
        ]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("10.250.{net}.1/24"),
            "dev",
            &root_port,
        ]);
        sh(&["ip", "link", "set", &root_port, "up"]);
        for i in 0..n {
            let ns = format!("{tag}h{i}");
            let port = format!("{tag}p{i}");
            let ip = format!("10.250.{net}.{}", 10 + i);
            sh(&["ip", "netns", "add", &ns]);
            sh(&[
                "ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &switch,
            ]);
            sh(&[
                "ip", "-n", &switch, "link", "set", &port, "master", "br0", "up",
            ]);
            sh(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            let data_dir = lab._dir.path().join(format!("host{i}"));
            std::fs::create_dir_all(&data_dir).unwrap();
            lab.hosts.push(Host {
                ns,
                ip,
                port,
                log: lab._dir.path().join(format!("host{i}.log")),
                data_dir,
                child: None,
                extra_args: Vec::new(),
                key_file: lab.key_file.clone(),
                no_token: false,
                store: None,
            });
        }
        lab
    }

    fn clean(&self) {
        // The namespaces of attachments the killed daemons kept (their warm
        // ones, `--warm-networks`, and any a failed test left): their veths
        // go with the hosts' namespaces below.
        for h in &self.hosts {
            let results = h.data_dir.join("runtime/cni/results");
            for entry in std::fs::read_dir(results).into_iter().flatten().flatten() {
                let record = std::fs::read(entry.path()).unwrap_or_default();
                if let Some(id) = serde_json::from_slice::<serde_json::Value>(&record)
                    .ok()
                    .and_then(|r| r["container_id"].as_str().map(str::to_owned))
                {
                    sh_quiet(&["ip", "netns", "del", &id]);
                }
            }
        }
        for i in 0..10 {
            sh_quiet(&["ip", "netns", "del", &format!("{}h{i}", self.tag)]);
        }
        sh_quiet(&["ip", "netns", "del", &self.switch]);
        sh_quiet(&["ip", "link", "del", &self.root_port]);
    }

    /// The data directory of host `i` (node key, state), kept across restarts.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.hosts[i].data_dir
    }

    /// Extra daemon flags for host `i` (before it starts).
    pub fn set_args(&mut self, i: usize, args: &[&str]) {
        self.hosts[i].extra_args = args.iter().map(|s| (*s).to_owned()).collect();
    }

    /// Host `i` starts without a join token, as a stranger would (give it
    /// `--seed` and `--cluster-id` with [`Lab::set_args`]).
    pub fn set_no_token(&mut self, i: usize) {
        self.hosts[i].no_token = true;
    }

    /// Host `i` keeps its state as `args` say (e.g. `--store etcd …`),
    /// not in SQLite; it starts without a join token.
    pub fn set_store(&mut self, i: usize, args: &[&str]) {
        self.hosts[i].store = Some(args.iter().map(|s| (*s).to_owned()).collect());
        self.hosts[i].no_token = true;
    }

    /// Host `i` reads its gossip keys from `path` (before it starts).
    pub fn set_key_file(&mut self, i: usize, path: &Path) {
        self.hosts[i].key_file = path.to_owned();
    }

    /// A path for a file of the lab's (removed with it).
    pub fn path(&self, name: &str) -> PathBuf {
        self._dir.path().join(name)
    }

    /// Sends SIGHUP to host `i`'s daemon (it re-reads its gossip key file).
    pub fn hup(&self, i: usize) {
        self.signal(i, nix::sys::signal::Signal::SIGHUP);
    }

    /// Sends `signal` to host `i`'s daemon.
    pub fn signal(&self, i: usize, signal: nix::sys::signal::Signal) {
        let child = self.hosts[i].child.as_ref().expect("host runs");
        // `ip netns exec` execs the daemon: the child is the daemon.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// Starts the daemon of host `i` (again, after a kill: same data dir).
    pub fn start(&mut self, i: usize) {
        assert!(self.hosts[i].child.is_none(), "host {i} already runs");
        // Every start of a joining host presents a fresh token; a host that
        // joined before finds its identity in its data directory and does
        // not use it.
        let token = (i > 0 && !self.hosts[i].no_token).then(|| self.join_token());
        let h = &mut self.hosts[i];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&h.log)
            .unwrap();
        // `ip netns exec` mounts a sysfs of the namespace, without the
        // cgroup tree a real runtime needs; nsenter changes only the network.
        let mut cmd = if self.runtime == "mock" {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &h.ns]);
            c
        } else {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{}", h.ns)).arg("--");
            c
        };
        let sqlite = vec!["--store".to_owned(), "sqlite".to_owned()];
        cmd.arg(&self.daemon)
            .args(["--runtime", self.runtime])
            .args(h.store.as_ref().unwrap_or(&sqlite))
            .arg("--data-dir")
            .arg(&h.data_dir)
            .args(["--api-addr", &format!("{}:{API_PORT}", h.ip)])
            .args(["--gossip-addr", &h.gossip()])
            .arg("--gossip-key-file")
            .arg(&h.key_file)
            .args(["--node-cpu", "4", "--node-memory", "8Gi"])
            .args(["--label", &format!("host=h{i}")])
            .args([
                "--admin-key",
                &B64.encode(self.key.verifying_key().to_bytes()),
            ]);
        if let Some(token) = &token {
            cmd.args(["--join", token]);
        }
        cmd.args(&h.extra_args)
            .env("RUST_LOG", "info,chitchat=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        h.child = Some(
            cmd.spawn()
                .expect("starting orchestrator_daemon in a namespace"),
        );
    }

    /// A join token from host 0 (`orchestrator_daemon join-token` in its
    /// namespace), retried until its daemon answers.
    pub fn join_token(&self) -> String {
        let h0 = &self.hosts[0];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = Command::new("ip")
                .args(["netns", "exec", &h0.ns])
                .arg(&self.daemon)
                .arg("join-token")
                .arg("--data-dir")
                .arg(&h0.data_dir)
                .args(["--api-addr", &format!("{}:{API_PORT}", h0.ip)])
                .output()
                .expect("running orchestrator_daemon join-token");
            if out.status.success() {
                return String::from_utf8(out.stdout).unwrap().trim().to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no join token from host 0: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Kills host `i`'s daemon at once (SIGKILL) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.hosts[i].child.take() {
            // A stopped process is continued first, so that it dies now.
            let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Cuts host `i` off the network.
    pub fn partition(&self, i: usize) {
        sh(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "set",
            &self.hosts[i].port,
            "down",
        ]);
    }

    /// Reconnects host `i`.
    pub fn heal(&self, i: usize) {
        sh(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "set",
            &self.hosts[i].port,
            "up",
        ]);
    }

    /// Drops `percent` % of the packets every host receives.
    pub fn loss(&self, percent: u32) {
        let p = format!("{:.2}", f64::from(percent) / 100.0);
        for h in &self.hosts {
            sh(&[
                "ip",
                "netns",
                "exec",
                &h.ns,
                "iptables",
                "-A",
                "INPUT",
                // The network only: loopback never loses packets, and the
                // sealed gossip's codec pairs live on it.
                "-i",
                "eth0",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ]);
        }
    }

    /// Removes the packet loss.
    pub fn no_loss(&self) {
        for h in &self.hosts {
            sh(&["ip", "netns", "exec", &h.ns, "iptables", "-F", "INPUT"]);
        }
    }

    /// The last lines of host `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.hosts[i].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Host `i`'s audience, from its unsigned `GET /api/v1/info`.
    pub async fn audience(&self, i: usize) -> Option<String> {
        let url = format!("{}/api/v1/info", self.hosts[i].api());
        let info: Value = self.http.get(&url).send().await.ok()?.json().await.ok()?;
        info["audience"].as_str().map(str::to_owned)
    }

    /// A signed request to host `i`'s API, for the audience it reports;
    /// `(status, json)` or `None` if it cannot be reached.
    pub async fn call(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Option<(u16, Value)> {
        self.call_as(&self.key, i, method, path, body).await
    }

    /// [`Lab::call`], signed by `key`.
    pub async fn call_as(
        &self,
        key: &SigningKey,
        i: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Option<(u16, Value)> {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let audience = self.audience(i).await?;
        let s = sign_request(
            key,
            &Payload::new(method, path, &bytes, &audience),
            Utc::now(),
        );
        let url = format!("{}{path}", self.hosts[i].api());
        let mut req = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                &url,
            )
            .header(HEADER_PUBLIC_KEY, s.public_key)
            .header(HEADER_TIMESTAMP, s.timestamp)
            .header(HEADER_SIGNATURE, s.signature);
        if body.is_some() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        let resp = req.send().await.ok()?;
        let status = resp.status().as_u16();
        let text = resp.text().await.ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// A GET that must answer 200.
    pub async fn get(&self, i: usize, path: &str) -> Option<Value> {
        match self.call(i, "GET", path, None).await {
            Some((200, v)) => Some(v),
            _ => None,
        }
    }

    /// Host `i`'s `/metrics` value of `name` (first series), if reachable.
    pub async fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let url = format!("{}/metrics", self.hosts[i].api());
        let text = self.http.get(&url).send().await.ok()?.text().await.ok()?;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits until host `i` answers `/health`.
    pub async fn wait_up(&self, i: usize, deadline: Duration) {
        let url = format!("{}/health", self.hosts[i].api());
        let http = self.http.clone();
        eventually(deadline, &format!("host {i} answers /health"), || {
            let http = http.clone();
            let url = url.clone();
            async move {
                http.get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- host {i} log:\n{}", self.log_tail(i, 40)));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..self.hosts.len() {
            if let Some(mut c) = self.hosts[i].child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.clean();
    }
}

/// Polls `check` every 50 ms until it holds; `Err` after `deadline`.
pub async fn eventually<F, Fut>(
    deadline: Duration,
    what: &str,
    mut check: F,
) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Ok(start.elapsed());
        }
        if start.elapsed() > deadline {
            return Err(format!("timed out after {deadline:?} waiting until {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
