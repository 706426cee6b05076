//! The dashboard's benchmarks, in a real headless Chromium against a real
//! daemon (mock runtime) on loopback:
//!
//! - **first paint** of the overview, the workloads list and the nodes page
//!   with 1,000 workloads on 100 nodes (`--mock-nodes 100`: the node and 99
//!   simulated ones), beside the same pages with no workload on 1 node (the
//!   baseline, same run): the browser's `first-contentful-paint`, from
//!   navigation start, median of 5 loads each;
//! - **memory under live updates**: the overview open while a workload is
//!   scaled 10 times a second (each scale is an event the page refreshes
//!   on), for `MINUTES` (default 10): the page's JavaScript heap (Chromium's
//!   `performance.memory`, after a forced collection) and the `ui
//!   dashboard` process's resident memory, each minute.
//!
//! Run: `cargo build --release -p orchestrator_daemon && cargo bench -p
//! ui_cli --bench dashboard [-- MINUTES]`. Needs `chromium` and
//! `chromedriver` (Debian: `chromium`, `chromium-driver`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orchestrator_api::client::ApiClient;

#[path = "../tests/common/webdriver.rs"]
#[allow(dead_code)] // The test uses more of it.
mod webdriver;
use webdriver::Browser;

const PASSPHRASE: &str = "bench passphrase";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ui_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ui"))
}

fn daemon_bin() -> PathBuf {
    let path = ui_bin().with_file_name("orchestrator_daemon");
    assert!(
        path.exists(),
        "{} is missing: `cargo build --release -p orchestrator_daemon` first",
        path.display()
    );
    path
}

