//! REST API benchmark, against the real daemon binary on loopback:
//! - signed `GET /api/v1/workloads`: requests per second and latency
//!   percentiles from a Rust load generator (keep-alive connections), beside
//!   unsigned `GET /healthz` on the same daemon as the baseline;
//! - the daemon's resident memory idle and with 10,000 instances (mock
//!   runtime), and idle with the default youki runtime (only as root, since
//!   that runtime needs cgroups; skipped with a message otherwise).
//!
//! Run: `cargo bench -p orchestrator_daemon --bench api` (SQLite, the default;
//! `UNIVRS_STORE=memory` in the environment measures the in-memory store).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::auth::{sign_request, Payload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RUN_FOR: Duration = Duration::from_secs(5);

struct Daemon {
    child: Child,
    addr: String,
    /// What requests are signed for (`GET /api/v1/info`), asked on first
    /// use: the idle figures are read before the daemon serves any request.
    audience: std::sync::OnceLock<String>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn audience(&self) -> String {
        self.audience
            .get_or_init(|| fetch_audience(&self.addr).expect("GET /api/v1/info"))
            .clone()
    }
}

/// The audience of the daemon at `addr`, from its unsigned `GET /api/v1/info`.
fn fetch_audience(addr: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    conn.write_all(b"GET /api/v1/info HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    conn.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let info: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{e}: {text}"))?;
    info["audience"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no audience in {text}"))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator_daemon"));
    cmd.args(["--runtime", "mock", "--api-addr", "127.0.0.1:0"])
        .args(["--node-cpu", "4000", "--node-memory", "16Ti"])
        // One key fills 1,000 workloads × 10 replicas of 100m and 32Mi:
        // per-owner quotas sized to that (the defaults would refuse it).
        .args(["--quota-workloads", "1000", "--quota-replicas", "10000"])
        .args([
            "--quota-cpu",
            "1000",
            "--quota-memory",
            "320Gi",
            "--data-dir",
        ])
        .arg(dir.path());
    spawn_daemon(cmd, dir).expect("starting the daemon")
}

