//! Liveness and readiness probes (exec, HTTP GET, TCP) on real containers
//! of the youki runtime; needs what `youki.rs` needs (root, cgroups, the
//! test registry).
#![cfg(target_os = "linux")]

mod youki_common;

use std::time::Duration;

use container_runtime_interface::{ContainerRuntime, ContainerState};
use orchestrator_shared_types::{Probe, ProbeAction};
use youki_common::*;

fn exec_probe(command: &[&str]) -> Probe {
    Probe {
        action: ProbeAction::Exec {
            command: command.iter().map(|s| (*s).to_owned()).collect(),
        },
        initial_delay_seconds: 0,
        period_seconds: 1,
        timeout_seconds: 2,
        failure_threshold: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_kills_the_container() {
    let t = runtime().await;
    let mut c = config("busybox", &["sleep", "3600"]);
    c.liveness_probe = Some(exec_probe(&["cat", "/tmp/healthy"]));
    let id = create(&t.rt, &spec(c)).await;
    let s = exited(&t.rt, &id).await;
    assert_eq!(s.reason.as_deref(), Some("LivenessProbeFailed"), "{s:?}");

    let mut c = config(
        "busybox",
        &["sh", "-c", "touch /tmp/healthy; exec sleep 3600"],
    );
    c.liveness_probe = Some(exec_probe(&["cat", "/tmp/healthy"]));
    let healthy = create(&t.rt, &spec(c)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let s = t.rt.get_container_status(&healthy).await.expect("status");
    assert_eq!(
        s.state,
        ContainerState::Running,
        "a passing probe keeps it: {s:?}"
    );
    for id in [id, healthy] {
        t.rt.remove_container(&id).await.expect("remove");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_probe() {
    let t = runtime().await;
    let mut c = config(
        "busybox",
        &["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3600"],
    );
    c.readiness_probe = Some(exec_probe(&["cat", "/tmp/ready"]));
    let id = create(&t.rt, &spec(c)).await;
    let first = t.rt.get_container_status(&id).await.expect("status");
    assert!(!first.ready, "not ready before the probe passes");
    wait_status(&t.rt, &id, "becoming ready", |s| s.ready).await;
    t.rt.remove_container(&id).await.expect("remove");

    let mut c = config("busybox", &["sleep", "3600"]);
    c.readiness_probe = Some(Probe {
        action: ProbeAction::TcpSocket { port: 1 },
        ..exec_probe(&[])
    });
    let id = create(&t.rt, &spec(c)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = t.rt.get_container_status(&id).await.expect("status");
    assert!(!s.ready && s.state == ContainerState::Running, "{s:?}");
    t.rt.remove_container(&id).await.expect("remove");
}

/// A port nothing listens on now (the kernel's pick, released at once).
fn free_port() -> u32 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    u32::from(l.local_addr().expect("addr").port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_tcp_probes_reach_a_server_on_the_host_network() {
    let t = runtime().await;
    let port = free_port();
    let mut c = config(
        "busybox",
        &[
            "sh",
            "-c",
            &format!("sleep 1; mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 127.0.0.1:{port} -h /www"),
        ],
    );
    c.readiness_probe = Some(Probe {
        action: ProbeAction::HttpGet {
            path: "/index.html".into(),
            port,
        },
        ..exec_probe(&[])
    });
    c.liveness_probe = Some(Probe {
        action: ProbeAction::TcpSocket { port },
        initial_delay_seconds: 3,
        ..exec_probe(&[])
    });
    let id = create(&t.rt, &spec(c)).await;
    wait_status(&t.rt, &id, "ready through HTTP GET", |s| s.ready).await;
    // The TCP liveness probe passes: still running well after it started probing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = t.rt.get_container_status(&id).await.expect("status");
    assert!(s.state == ContainerState::Running && s.ready, "{s:?}");
    t.rt.remove_container(&id).await.expect("remove");
}
