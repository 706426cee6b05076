//! Containers are confined: Docker's default seccomp profile and no
//! `CAP_NET_RAW`, unless the node's operator relaxes them. Each attack is
//! also run with the relaxation, where it must succeed: that proves the
//! test can fail.
//!
//! Needs root, cgroups, and the test registry (`./scripts/test-registry
//! start`; see `tests/youki.rs`), whose busybox has `unshare` and `ping`.
#![cfg(target_os = "linux")]

mod youki_common;

use std::sync::Arc;

use container_runtime::youki::YoukiConfig;
use container_runtime_interface::{ContainerRuntime, LogOptions};
use tempfile::TempDir;
use youki_common::*;

/// Runs `command` to its end in a container of a runtime configured by
/// `tweak`; its exit code and its output (stdout and stderr).
async fn run(tweak: impl FnOnce(&mut YoukiConfig), command: &[&str]) -> (Option<i32>, String) {
    let t = open_with(Arc::new(TempDir::new().expect("tempdir")), tweak).await;
    let id = create(&t.rt, &spec(config("busybox", command))).await;
    let status = exited(&t.rt, &id).await;
    let logs =
        t.rt.get_container_logs(&id, LogOptions::default())
            .await
            .expect("logs");
    t.rt.remove_container(&id).await.expect("remove");
    let output: Vec<String> = logs.into_iter().map(|l| l.line).collect();
    (status.exit_code, output.join("\n"))
}

/// The value of `field` in `/proc/self/status` as `output` shows it.
fn status_field<'a>(output: &'a str, field: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {output}"))
        .trim()
}

/// `CAP_NET_RAW` in a capability mask.
const CAP_NET_RAW_BIT: u64 = 1 << 13;

fn has_net_raw(hex_mask: &str) -> bool {
    u64::from_str_radix(hex_mask, 16).expect("a hex capability mask") & CAP_NET_RAW_BIT != 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_runs_under_a_seccomp_filter_without_cap_net_raw() {
    let (code, out) = run(|_| {}, &["cat", "/proc/self/status"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "filter mode: {out}");
    for caps in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(!has_net_raw(status_field(&out, caps)), "{caps}: {out}");
    }

    let relaxed = |c: &mut YoukiConfig| {
        c.seccomp = false;
        c.allow_net_raw = true;
    };
    let (code, out) = run(relaxed, &["cat", "/proc/self/status"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "0", "no filter: {out}");
    for caps in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(has_net_raw(status_field(&out, caps)), "{caps}: {out}");
    }
}

/// A user namespace needs no capability, and inside it a process has them
/// all: the first step of many container escapes. Docker's profile refuses
/// `unshare` to containers without CAP_SYS_ADMIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seccomp_profile_refuses_new_namespaces() {
    let attack = ["unshare", "-r", "-n", "id", "-u"];
    let (code, out) = run(|_| {}, &attack).await;
    assert_ne!(code, Some(0), "unshare succeeded under seccomp: {out}");
    assert!(
        out.to_lowercase().contains("operation not permitted"),
        "unshare should fail with EPERM: {out}"
    );

    let (code, out) = run(|c| c.seccomp = false, &attack).await;
    assert_eq!(
        code,
        Some(0),
        "without the filter unshare must succeed here (user namespaces allowed by the host?): {out}"
    );
    assert_eq!(out.trim(), "0", "root in the new user namespace: {out}");
}

/// busybox `ping` opens a raw ICMP socket, which needs CAP_NET_RAW.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_sockets_need_the_operator_to_allow_cap_net_raw() {
    let attack = ["ping", "-c", "1", "-W", "2", "127.0.0.1"];
    let (code, out) = run(|_| {}, &attack).await;
    assert_ne!(code, Some(0), "ping succeeded without CAP_NET_RAW: {out}");
    let lower = out.to_lowercase();
    assert!(
        lower.contains("permission denied") || lower.contains("operation not permitted"),
        "ping should be refused the raw socket: {out}"
    );

    // Allowed, and still under the seccomp filter: the profile lets raw
    // sockets through, the capability decides.
    let (code, out) = run(|c| c.allow_net_raw = true, &attack).await;
    assert_eq!(code, Some(0), "ping with CAP_NET_RAW: {out}");
    assert!(out.contains("1 packets received"), "{out}");
}

/// What a shell, a fork and a thread-creating libc need still works under
/// the filter (`clone` without namespace flags; `clone3` falls back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyday_programs_still_work_under_the_filter() {
    let script = "sleep 0 & wait; echo $(echo sub) | cat; \
                  httpd -p 127.0.0.1:18093 -h /tmp && sleep 0.2 && echo ok > /tmp/index.html && \
                  wget -q -O - http://127.0.0.1:18093/index.html";
    let (code, out) = run(|_| {}, &["sh", "-c", script]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out, "sub\nok", "{out}");
}
