//! What the end-to-end tests share: the real daemon on an ephemeral port and
//! the real `ui` binary run against it.

#[allow(dead_code)] // Only the dashboard's tests use these.
pub mod dash;
#[allow(dead_code)] // Only the dashboard's test drives a browser.
pub mod webdriver;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The passphrase of every test identity.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// The `ui` binary under test.
pub fn ui_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ui"))
}

/// The daemon binary `cargo test --workspace` builds next to `ui`.
pub fn daemon_bin() -> PathBuf {
    let dir = ui_bin().parent().map(Path::to_path_buf).unwrap_or_default();
    let path = dir.join(format!(
        "orchestrator_daemon{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p orchestrator_daemon` (or `cargo test --workspace`) first",
        path.display()
    );
    path
}

/// A running daemon, killed when dropped.
pub struct Daemon {
    child: Child,
    /// Its API URL.
    pub url: String,
}

impl Daemon {
    /// SIGKILL, as a crash: the daemon cleans nothing up.
    #[allow(dead_code)] // Not every test binary crashes a daemon.
    pub fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("killing the daemon: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("waiting for the daemon: {e}");
        }
    }
}

impl Drop for Daemon {
    /// SIGTERM, as an operator stops it, so that it releases what only a
    /// running daemon holds (its warm bridge attachments, on a youki
    /// daemon); SIGKILL if it is not gone within 15 s.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.child.id().to_string();
        let termed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while termed && std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.kill_now();
    }
}

/// Starts the daemon on an ephemeral port and waits for its
/// `listening on http://127.0.0.1:PORT` line on stderr.
#[allow(dead_code)] // Not the dashboard's test, which runs real containers.
pub fn start_daemon(data_dir: &Path) -> Daemon {
    start_daemon_with(data_dir, &["--runtime", "mock"])
}

/// Starts the daemon with `args` (the runtime) on SQLite in `data_dir`.
pub fn start_daemon_with(data_dir: &Path, args: &[&str]) -> Daemon {
    start_daemon_at(data_dir, args, "127.0.0.1:0")
}

/// [`start_daemon_with`], its API on `addr` (`HOST:PORT`): a daemon started
/// again where a stopped one answered.
#[allow(dead_code)] // Only the dashboard's test restarts a daemon.
pub fn start_daemon_at(data_dir: &Path, args: &[&str], addr: &str) -> Daemon {
    let mut child = Command::new(daemon_bin())
        .args(args)
        .args(["--store", "sqlite", "--data-dir"])
        .arg(data_dir)
        .args(["--api-addr", addr])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting orchestrator_daemon");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    // Keeps draining stderr for the daemon's whole life so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("daemon: {line}");
            if !sent {
                if let Some(i) = line.find("listening on http://") {
                    let url: String = line[i + "listening on ".len()..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    sent = tx.send(url).is_ok();
                }
            }
        }
    });
    let url = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => url,
        Err(_) => {
            if let Err(e) = child.kill() {
                eprintln!("killing the daemon: {e}");
            }
            panic!("the daemon did not print `listening on http://...` within 60 s");
        }
    };
    Daemon { child, url }
}

/// The arguments of `ui agent token create` for agent `name`, allowed
/// `tools` (comma-separated), valid for an hour.
#[allow(dead_code)] // Only the tests of agents make tokens.
pub fn agent_token<'a>(name: &'a str, tools: &'a str) -> [&'a str; 9] {
    [
        "agent",
        "token",
        "create",
        "--name",
        name,
        "--tools",
        tools,
        "--expires",
        "1h",
    ]
}

/// Runs `ui` with the test's config dir and server.
pub fn ui(config_dir: &Path, server: &str, args: &[&str]) -> Output {
    let out = Command::new(ui_bin())
        .arg("--config-dir")
        .arg(config_dir)
        .args(["--server", server])
        .args(args)
        .env("UNIVRS_PASSPHRASE", PASSPHRASE)
        .env_remove("UNIVRS_SERVER")
        .env_remove("UNIVRS_CONFIG_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("running ui");
    eprintln!(
        "ui {}: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `ui` and expects success.
pub fn ui_ok(config_dir: &Path, server: &str, args: &[&str]) -> String {
    let out = ui(config_dir, server, args);
    assert!(out.status.success(), "ui {} failed", args.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A request with the agent token; the status and body.
#[allow(dead_code)] // Only the tests of agents call it.
pub fn with_token(server: &str, token: &str, method: &str, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{server}{path}");
    let auth = format!("Bearer {token}");
    let response = match method {
        "GET" => agent.get(&url).header("authorization", &auth).call(),
        "DELETE" => agent.delete(&url).header("authorization", &auth).call(),
        "POST" => agent.post(&url).header("authorization", &auth).send_empty(),
        other => panic!("unsupported method {other}"),
    }
    .expect("the daemon answers");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .read_to_string()
        .expect("reading the answer");
    eprintln!("{method} {path} with the token: {status} {body}");
    (status, body)
}
