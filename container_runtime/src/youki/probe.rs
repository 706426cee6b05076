//! Liveness and readiness probes of a running container, as Kubernetes runs
//! them: after `initial_delay_seconds`, every `period_seconds`, each attempt
//! bounded by `timeout_seconds`; `failure_threshold` failures in a row count
//! as failure, one success as success.
//!
//! - liveness failure: the container is killed (SIGKILL) and exits with reason
//!   `LivenessProbeFailed`; the reconciler restarts it by its restart policy;
//! - readiness: the container is ready while its probe passes (and from the
//!   start when it has none); changes are published as status changes.
//!
//! `exec` probes run the command inside the container's namespaces and cgroup
//! through libcontainer's tenant builder; `http_get` and `tcp_socket` connect
//! to the container's own address: its address on the node's bridge, or
//! `127.0.0.1` on the host's network. A container with
//! `univrs.io/network: none` has no address the daemon can reach, so there
//! its HTTP and TCP probes fail: use `exec`.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::Signal;
use orchestrator_shared_types::{Probe, ProbeAction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{info, warn};

use super::entry::{lock, Entry};
use super::{process, worker, Inner, YoukiRuntime};

/// Starts the probe tasks of `entry`, if it has probes.
pub(super) fn spawn(weak: Weak<Inner>, entry: Arc<Entry>) {
    let config = lock(&entry.record).config.clone();
    if let Some(p) = config.liveness_probe {
        tokio::spawn(run(weak.clone(), entry.clone(), p, Kind::Liveness));
    }
    if let Some(p) = config.readiness_probe {
        tokio::spawn(run(weak, entry, p, Kind::Readiness));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Liveness,
    Readiness,
}

async fn run(weak: Weak<Inner>, entry: Arc<Entry>, probe: Probe, kind: Kind) {
    let token = entry.probes.clone();
    let (id, host) = {
        let r = lock(&entry.record);
        (
            r.id.to_string(),
            r.address.clone().unwrap_or_else(|| "127.0.0.1".to_owned()),
        )
    };
    let delay = Duration::from_secs(u64::from(probe.initial_delay_seconds));
    let period = Duration::from_secs(u64::from(probe.period_seconds.max(1)));
    let timeout = Duration::from_secs(u64::from(probe.timeout_seconds.max(1)));
    let threshold = probe.failure_threshold.max(1);
    tokio::select! {
        () = token.cancelled() => return,
        () = tokio::time::sleep(delay) => {}
    }
    let mut failures = 0u32;
    loop {
        let Some(state_root) = weak.upgrade().map(|i| i.state_root.clone()) else {
            return;
        };
        let outcome = tokio::select! {
            () = token.cancelled() => return,
            r = attempt(&probe.action, &id, &host, state_root, timeout) => r,
        };
        let Some(inner) = weak.upgrade() else { return };
        let rt = YoukiRuntime { inner };
        match outcome {
            Ok(()) => {
                failures = 0;
                if kind == Kind::Readiness {
                    rt.set_ready(&entry, true);
                }
            }
            Err(why) => {
                failures += 1;
                tracing::debug!(container = %id, ?kind, failures, %why, "probe failed");
                if failures >= threshold {
                    match kind {
                        Kind::Liveness => {
                            info!(container = %id, %why, "liveness probe failed {failures} times; killing the container");
                            rt.kill_for_liveness(&entry);
                            return;
                        }
                        Kind::Readiness => rt.set_ready(&entry, false),
                    }
                }
            }
        }
        drop(rt);
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}

async fn attempt(
    action: &ProbeAction,
    id: &str,
    host: &str,
    state_root: PathBuf,
    timeout: Duration,
) -> Result<(), String> {
    match action {
        ProbeAction::TcpSocket { port } => {
            let addr = format!("{host}:{port}");
            match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("connecting to {addr}: {e}")),
                Err(_) => Err(format!("connecting to {addr}: timed out")),
            }
        }
        ProbeAction::HttpGet { path, port } => {
            match tokio::time::timeout(timeout, http_get(host, *port, path)).await {
                Ok(Ok(code)) if (200..400).contains(&code) => Ok(()),
                Ok(Ok(code)) => Err(format!("GET {path} on port {port}: status {code}")),
                Ok(Err(e)) => Err(format!("GET {path} on port {port}: {e}")),
                Err(_) => Err(format!("GET {path} on port {port}: timed out")),
            }
        }
        ProbeAction::Exec { command } => exec(id, state_root, command.clone(), timeout).await,
    }
}

/// The status code of `GET path` on `host:port` (HTTP/1.0, no body read).
async fn http_get(host: &str, port: u32, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(format!("{host}:{port}")).await?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: univrs-probe\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(64);
    let mut chunk = [0u8; 64];
    while !buf.contains(&b'\n') && buf.len() < 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status line"))
}

/// Runs `command` in container `id` and waits for it: exit 0 is success.
///
/// The spawn and the wait run on a task of their own, which a cancelled probe
/// (the container being stopped) does not drop: the process it started must
/// be reaped whatever happens. An unreaped zombie in the container's pid
/// namespace keeps its init from finishing its exit, so the container could
/// never be stopped.
async fn exec(
    id: &str,
    state_root: PathBuf,
    command: Vec<String>,
    timeout: Duration,
) -> Result<(), String> {
    let cid = id.to_owned();
    tokio::spawn(exec_and_reap(cid, state_root, command, timeout))
        .await
        .map_err(|e| format!("the exec probe task failed: {e}"))?
}

async fn exec_and_reap(
    cid: String,
    state_root: PathBuf,
    command: Vec<String>,
    timeout: Duration,
) -> Result<(), String> {
    let id = cid.clone();
    let spawned = worker::run_forked(move || -> Result<i32, String> {
        let null = |write: bool| {
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .map_err(|e| format!("opening /dev/null: {e}"))
        };
        let (stdin, stdout, stderr): (File, File, File) = (null(false)?, null(true)?, null(true)?);
        ContainerBuilder::new(cid, SyscallType::default())
            .with_root_path(state_root)
            .map_err(|e| e.to_string())?
            .with_stdin(stdin)
            .with_stdout(stdout)
            .with_stderr(stderr)
            .with_executor(super::executor::ForkSafeExecutor::default())
            .as_tenant()
            .with_container_args(command)
            .with_detach(true)
            .build()
            .map(|pid| pid.as_raw())
            .map_err(|e| e.to_string())
    })
    .await?;
    let waited =
        tokio::task::spawn_blocking(
            move || match process::wait_child_timeout(spawned, timeout) {
                Ok(code) => Ok(code),
                Err(()) => {
                    let _ = process::signal(spawned, Signal::SIGKILL);
                    let _ = process::wait_child(spawned);
                    Err(format!("timed out after {} s", timeout.as_secs()))
                }
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    match waited? {
        Some(0) => Ok(()),
        Some(code) => Err(format!("command exited with {code}")),
        None => {
            warn!(container = %id, "could not learn an exec probe's exit code");
            Err("exit code unknown".into())
        }
    }
}
