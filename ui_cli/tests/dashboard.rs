//! `ui dashboard` in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, over WebDriver), against a real daemon running real
//! containers: the overview shows the node; a workload deployed with `ui
//! deploy` appears, and a scale from the CLI shows in the open page within
//! 2 s, without a reload; a scale from the page changes the workload; an
//! agent's call approved from the page runs exactly once; the logs view
//! shows a line printed after it opened. Requests without the token, with a
//! foreign `Host` or `Origin`, are refused and change nothing. Every view is
//! photographed at 1280 and 390 pixels wide (`target/dashboard-screenshots/`)
//! and none is wider than the window.
//!
//! Needs root (youki), the test registry, `chromium` and `chromedriver`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::webdriver::Browser;
use common::{start_daemon_with, ui, ui_bin, ui_ok, with_token, PASSPHRASE};

const DEADLINE: Duration = Duration::from_secs(30);

fn registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ui dashboard` and returns it with the URL it printed.
fn start_dashboard(config_dir: &Path, server: &str) -> (Running, String) {
    let mut child = Command::new(ui_bin())
        .arg("--config-dir")
        .arg(config_dir)
        .args(["--server", server, "dashboard", "--no-open"])
        .env("UNIVRS_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting ui dashboard");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).expect("the URL line");
    // Keep reading, so that what it prints later never meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && w.contains("token="))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    (Running(child), url)
}

/// Sends `request` (a whole HTTP/1.1 request) to `port`; the status code.
fn raw(port: u16, request: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    // The status line is enough: a refused upgrade may keep the connection.
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        answer.push(byte[0]);
    }
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn status(config_dir: &Path, server: &str, name: &str) -> Option<Value> {
    let out = ui(config_dir, server, &["status", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// Waits until `f` holds.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn shots_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Photographs the page at 1280 and 390 pixels wide, and checks that it is
/// not wider than either window (nothing cut off or pushed out).
fn photograph(b: &Browser, name: &str) {
    for (w, h) in [(1280, 900), (390, 844)] {
        b.resize(w, h);
        std::thread::sleep(Duration::from_millis(150));
        let overflow = b
            .run("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
            .as_i64()
            .unwrap_or(0);
        assert!(
            overflow <= 0,
            "{name} at {w}px is {overflow}px wider than the window"
        );
        b.screenshot(&shots_dir().join(format!("{name}-{w}.png")));
    }
    b.resize(1280, 900);
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("config");
    let reg = registry();
    let daemon = start_daemon_with(
        &tmp.path().join("data"),
        &["--runtime", "youki", "--insecure-registry", reg.as_str()],
    );
    let server = daemon.url.clone();
    ui_ok(&config_dir, &server, &["init"]);
    let manifest = |name: &str, replicas: u32, script: &str| {
        let path = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!(
                "name: {name}\nreplicas: {replicas}\nnetwork: none\ncontainers:\n  - name: main\n    \
                 image: {reg}/test/busybox:1\n    command: [sh, -c, '{script}']\n    \
                 resources: {{requests: {{cpu: 10m, memory: 8Mi}}}}\n"
            ),
        )
        .unwrap();
        path
    };
    let ticker = manifest(
        "ticker",
        1,
        "i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.3; done",
    );
    ui_ok(
        &config_dir,
        &server,
        &["deploy", ticker.to_str().unwrap(), "--timeout", "60"],
    );

    let (_dash, url) = start_dashboard(&config_dir, &server);
    let base = url.split("/?").next().unwrap().to_owned();
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let token = url.rsplit("token=").next().unwrap().to_owned();

    // Refused: no token, a wrong one, a foreign Host, a foreign or missing
    // Origin on a change, a foreign Origin on the live socket.
    let host = format!("127.0.0.1:{port}");
    let cookie = format!("univrs_dashboard={token}");
    assert_eq!(
        raw(
            port,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        ),
        401
    );
    assert_eq!(
        raw(
            port,
            &format!(
                "GET /?token={} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
                "0".repeat(64)
            )
        ),
        401
    );
    assert_eq!(
        raw(port, &format!("GET / HTTP/1.1\r\nHost: evil.example:{port}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")),
        403
    );
    let scale = |origin: &str| {
        format!(
            "POST /workloads/ticker/scale HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n{origin}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\nConnection: close\r\n\r\nreplicas=7"
        )
    };
    assert_eq!(raw(port, &scale("Origin: http://evil.example\r\n")), 403);
    assert_eq!(raw(port, &scale("")), 403);
    assert_eq!(
        raw(port, &format!(
            "GET /live HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nOrigin: http://evil.example\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )),
        403
    );
    let w = status(&config_dir, &server, "ticker").unwrap();
    assert_eq!(
        w["workload"]["spec"]["replicas"], 1,
        "a refused request changed nothing"
    );
    // The right cookie and Origin pass (the control of the refusals above).
    assert_eq!(
        raw(port, &format!("GET /nodes HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")),
        200
    );

    let d = Browser::start(&[]);

    // The overview shows the node.
    d.goto(&url);
    assert_eq!(d.title(), "Overview · Univrs");
    assert!(
        !d.url().contains("token="),
        "the token leaves the address bar"
    );
    until("the overview shows 1 node ready", || {
        d.text(".tiles").contains("nodes ready") && d.text(".tiles .tile .big") == "1"
    });
    photograph(&d, "overview");

    // A workload deployed with `ui deploy` appears, without a reload.
    d.goto(&format!("{base}/workloads"));
    d.run("window.notReloaded = true;");
    let web = manifest("web", 1, "exec sleep 3600");
    ui_ok(
        &config_dir,
        &server,
        &["deploy", web.to_str().unwrap(), "--no-wait"],
    );
    until("web appears", || {
        !d.text("tr[data-workload=web]").is_empty()
    });
    // Scaled from the CLI: in the page within 2 s.
    ui_ok(&config_dir, &server, &["scale", "web", "3"]);
    let scaled = Instant::now();
    until("the page shows 3 replicas of web", || {
        d.text("tr[data-workload=web] td[data-field=running]")
            .ends_with("/3")
    });
    let shown = scaled.elapsed();
    assert!(
        shown <= Duration::from_secs(2),
        "the scale showed after {shown:?}"
    );
    assert_eq!(
        d.run("return window.notReloaded === true;"),
        Value::Bool(true),
        "the page was not reloaded"
    );
    photograph(&d, "workloads");

    // Scaled from the page: the workload changes (asked through the API).
    d.goto(&format!("{base}/workloads/web"));
    d.fill("input#replicas", "2");
    d.click("form[action$='/scale'] button");
    until("the page says web was scaled", || {
        d.text("#flash").contains("scaled to 2")
    });
    let w = status(&config_dir, &server, "web").unwrap();
    assert_eq!(w["workload"]["spec"]["replicas"], 2, "{w}");
    photograph(&d, "workload");

    // An agent's call held for approval, approved from the page: it runs
    // exactly once.
    ui_ok(&config_dir, &server, &["policy", "ai", "on"]);
    let out = ui(
        &config_dir,
        &server,
        &[
            "agent",
            "token",
            "create",
            "--name",
            "bot",
            "--tools",
            "delete_workload",
            "--expires",
            "1h",
        ],
    );
    assert!(out.status.success());
    let agent = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    d.goto(&format!("{base}/agents"));
    let (code, body) = with_token(&server, &agent, "DELETE", "/api/v1/workloads/web");
    assert_eq!(code, 202, "{body}");
    until("the approval shows", || {
        !d.text("li[data-approval]").is_empty()
    });
    photograph(&d, "agents");
    d.click("li[data-approval] form[action$='/approve'] button");
    until("the page says approved", || {
        d.text("#flash").contains("approved")
    });
    until("web is deleted", || {
        status(&config_dir, &server, "web").is_none()
    });
    let audit: Value = serde_json::from_str(&ui_ok(
        &config_dir,
        &server,
        &["audit", "--agent", "bot", "-o", "json"],
    ))
    .unwrap();
    let ran = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"] == "approved")
        .count();
    assert_eq!(ran, 1, "the approved call ran once: {audit}");

    // The logs view shows a line printed after it opened.
    let before = ui_ok(&config_dir, &server, &["logs", "ticker"]);
    let last: u64 = before
        .lines()
        .filter_map(|l| l.rsplit("tick-").next()?.trim().parse().ok())
        .max()
        .unwrap_or(0);
    d.goto(&format!("{base}/workloads/ticker/logs"));
    let later = format!("tick-{}", last + 3);
    until("the page shows a later line", || {
        d.text("#log").contains(&later)
    });
    photograph(&d, "logs");

    d.goto(&format!("{base}/nodes"));
    assert!(d.text("main").contains("1 of 1 ready"));
    photograph(&d, "nodes");
    d.goto(&format!("{base}/credits"));
    assert!(d.text("main").contains("balance"));
    photograph(&d, "credits");

    drop(d);
    // Nothing left running once the daemon is gone.
    ui_ok(&config_dir, &server, &["delete", "ticker"]);
    let containers = tmp.path().join("data/runtime/containers");
    until("every container is removed", || {
        std::fs::read_dir(&containers).map_or(true, |mut d| d.next().is_none())
    });
}
