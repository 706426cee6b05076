//! What the dashboard's tests share: `ui dashboard` started and its URL
//! read, raw HTTP requests, waiting on a condition, and screenshots.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::webdriver::Browser;
use super::{ui, ui_bin, PASSPHRASE};

/// How long a test waits for what it expects.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A child process killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ui dashboard` (on `port`, or any free one) and returns it with
/// the URL it printed.
pub fn start_dashboard(config_dir: &Path, server: &str, port: Option<u16>) -> (Running, String) {
    let port = port.unwrap_or(0).to_string();
    let mut child = Command::new(ui_bin())
        .arg("--config-dir")
        .arg(config_dir)
        .args([
            "--server",
            server,
            "dashboard",
            "--no-open",
            "--port",
            &port,
        ])
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

/// The dashboard's base URL (`http://127.0.0.1:PORT`) and port, from the
/// URL `ui dashboard` printed.
pub fn base_and_port(url: &str) -> (String, u16) {
    let base = url.split("/?").next().unwrap().to_owned();
    let port = base.rsplit(':').next().unwrap().parse().unwrap();
    (base, port)
}

/// Sends `request` (a whole HTTP/1.1 request) to `port`; the status code.
pub fn raw(port: u16, request: &str) -> u16 {
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

pub fn status(config_dir: &Path, server: &str, name: &str) -> Option<Value> {
    let out = ui(config_dir, server, &["status", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// Waits until `f` holds.
pub fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn shots_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Photographs the page at 1280 and 390 pixels wide, and checks that it is
/// not wider than either window (nothing cut off or pushed out).
pub fn photograph(b: &Browser, name: &str) {
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
