//! A volume with real containers through the REST API (issue 18): a
//! workload appends a line to a file of its volume at each start and prints
//! the file, then tries to write past the volume's size. Its container is
//! killed and restarted, then a rolling update replaces it: each new
//! container finds every line written before, and every write past the size
//! fails with "No space left on device". The volume cannot be deleted while
//! the workload uses it; once the workload is gone, deleting it wipes it.
//!
//! Needs root, cgroups, loop devices, e2fsprogs and the test registry
//! (`./scripts/test-registry start`), as `youki_api.rs` does.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rest_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cluster_manager::mock::test_node;
use container_runtime::youki::YoukiRuntime;
use container_runtime_interface::{ContainerRuntime, LogOptions, VolumeRef};
use orchestrator_rest::AuthConfig;
use orchestrator_shared_types::ContainerId;
use rest_common::{api_on, key, public, registry, send_to, signed, signed_with, youki_runtime};
use serde_json::Value;
use tempfile::TempDir;

const DEADLINE: Duration = Duration::from_secs(60);

fn manifest(version: &str) -> String {
    format!(
        "name: db\nnetwork: none\ncontainers:\n  - name: main\n    image: {}/test/busybox:1\n    \
         env: {{VERSION: '{version}'}}\n    \
         command: [sh, -c, 'echo start-$VERSION >> /data/log; cat /data/log; \
         dd if=/dev/zero of=/data/fill bs=1M count=32 2>&1; rm -f /data/fill; sleep 3600']\n    \
         volumes: [{{name: data, mount_path: /data, size: 8Mi}}]\n",
        registry()
    )
}

async fn logs(runtime: &YoukiRuntime, id: &ContainerId) -> String {
    runtime
        .get_container_logs(id, LogOptions::default())
        .await
        .map(|lines| lines.into_iter().map(|l| l.line + "\n").collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_keeps_its_data_across_a_kill_and_a_rolling_update_and_is_wiped_on_delete() {
    let dir = TempDir::new().unwrap();
    let runtime = youki_runtime(dir.path()).await;
    let node = test_node(1, 4_000, 8 << 30);
    let node_id = node.id;
    let api = api_on(AuthConfig::default(), runtime.clone(), node).await;
    let user = key(1);
    let call = |method: &'static str, path: String, body: Vec<u8>, yaml: bool| {
        let req = if yaml {
            signed_with(&user, method, &path, &body, "application/yaml")
        } else {
            signed(&user, method, &path, &body)
        };
        let router = api.router.clone();
        async move { send_to(&router, req).await }
    };
    // The running container of `db` at `generation` whose output holds
    // every one of `lines`, once there is one.
    let running = |generation: u64, lines: &'static [&'static str]| {
        let call = &call;
        let runtime = Arc::clone(&runtime);
        async move {
            let deadline = Instant::now() + DEADLINE;
            loop {
                let (_, page) = call(
                    "GET",
                    "/api/v1/workloads/db/instances".into(),
                    Vec::new(),
                    false,
                )
                .await;
                let items = page["items"].as_array().cloned().unwrap_or_default();
                let current: Vec<&Value> = items
                    .iter()
                    .filter(|i| i["status"] == "Running" && i["generation"] == generation)
                    .collect();
                if let [only] = current.as_slice() {
                    let id = ContainerId(only["container_ids"][0].as_str().unwrap().into());
                    let out = logs(&runtime, &id).await;
                    if lines.iter().all(|l| out.contains(l)) {
                        return (id, out);
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "waiting for {lines:?}: {items:#?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    let (status, body) = call(
        "POST",
        "/api/v1/workloads".into(),
        manifest("1").into_bytes(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (first, out) = running(1, &["start-1", "No space left on device"]).await;
    assert!(out.starts_with("start-1\n"), "{out}");

    // Killed: restarted, and the new container finds the first line.
    let pid = runtime.pid(&first).expect("a pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + DEADLINE;
    let (second, out) = loop {
        let (id, out) = running(1, &["start-1"]).await;
        if id != first
            && out.contains("start-1\nstart-1\n")
            && out.contains("No space left on device")
        {
            break (id, out);
        }
        assert!(Instant::now() < deadline, "the restart: {out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(out.contains("No space left on device"), "{out}");

    // A rolling update: the new generation finds both lines.
    let (status, body) = call(
        "PUT",
        "/api/v1/workloads/db".into(),
        manifest("2").into_bytes(),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (third, out) = running(
        2,
        &["start-1\nstart-1\nstart-2\n", "No space left on device"],
    )
    .await;
    assert_ne!(third, second);
    assert!(out.contains("No space left on device"), "{out}");

    // In use: not deleted.
    let (status, body) = call("DELETE", "/api/v1/volumes/data".into(), Vec::new(), false).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let volume = VolumeRef {
        owner: public(&user),
        name: "data".into(),
    };
    let image = runtime.volume_image(&volume);
    assert!(image.exists());

    // Unused: wiped.
    let (status, body) = call("DELETE", "/api/v1/workloads/db".into(), Vec::new(), false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = call("DELETE", "/api/v1/volumes/data".into(), Vec::new(), false).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(Instant::now() < deadline, "deleting the volume: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!image.exists(), "the image is wiped and gone");
    api.cancel.cancel();
    runtime.wait_idle().await;
    for c in runtime.list_containers(node_id).await.unwrap() {
        runtime.remove_container(&c.id).await.unwrap();
    }
    runtime.shutdown();
}