/// Starts `cmd` (a daemon using `dir`) and waits until its API listens; the
/// error is the daemon's last lines of output when it exits before that.
fn spawn_daemon(mut cmd: Command, dir: tempfile::TempDir) -> Result<Daemon, String> {
    let mut child = cmd
        .env("RUST_LOG", "warn,orchestrator_rest=info")
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning the daemon: {e}"))?;
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut said = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.wait();
            return Err(said.join("\n"));
        };
        if let Some(i) = line.find("listening on http://") {
            break line[i + "listening on http://".len()..].trim().to_owned();
        }
        said.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Daemon {
        child,
        addr,
        audience: std::sync::OnceLock::new(),
        _dir: dir,
    })
}

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A daemon with the default (youki) runtime, or why there is none.
fn start_youki_daemon() -> Result<Daemon, String> {
    if !is_root() {
        return Err("not root (the youki runtime needs root and cgroups)".into());
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator_daemon"));
    cmd.args(["--api-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path());
    spawn_daemon(cmd, dir)
}

/// `(VmRSS, RssAnon, RssFile)` of `pid`, in KiB.
fn rss_split_kib(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends one HTTP/1.1 request on a keep-alive connection; returns the status and body.
async fn request(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    method: &str,
    path: &str,
    body: &[u8],
    key: Option<(&SigningKey, &str)>,
) -> (u16, Vec<u8>) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: bench\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    if let Some((k, audience)) = key {
        let h = sign_request(k, &Payload::new(method, path, body, audience), Utc::now());
        head.push_str(&format!(
            "x-auth-publickey: {}\r\nx-auth-timestamp: {}\r\nx-auth-signature: {}\r\n",
            h.public_key, h.timestamp, h.signature
        ));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    buf.clear();
    let header_end = loop {
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("responses carry a content-length");
    while buf.len() < header_end + len {
        let mut chunk = [0u8; 65536];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, buf[header_end..header_end + len].to_vec())
}

async fn load(
    d: &Daemon,
    path: &'static str,
    signed: bool,
    connections: usize,
) -> (f64, Vec<Duration>) {
    let addr = Arc::new(d.addr.clone());
    let audience = Arc::new(d.audience());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let addr = Arc::clone(&addr);
        let audience = Arc::clone(&audience);
        tasks.push(tokio::spawn(async move {
            let key = SigningKey::from_bytes(&[c as u8 + 1; 32]);
            let mut conn = TcpStream::connect(addr.as_str()).await.unwrap();
            conn.set_nodelay(true).unwrap();
            let mut buf = Vec::new();
            let mut lat = Vec::new();
            while start.elapsed() < RUN_FOR {
                let t = Instant::now();
                let (status, _) = request(
                    &mut conn,
                    &mut buf,
                    "GET",
                    path,
                    b"",
                    signed.then_some((&key, audience.as_str())),
                )
                .await;
                assert_eq!(status, 200);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    (all.len() as f64 / secs, all)
}

/// Bad POSTs sent while a user's signed requests are measured.
const BAD_POSTS: usize = 1000;

/// One unauthenticated POST of 64 KiB on a connection of its own (half
/// unsigned, half with a signature that does not verify), answered 401.
async fn bad_post(addr: &str, i: usize) {
    let body = vec![b'x'; 64 << 10];
    let mut head = format!(
        "POST /api/v1/workloads HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if i % 2 == 1 {
        let key = SigningKey::from_bytes(&[7; 32]);
        let h = sign_request(
            &key,
            &Payload::new("POST", "/elsewhere", b"", "x"),
            Utc::now(),
        );
        head.push_str(&format!(
            "x-auth-publickey: {}\r\nx-auth-timestamp: {}\r\nx-auth-signature: {}\r\n",
            h.public_key, h.timestamp, h.signature
        ));
    }
    head.push_str("connection: close\r\n\r\n");
    let Ok(mut conn) = TcpStream::connect(addr).await else {
        return;
    };
    let _ = conn.write_all(head.as_bytes()).await;
    let _ = conn.write_all(&body).await;
    let mut answer = [0_u8; 12];
    if conn.read_exact(&mut answer).await.is_ok() {
        assert_eq!(&answer[9..12], b"401", "a bad POST must be refused");
    }
}

/// The signed-GET row again, quiet and then while [`BAD_POSTS`] bad POSTs
/// arrive spread over the run (the audit log records none of them).
async fn under_bad_posts(d: &Daemon) {
    let (quiet_rps, quiet) = load(d, "/api/v1/workloads", true, 16).await;
    let addr = d.addr.clone();
    let flood = tokio::spawn(async move {
        let gap = RUN_FOR / BAD_POSTS as u32;
        let mut tick = tokio::time::interval(gap);
        let mut sent = Vec::new();
        for i in 0..BAD_POSTS {
            tick.tick().await;
            let addr = addr.clone();
            sent.push(tokio::spawn(async move { bad_post(&addr, i).await }));
        }
        for s in sent {
            s.await.unwrap();
        }
    });
    let (busy_rps, busy) = load(d, "/api/v1/workloads", true, 16).await;
    flood.await.unwrap();
    println!();
    println!(
        "signed GET /api/v1/workloads, 16 connections, quiet and while {BAD_POSTS} unsigned or badly signed 64 KiB POSTs arrive"
    );
    println!("| while | req/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (label, rps, lat) in [
        ("quiet", quiet_rps, &quiet),
        ("bad POSTs arriving", busy_rps, &busy),
    ] {
        println!(
            "| {label} | {rps:.0} | {:.2} | {:.2} |",
            pct(lat, 0.5),
            pct(lat, 0.99)
        );
    }
    println!(
        "p99 under bad POSTs / quiet = {:.2}",
        pct(&busy, 0.99) / pct(&quiet, 0.99)
    );
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

async fn fill(d: &Daemon, workloads: usize, replicas: usize) {
    let key = SigningKey::from_bytes(&[200; 32]);
    let audience = d.audience();
    let signer = Some((&key, audience.as_str()));
    let mut conn = TcpStream::connect(d.addr.as_str()).await.unwrap();
    let mut buf = Vec::new();
    for i in 0..workloads {
        let m = format!(
            r#"{{"name":"mem-{i}","replicas":{replicas},"containers":[{{"name":"main","image":"bench/app:1","resources":{{"requests":{{"cpu":"100m","memory":"32Mi"}}}}}}]}}"#
        );
        let (status, body) = request(
            &mut conn,
            &mut buf,
            "POST",
            "/api/v1/workloads",
            m.as_bytes(),
            signer,
        )
        .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }
    let want = format!("\"Running\":{}", workloads * replicas);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, body) = request(
            &mut conn,
            &mut buf,
            "GET",
            "/api/v1/cluster/status",
            b"",
            signer,
        )
        .await;
        if String::from_utf8_lossy(&body).contains(&want) {
            break;
        }
        assert!(Instant::now() < deadline, "did not converge");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let d = start_daemon();
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_kib(d.child.id());
    rt.block_on(async {
        // A few workloads so the list is not empty.
        fill(&d, 10, 1).await;
        println!(
            "REST API on loopback, keep-alive connections, {}s per row, daemon in its own process",
            RUN_FOR.as_secs()
        );
        println!("| request | connections | req/s | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|---|");
        for connections in [16, 32] {
            for (label, path, signed) in [
                ("unsigned GET /healthz (baseline)", "/healthz", false),
                (
                    "signed GET /api/v1/workloads (10 workloads)",
                    "/api/v1/workloads",
                    true,
                ),
            ] {
                let (rps, lat) = load(&d, path, signed, connections).await;
                println!(
                    "| {label} | {connections} | {rps:.0} | {:.2} | {:.2} | {:.2} |",
                    pct(&lat, 0.5),
                    pct(&lat, 0.99),
                    pct(&lat, 1.0)
                );
            }
        }
        under_bad_posts(&d).await;
    });
    drop(d);

    let d = start_daemon();
    std::thread::sleep(Duration::from_secs(2));
    let idle_fresh = rss_split_kib(d.child.id());
    rt.block_on(fill(&d, 1000, 10));
    std::thread::sleep(Duration::from_secs(2));
    let full = rss_split_kib(d.child.id());
    drop(d);
    let youki = start_youki_daemon().map(|d| {
        std::thread::sleep(Duration::from_secs(2));
        rss_split_kib(d.child.id())
    });
    println!();
    println!("daemon resident memory (VmRSS = anonymous + file-backed), SQLite");
    println!("| state | runtime | RSS MiB | anonymous MiB | file-backed MiB |");
    println!("|---|---|---|---|---|");
    let row = |state: &str, runtime: &str, (rss, anon, file): (u64, u64, u64)| {
        println!(
            "| {state} | {runtime} | {:.1} | {:.1} | {:.1} |",
            mib(rss),
            mib(anon),
            mib(file)
        );
    };
    row("idle, just started", "mock", idle_fresh);
    println!(
        "| idle (first daemon, before load) | mock | {:.1} | | |",
        mib(idle)
    );
    row(
        "1,000 workloads x 10 = 10,000 instances running",
        "mock",
        full,
    );
    match youki {
        Ok(split) => row("idle, just started", "youki", split),
        Err(why) => println!("| idle, just started | youki | skipped: {why} | | |"),
    }
}
