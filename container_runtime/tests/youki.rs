//! The youki runtime on real containers, from images in a real registry.
//!
//! Needs root, cgroups, and the test registry: `./scripts/test-registry start`
//! (which `./scripts/test` runs) serves `test/busybox:1`, `test/layered:1`
//! and `test/corrupt:1` on 127.0.0.1:5000 and exports nothing; the address
//! comes from `UNIVRS_TEST_REGISTRY` (default 127.0.0.1:5000).
#![cfg(target_os = "linux")]

mod youki_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use container_runtime_interface::testsuite::{self, RuntimeUnderTest};
use container_runtime_interface::{ContainerRuntime, ContainerState, LogOptions, RuntimeError};
use futures::StreamExt;
use orchestrator_shared_types::MemoryQuantity;
use tempfile::TempDir;
use youki_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_suite_passes_on_real_containers() {
    let dir = Arc::new(TempDir::new().expect("tempdir"));
    testsuite::run_all(|| {
        let dir = Arc::clone(&dir);
        async move {
            // A fresh data dir per case, under one temp dir kept to the end.
            let sub = Arc::new(tempfile::tempdir_in(dir.path()).expect("tempdir"));
            let rt = open(Arc::clone(&sub)).await;
            // The case outlives this block: keep its directory until the end.
            std::mem::forget(sub);
            RuntimeUnderTest {
                runtime: rt.rt,
                node: NODE,
                config_template: config("busybox", &["sleep", "3600"]),
            }
        }
    })
    .await;
}

fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/ns/{kind}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_runs_in_its_own_namespaces_and_cgroup_limits() {
    let t = runtime().await;
    let mut c = config("busybox", &["sleep", "3600"]);
    c.resources.limits.memory = Some("64Mi".parse::<MemoryQuantity>().expect("quantity"));
    c.resources.limits.pids = Some(32);
    c.resources.limits.cpu = Some("500m".parse().expect("quantity"));
    let id = create(&t.rt, &spec(c)).await;
    let pid =
        t.rt.pid(&id)
            .expect("a running container has a pid")
            .to_string();
    for kind in ["pid", "mnt", "ipc", "uts"] {
        assert_ne!(
            ns(&pid, kind),
            ns("self", kind),
            "{kind} namespace is the daemon's"
        );
    }
    assert_eq!(
        ns(&pid, "net"),
        ns("self", "net"),
        "host network by default"
    );
    assert_eq!(t.rt.memory_limit(&id), Some(64 << 20));
    assert_eq!(t.rt.pids_limit(&id), Some(32));
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert!(cgroup.contains(&format!("/univrs/{id}")), "{cgroup}");
    let usage = t.rt.usage(&id).expect("usage");
    assert!(usage.memory_bytes > 0, "{usage:?}");
    t.rt.remove_container(&id).await.expect("remove");
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/memory/univrs/{id}")).exists()
            && !std::path::Path::new(&format!("/sys/fs/cgroup/univrs/{id}")).exists(),
        "the cgroup is removed with the container"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_none_gives_a_namespace_of_its_own() {
    let t = runtime().await;
    let mut s = spec(config("busybox", &["sleep", "3600"]));
    s.labels.insert("univrs.io/network".into(), "none".into());
    let id = create(&t.rt, &s).await;
    let pid = t.rt.pid(&id).expect("pid").to_string();
    assert_ne!(ns(&pid, "net"), ns("self", "net"));
    t.rt.remove_container(&id).await.expect("remove");
}

/// Where the operator has not allowed the host's network, a container that
/// asks for it (the label, or no label) is refused with the flag named, and
/// nothing is left behind; `none` still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_network_is_refused_unless_the_operator_allows_it() {
    let t = open_with(Arc::new(TempDir::new().expect("tempdir")), |c| {
        c.allow_host_network = false
    })
    .await;
    for label in [Some("host"), None] {
        let mut s = spec(config("busybox", &["sleep", "3600"]));
        if let Some(l) = label {
            s.labels.insert("univrs.io/network".into(), l.into());
        }
        match t.rt.create_container(NODE, &s).await {
            Err(RuntimeError::Create { reason, .. }) => {
                assert!(reason.contains("--allow-host-network"), "{reason}")
            }
            other => panic!("label {label:?}: expected a refusal, got {other:?}"),
        }
    }
    assert!(t.rt.list_containers(NODE).await.expect("list").is_empty());
    let mut s = spec(config("busybox", &["sleep", "3600"]));
    s.labels.insert("univrs.io/network".into(), "none".into());
    let id = create(&t.rt, &s).await;
    t.rt.remove_container(&id).await.expect("remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_and_exit_codes_are_reported() {
    let t = runtime().await;
    let id = create(
        &t.rt,
        &spec(config(
            "busybox",
            &["sh", "-c", "echo hello; echo oops >&2; exit 3"],
        )),
    )
    .await;
    let s = exited(&t.rt, &id).await;
    assert_eq!(s.exit_code, Some(3));
    assert_eq!(s.reason.as_deref(), Some("Error"));
    let lines =
        t.rt.get_container_logs(&id, LogOptions::default())
            .await
            .expect("logs");
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l.stream.as_str(), l.line.as_str()))
        .collect();
    assert_eq!(got, [("stdout", "hello"), ("stderr", "oops")]);
    // Data at rest: the bundle (config.json holds the environment), the
    // record, the logs and the image store are the daemon's user's alone.
    let runtime_dir = t._dir.path().join("runtime");
    let bundle = runtime_dir.join("containers").join(id.as_str());
    let images = runtime_dir.join("images");
    let mut private = vec![
        runtime_dir.clone(),
        bundle.clone(),
        images.join("index.json"),
    ];
    private
        .extend(["config.json", "record.json", "stdout.log", "stderr.log"].map(|f| bundle.join(f)));
    for blob in std::fs::read_dir(images.join("blobs/sha256")).expect("blobs") {
        private.push(blob.expect("blob").path());
    }
    for p in private {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&p)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{} is {:04o}", p.display(), mode & 0o7777);
    }
    t.rt.remove_container(&id).await.expect("remove");

    let id = create(&t.rt, &spec(config("busybox", &["true"]))).await;
    let s = exited(&t.rt, &id).await;
    assert_eq!(
        (s.exit_code, s.reason.as_deref()),
        (Some(0), Some("Completed"))
    );
    t.rt.remove_container(&id).await.expect("remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_logs_streams_new_lines_until_exit() {
    let t = runtime().await;
    let id = create(
        &t.rt,
        &spec(config(
            "busybox",
            &[
                "sh",
                "-c",
                "sleep 0.5; for i in 1 2 3; do echo line$i; sleep 0.1; done",
            ],
        )),
    )
    .await;
    let stream = t.rt.follow_container_logs(&id).await.expect("follow");
    let lines: Vec<String> = tokio::time::timeout(DEADLINE, stream.map(|l| l.line).collect())
        .await
        .expect("the follow stream ends when the container exits");
    assert_eq!(lines, ["line1", "line2", "line3"]);
    t.rt.remove_container(&id).await.expect("remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_past_its_memory_limit_is_oom_killed_and_others_go_on() {
    let t = runtime().await;
    let bystander = create(&t.rt, &spec(config("busybox", &["sleep", "3600"]))).await;
    let mut c = config(
        "busybox",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
    );
    c.resources.limits.memory = Some("32Mi".parse().expect("quantity"));
    let id = create(&t.rt, &spec(c)).await;
    let s = exited(&t.rt, &id).await;
    assert_eq!(s.reason.as_deref(), Some("OOMKilled"), "{s:?}");
    assert_eq!(s.exit_code, Some(137));
    let b = t.rt.get_container_status(&bystander).await.expect("status");
    assert_eq!(
        b.state,
        ContainerState::Running,
        "the other container goes on"
    );
    for id in [id, bystander] {
        t.rt.remove_container(&id).await.expect("remove");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sends_sigterm_then_sigkill_after_the_grace_period() {
    let t = runtime().await;
    // `sleep` as pid 1 has no SIGTERM handler: the kernel ignores the signal,
    // so only the SIGKILL after the grace period ends it.
    let stubborn = create(&t.rt, &spec(config("busybox", &["sleep", "3600"]))).await;
    let started = Instant::now();
    t.rt.stop_container(&stubborn, Duration::from_secs(2))
        .await
        .expect("stop");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "killed before the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
    assert_eq!(exited(&t.rt, &stubborn).await.exit_code, Some(137));

    let polite = create(
        &t.rt,
        &spec(config(
            "busybox",
            &[
                "sh",
                "-c",
                "trap 'echo bye; exit 0' TERM; echo armed; while true; do sleep 0.05; done",
            ],
        )),
    )
    .await;
    // The trap is installed once the shell has said so.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let lines =
            t.rt.get_container_logs(&polite, LogOptions::default())
                .await
                .expect("logs");
        if lines.iter().any(|l| l.line == "armed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shell never armed its trap: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    t.rt.stop_container(&polite, Duration::from_secs(20))
        .await
        .expect("stop");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a handled SIGTERM ends it early"
    );
    let s = exited(&t.rt, &polite).await;
    assert_eq!(s.exit_code, Some(0), "{s:?}");
    for id in [stubborn, polite] {
        t.rt.remove_container(&id).await.expect("remove");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_does_not_exist_is_a_pull_error() {
    let t = runtime().await;
    let mut c = config("busybox", &["true"]);
    c.image = format!("{}/test/no-such-image:1", registry());
    match t.rt.create_container(NODE, &spec(c)).await {
        Err(RuntimeError::ImagePull { image, reason }) => {
            assert!(image.contains("no-such-image"), "{image}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected a pull error, got {other:?}"),
    }
    assert!(t.rt.list_containers(NODE).await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_whose_digest_does_not_match_is_refused() {
    let t = runtime().await;
    match t
        .rt
        .create_container(NODE, &spec(config("corrupt", &["true"])))
        .await
    {
        Err(RuntimeError::ImagePull { reason, .. }) => {
            assert!(
                reason.contains("digest"),
                "the reason names the digest: {reason}"
            );
        }
        other => panic!("expected a pull error for the corrupt layer, got {other:?}"),
    }
    assert!(t.rt.list_containers(NODE).await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_whiteouts_and_the_image_config_are_applied() {
    let t = runtime().await;
    // No command: the image's Entrypoint and Cmd run, as its User, in its WorkingDir.
    let mut c = config("layered", &[]);
    c.env.insert("EXTRA".into(), "1".into());
    let id = create(&t.rt, &spec(c)).await;
    exited(&t.rt, &id).await;
    let lines =
        t.rt.get_container_logs(&id, LogOptions::default())
            .await
            .expect("logs");
    assert_eq!(
        lines.first().map(|l| l.line.as_str()),
        Some("from-entrypoint from-cmd")
    );
    t.rt.remove_container(&id).await.expect("remove");

    // args replace Cmd, command replaces Entrypoint.
    let mut c = config(
        "layered",
        &[
            "sh",
            "-c",
            "ls /data; ls /opq; id -u; pwd; echo $GREETING $EXTRA",
        ],
    );
    c.env.insert("EXTRA".into(), "1".into());
    let id = create(&t.rt, &spec(c)).await;
    exited(&t.rt, &id).await;
    let lines: Vec<String> =
        t.rt.get_container_logs(&id, LogOptions::default())
            .await
            .expect("logs")
            .into_iter()
            .filter(|l| l.stream == "stdout")
            .map(|l| l.line)
            .collect();
    assert_eq!(lines, ["keep.txt", "new.txt", "1000", "/data", "hello 1"]);
    t.rt.remove_container(&id).await.expect("remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_survive_a_runtime_restart_and_are_adopted() {
    let dir = Arc::new(TempDir::new().expect("tempdir"));
    let first = open(Arc::clone(&dir)).await;
    let running = create(&first.rt, &spec(config("busybox", &["sleep", "3600"]))).await;
    let done = create(&first.rt, &spec(config("busybox", &["sh", "-c", "exit 4"]))).await;
    exited(&first.rt, &done).await;
    let pid = first.rt.pid(&running).expect("pid");
    first.rt.shutdown();
    drop(first);

    let second = open(Arc::clone(&dir)).await;
    let list = second.rt.list_containers(NODE).await.expect("list");
    assert_eq!(list.len(), 2, "{list:?}");
    let s = second
        .rt
        .get_container_status(&running)
        .await
        .expect("status");
    assert_eq!(s.state, ContainerState::Running, "{s:?}");
    assert_eq!(
        second.rt.pid(&running),
        Some(pid),
        "the same process, not a new one"
    );
    let d = second.rt.get_container_status(&done).await.expect("status");
    assert_eq!((d.state, d.exit_code), (ContainerState::Exited, Some(4)));
    // Adopted containers can be stopped and removed like any other.
    second
        .rt
        .stop_container(&running, Duration::from_secs(1))
        .await
        .expect("stop");
    exited(&second.rt, &running).await;
    for id in [running, done] {
        second.rt.remove_container(&id).await.expect("remove");
    }
    assert!(second
        .rt
        .list_containers(NODE)
        .await
        .expect("list")
        .is_empty());
}