fn daemon(data: &Path, nodes: u32) -> (Running, String) {
    let mut child = Command::new(daemon_bin())
        .args(["--runtime", "mock", "--store", "sqlite", "--data-dir"])
        .arg(data)
        .args(["--mock-nodes", &nodes.to_string()])
        .args([
            "--api-addr",
            "127.0.0.1:0",
            "--node-cpu",
            "64",
            "--node-memory",
            "64Gi",
        ])
        .args(["--quota-workloads", "2000", "--quota-replicas", "5000"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the daemon");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the daemon said where it listens")
            .unwrap();
        if let Some(i) = line.find("listening on http://") {
            let url: String = line[i + "listening on ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .to_owned();
            break url;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Running(child), url)
}

fn ui(config: &Path, server: &str, args: &[&str]) -> String {
    let out = Command::new(ui_bin())
        .arg("--config-dir")
        .arg(config)
        .args(["--server", server])
        .args(args)
        .env("UNIVRS_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "ui {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The user's client, with the key `ui init` made.
fn client(config: &Path, server: &str) -> ApiClient {
    let dir = user_config::paths::ConfigDir::new(config);
    let pass = user_config::SecretString::from(PASSPHRASE.to_owned());
    let identity = user_config::identity::IdentityStore::new(&dir)
        .load(&pass)
        .unwrap();
    ApiClient::new(server, Some(identity.signing_key().clone())).unwrap()
}

fn dashboard(config: &Path, server: &str) -> (Running, String) {
    let mut child = Command::new(ui_bin())
        .arg("--config-dir")
        .arg(config)
        .args(["--server", server, "dashboard", "--no-open"])
        .env("UNIVRS_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = first
        .split_whitespace()
        .find(|w| w.contains("token="))
        .unwrap()
        .to_owned();
    (Running(child), url)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// First contentful paint of `url`, in ms from navigation start.
fn first_paint(d: &Browser, url: &str) -> f64 {
    d.goto(url);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = d.run(
            "const p = performance.getEntriesByName('first-contentful-paint')[0]; \
             return p ? p.startTime : null;",
        );
        if let Some(ms) = v.as_f64() {
            return ms;
        }
        assert!(Instant::now() < deadline, "no first paint of {url}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn median_paint(d: &Browser, url: &str) -> f64 {
    let mut all: Vec<f64> = (0..5).map(|_| first_paint(d, url)).collect();
    all.sort_by(f64::total_cmp);
    all[2]
}

fn deploy(client: &ApiClient, name: &str, replicas: u32) {
    let manifest = format!(
        "name: {name}\nreplicas: {replicas}\ncontainers:\n  - name: main\n    image: web:1\n    \
         resources: {{requests: {{cpu: 1m, memory: 1Mi}}}}\n"
    );
    client
        .send(
            "POST",
            orchestrator_api::routes::WORKLOADS,
            Some(("application/yaml", manifest.as_bytes())),
        )
        .unwrap();
}

fn main() {
    let minutes: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let d = Browser::start(&["--enable-precise-memory-info", "--js-flags=--expose-gc"]);
    let pages = ["/", "/workloads", "/nodes"];

    // The baseline: no workload, one node.
    let empty: Vec<f64> = {
        let (_daemon, server) = daemon(&tmp.path().join("empty"), 1);
        ui(&config, &server, &["init"]);
        let (_dash, url) = dashboard(&config, &server);
        let base = url.split("/?").next().unwrap().to_owned();
        d.goto(&url);
        pages
            .iter()
            .map(|p| median_paint(&d, &format!("{base}{p}")))
            .collect()
    };

    let (_daemon, server) = daemon(&tmp.path().join("full"), 100);
    let (dash, url) = dashboard(&config, &server);
    let base = url.split("/?").next().unwrap().to_owned();
    d.goto(&url);
    let c = client(&config, &server);
    assert_eq!(c.list_nodes().unwrap().data.len(), 100, "100 nodes");
    let started = Instant::now();
    for i in 0..1000 {
        deploy(&c, &format!("w{i:04}"), 1);
    }
    println!(
        "dashboard first paint (first-contentful-paint, median of 5 loads)\n  \
         (1,000 workloads created in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let full: Vec<f64> = pages
        .iter()
        .map(|p| median_paint(&d, &format!("{base}{p}")))
        .collect();
    println!(
        "  {:<16} {:>24} {:>28}",
        "page", "0 workloads, 1 node", "1,000 workloads, 100 nodes"
    );
    for ((page, e), f) in ["overview", "workloads list", "nodes"]
        .iter()
        .zip(&empty)
        .zip(&full)
    {
        println!("  {page:<16} {e:>21.0} ms {f:>25.0} ms");
    }

    println!("\nmemory with the overview open, 10 scales/s, {minutes} min");
    d.goto(&format!("{base}/"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scaler = {
        let stop = stop.clone();
        let c = client(&config, &server);
        std::thread::spawn(move || {
            let mut n = 0u64;
            let mut next = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = c.scale_workload("w0000", 1 + (n % 2) as u32);
                n += 1;
                next += Duration::from_millis(100);
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            n
        })
    };
    let heap = || {
        let v = d.run(
            "if (window.gc) { window.gc(); } return [performance.memory.usedJSHeapSize, \
             Number(document.body.getAttribute('data-refreshed') || 0)];",
        );
        let a = v.as_array().cloned().unwrap_or_default();
        (
            a.first().and_then(|x| x.as_f64()).unwrap_or(0.0),
            a.get(1).and_then(|x| x.as_f64()).unwrap_or(0.0),
        )
    };
    println!(
        "  {:>6} {:>14} {:>16} {:>18}",
        "minute", "JS heap KiB", "ui dashboard RSS", "last refresh ago"
    );
    let pid = dash.0.id();
    for m in 0..=minutes {
        if m > 0 {
            std::thread::sleep(Duration::from_secs(60));
        }
        let (bytes, refreshed) = heap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as f64;
        let ago = if refreshed > 0.0 {
            format!("{:.0} ms", now_ms - refreshed)
        } else {
            "never".into()
        };
        println!(
            "  {m:>6} {:>14.0} {:>13} KiB {ago:>18}",
            bytes / 1024.0,
            rss_kib(pid)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let scales = scaler.join().unwrap();
    println!("  ({scales} scales sent)");
    drop(d);
}
