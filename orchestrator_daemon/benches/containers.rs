//! Real-container benchmark (youki runtime, images from the test registry;
//! needs root, cgroups and `./scripts/test-registry start`):
//!
//! - image pull and unpack of `test/busybox:1` into an empty store;
//! - API call → container process running: a signed `POST /api/v1/workloads`
//!   (one replica of `sleep`) until the runtime reports the process running,
//!   p50 and p99 over 50 workloads, SQLite store; on the host's network, and
//!   (with the CNI plugins installed) on the node's bridge with one published
//!   port, the two alternating so that drift of the machine hits both,
//!   each on an idle node (its warm attachments made, as a daemon keeps
//!   `--warm-networks` of them);
//! - the baseline, in the same run: raw in-process libcontainer create+start
//!   of the same bundle (`config.json` of one of those containers, on the
//!   image's rootfs), 50 times;
//! - 100 containers at once: one workload of 100 replicas until all run.
//!
//! Run: `cargo bench -p orchestrator_core --bench containers`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use chrono::Utc;
use cluster_manager::mock::{test_node, MockClusterManager};
use container_runtime::youki::cni::{check_plugins, CniConfig};
use container_runtime::youki::{
    ImageStore, ImageStoreConfig, PullPolicy, YoukiConfig, YoukiRuntime,
};
use container_runtime_interface::{ContainerRuntime, ContainerState};
use ed25519_dalek::SigningKey;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use observability::events::EventHub;
use observability::health::Health;
use observability::metrics::Metrics;
use orchestrator_core::{Deps, Orchestrator, ReconcilerConfig};
use orchestrator_rest::{self as rest, AppState, AuthConfig, AuthGate};
use orchestrator_shared_types::auth::{
    sign_request, Payload, HEADER_PUBLIC_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use orchestrator_shared_types::WorkloadId;
use scheduler_interface::simple::{SimpleScheduler, SimpleSchedulerConfig};
use state_store_interface::sqlite::SqliteStore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const SAMPLES: usize = 50;
const AT_ONCE: u32 = 100;

fn registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What the bench's in-process API expects requests to be signed for.
const AUDIENCE: &str = "bench";

fn signed(key: &SigningKey, method: &str, path: &str, body: &[u8]) -> Request<Body> {
    let h = sign_request(key, &Payload::new(method, path, body, AUDIENCE), Utc::now());
    Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/yaml")
        .header(HEADER_PUBLIC_KEY, h.public_key)
        .header(HEADER_TIMESTAMP, h.timestamp)
        .header(HEADER_SIGNATURE, h.signature)
        .body(Body::from(body.to_vec()))
        .unwrap()
}

async fn call(router: &axum::Router, req: Request<Body>) -> serde_json::Value {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap();
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

fn manifest(name: &str, replicas: u32) -> String {
    format!(
        "name: {name}\nreplicas: {replicas}\nnetwork: host\ncontainers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [sleep, '3600']\n",
        registry()
    )
}

/// One replica of `sleep` on the node's bridge, publishing one port or none.
fn bridged(name: &str, publish: bool) -> String {
    format!(
        "name: {name}\nlabels: {{univrs.io/network: bridge}}\ncontainers:\n  - name: main\n    image: {}/test/busybox:1\n    command: [sleep, '3600']\n{}",
        registry(),
        if publish {
            "    ports: [{container_port: 8080}]\n"
        } else {
            ""
        }
    )
}

/// The bench's own bridge network (its bridge is removed at the end).
fn bench_network(dir: &Path) -> Option<CniConfig> {
    check_plugins(Path::new("/usr/lib/cni")).ok()?;
    let mut c = CniConfig::new(dir.join("cni"), "10.87.0.0/24".parse().ok()?);
    c.name = "ubench".into();
    c.bridge = "ubench0".into();
    // As a daemon has them by default (`--warm-networks`).
    c.warm = orchestrator_daemon::DEFAULT_WARM_NETWORKS;
    Some(c)
}

fn remove_bench_network(c: &CniConfig) {
    use container_runtime::youki::cni::guard;
    let _ = std::process::Command::new("ip")
        .args(["link", "del", c.bridge.as_str()])
        .output();
    for (from, dir, chain) in [
        ("INPUT", "-i", guard::chain(&c.bridge)),
        ("FORWARD", "-o", guard::forward_chain(&c.bridge)),
    ] {
        for args in [
            vec!["-w", "-D", from, dir, &c.bridge, "-j", &chain],
            vec!["-w", "-F", &chain],
            vec!["-w", "-X", &chain],
        ] {
            let _ = std::process::Command::new("iptables").args(args).output();
        }
    }
}

async fn pull_figure(dir: &Path) -> (Duration, u64) {
    let mut times = Vec::new();
    let mut size = 0;
    for i in 0..5 {
        let store = ImageStore::new(ImageStoreConfig {
            root: dir.join(format!("pull-{i}")),
            insecure_registries: vec![registry()],
            pull_policy: PullPolicy::IfNotPresent,
            max_cache_bytes: 1 << 30,
            credentials: Default::default(),
            limits: Default::default(),
        })
        .unwrap();
        let started = Instant::now();
        let image = store
            .ensure(&format!("{}/test/busybox:1", registry()))
            .await
            .unwrap();
        times.push(started.elapsed());
        size = image.size_bytes;
    }
    times.sort();
    (times[times.len() / 2], size)
}

/// Creates and starts `n` containers from `template` with libcontainer
/// directly, timing create+start; kills and deletes them afterwards.
fn raw_baseline(template: &Path, image_rootfs: &Path, work: &Path, n: usize) -> Vec<Duration> {
    let text = std::fs::read_to_string(template).unwrap();
    let state_root = work.join("state");
    std::fs::create_dir_all(&state_root).unwrap();
    let mut times = Vec::new();
    for i in 0..n {
        let id = format!("raw-{i}-{}", std::process::id());
        let bundle = work.join(&id);
        std::fs::create_dir_all(&bundle).unwrap();
        let mut spec: serde_json::Value = serde_json::from_str(&text).unwrap();
        spec["root"]["path"] = image_rootfs.display().to_string().into();
        spec["root"]["readonly"] = true.into();
        spec["linux"]["cgroupsPath"] = format!("/univrs-bench/{id}").into();
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        let started = Instant::now();
        let mut c = ContainerBuilder::new(id.clone(), SyscallType::default())
            .with_root_path(&state_root)
            .unwrap()
            .as_init(&bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .unwrap();
        c.start().unwrap();
        times.push(started.elapsed());
        let pid = c.pid().unwrap();
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::__WALL));
        let mut c = Container::load(state_root.join(&id)).unwrap();
        c.delete(true).unwrap();
    }
    times
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let (pull, size) = pull_figure(dir.path()).await;

    let mut cfg = YoukiConfig::new(dir.path().join("runtime"));
    cfg.insecure_registries = vec![registry()];
    // The baseline runs on the host's network, which a node refuses unless
    // its operator allows it.
    cfg.allow_host_network = true;
    let network = bench_network(dir.path());
    cfg.cni = network.clone();
    let runtime = Arc::new(YoukiRuntime::new(cfg).await.unwrap());
    let node = test_node(1, 64_000, 256 << 30);
    runtime.init_node(node.id).await.unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap());
    let deps = Deps {
        store,
        runtime: runtime.clone(),
        cluster: Arc::new(MockClusterManager::new(node.clone())),
        scheduler: Arc::new(SimpleScheduler::new(SimpleSchedulerConfig::default())),
        metrics: Arc::new(Metrics::new().unwrap()),
        events: EventHub::new(4096),
    };
    let cancel = CancellationToken::new();
    let orch = Arc::new(
        Orchestrator::start(
            ReconcilerConfig {
                // The bridge series triple the workloads of one owner.
                quotas: orchestrator_core::OwnerQuotas {
                    max_workloads: 1_000,
                    ..Default::default()
                },
                ..ReconcilerConfig::default()
            },
            deps,
            cancel.clone(),
        )
        .await
        .unwrap(),
    );
    let health = Arc::new(Health::new());
    health.set_ready(true);
    let gate = AuthGate::new(AuthConfig::default(), AUDIENCE);
    let router = rest::router(AppState::with_gate(orch, gate, health));
    let key = SigningKey::from_bytes(&[9; 32]);

    // Warm-up: the image is pulled once here.
    let mut status = runtime.subscribe_status();
    call(
        &router,
        signed(
            &key,
            "POST",
            "/api/v1/workloads",
            manifest("warm", 1).as_bytes(),
        ),
    )
    .await;
    loop {
        let s = status.recv().await.unwrap();
        if s.state == ContainerState::Running {
            break;
        }
    }

    let mut api = Vec::new();
    let mut on_bridge = Vec::new();
    let mut unpublished = Vec::new();
    let mut port_ready = Vec::new();
    let mut first_container = None;
    // Host network; bridge with a published port; bridge without.
    let kinds = if network.is_some() { 3 } else { 1 };
    for j in 0..SAMPLES * kinds {
        let (i, kind) = (j / kinds, j % kinds);
        // One creation on an idle node: its warm attachments made again
        // (in the background) since the last one.
        if let Some(c) = &network {
            let deadline = Instant::now() + Duration::from_secs(30);
            while runtime.warm_ready().len() < c.warm {
                assert!(
                    Instant::now() < deadline,
                    "the warm attachments are not made"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let mut status = runtime.subscribe_status();
        let body = match kind {
            0 => manifest(&format!("b{i}"), 1),
            1 => bridged(&format!("n{i}"), true),
            _ => bridged(&format!("u{i}"), false),
        };
        let started = Instant::now();
        let w = call(
            &router,
            signed(&key, "POST", "/api/v1/workloads", body.as_bytes()),
        )
        .await;
        let id: WorkloadId = serde_json::from_value(w["id"].clone()).unwrap();
        loop {
            let s = status.recv().await.unwrap();
            if s.workload_id == id && s.state == ContainerState::Running {
                match kind {
                    0 => {
                        api.push(started.elapsed());
                        first_container.get_or_insert(s.id);
                    }
                    1 => on_bridge.push(started.elapsed()),
                    _ => unpublished.push(started.elapsed()),
                }
                // Its port is published while it starts; Ready (it has no
                // probe) once that is done.
                if kind == 1 {
                    let mut ready = s.ready;
                    while !ready {
                        let s = status.recv().await.unwrap();
                        ready = s.workload_id == id && s.ready;
                    }
                    port_ready.push(started.elapsed());
                }
                break;
            }
        }
    }
    api.sort();
    on_bridge.sort();
    unpublished.sort();
    port_ready.sort();

    let template_id = first_container.unwrap();
    let data = dir.path().join("runtime");
    let template = data
        .join("containers")
        .join(template_id.as_str())
        .join("config.json");
    let image_rootfs: PathBuf = {
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                data.join("containers")
                    .join(template_id.as_str())
                    .join("record.json"),
            )
            .unwrap(),
        )
        .unwrap();
        PathBuf::from(record["image_rootfs"].as_str().unwrap())
    };
    let work = dir.path().join("raw");
    let raw = {
        let (template, rootfs, work) = (template.clone(), image_rootfs.clone(), work.clone());
        tokio::task::spawn_blocking(move || raw_baseline(&template, &rootfs, &work, SAMPLES))
            .await
            .unwrap()
    };
    let mut raw = raw;
    raw.sort();

    for i in 0..SAMPLES {
        call(
            &router,
            signed(&key, "DELETE", &format!("/api/v1/workloads/b{i}"), b""),
        )
        .await;
        if network.is_some() {
            for bridged in [format!("n{i}"), format!("u{i}")] {
                call(
                    &router,
                    signed(&key, "DELETE", &format!("/api/v1/workloads/{bridged}"), b""),
                )
                .await;
            }
        }
    }
    call(
        &router,
        signed(&key, "DELETE", "/api/v1/workloads/warm", b""),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !runtime.list_containers(node.id).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "containers were not removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut status = runtime.subscribe_status();
    let started = Instant::now();
    let w = call(
        &router,
        signed(
            &key,
            "POST",
            "/api/v1/workloads",
            manifest("many", AT_ONCE).as_bytes(),
        ),
    )
    .await;
    let id: WorkloadId = serde_json::from_value(w["id"].clone()).unwrap();
    let mut running = HashSet::new();
    while running.len() < AT_ONCE as usize {
        let s = status.recv().await.unwrap();
        if s.workload_id == id && s.state == ContainerState::Running {
            running.insert(s.id);
        }
    }
    let many = started.elapsed();
    call(
        &router,
        signed(&key, "DELETE", "/api/v1/workloads/many", b""),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !runtime.list_containers(node.id).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "containers were not removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    if let Some(c) = &network {
        runtime.drain_warm().await;
        runtime.shutdown();
        remove_bench_network(c);
    }

    let (api50, api99) = (percentile(&api, 0.5), percentile(&api, 0.99));
    let (raw50, raw99) = (percentile(&raw, 0.5), percentile(&raw, 0.99));
    println!(
        "image pull + unpack, test/busybox:1 ({:.1} MB): median of 5 {:.1} ms",
        size as f64 / 1e6,
        ms(pull)
    );
    println!("writable layers: {}", runtime.layer_mode());
    println!(
        "API call -> process running, {SAMPLES} containers: p50 {:.1} ms, p99 {:.1} ms",
        ms(api50),
        ms(api99)
    );
    println!(
        "raw libcontainer create+start, same bundle, {SAMPLES} containers: p50 {:.1} ms, p99 {:.1} ms",
        ms(raw50),
        ms(raw99)
    );
    println!("ratio p50: {:.2}x (target <= 3x)", ms(api50) / ms(raw50));
    if on_bridge.is_empty() {
        println!("bridge networking: not measured (CNI plugins missing from /usr/lib/cni)");
    } else {
        let (b50, b99) = (percentile(&on_bridge, 0.5), percentile(&on_bridge, 0.99));
        println!(
            "API call -> process running on the bridge (address + 1 published port), {SAMPLES} containers: p50 {:.1} ms, p99 {:.1} ms; {:.2}x the host network's p50 (target <= 1.5x)",
            ms(b50),
            ms(b99),
            ms(b50) / ms(api50)
        );
        let (r50, r99) = (percentile(&port_ready, 0.5), percentile(&port_ready, 0.99));
        println!(
            "API call -> Ready on the bridge, its port published (no probe), {SAMPLES} containers: p50 {:.1} ms, p99 {:.1} ms",
            ms(r50),
            ms(r99),
        );
        let (u50, u99) = (
            percentile(&unpublished, 0.5),
            percentile(&unpublished, 0.99),
        );
        println!(
            "API call -> process running on the bridge (address, no published port), {SAMPLES} containers: p50 {:.1} ms, p99 {:.1} ms; {:.2}x the host network's p50",
            ms(u50),
            ms(u99),
            ms(u50) / ms(api50)
        );
    }
    println!(
        "{AT_ONCE} containers at once (one workload of {AT_ONCE} replicas): all running in {:.0} ms",
        ms(many)
    );
}
