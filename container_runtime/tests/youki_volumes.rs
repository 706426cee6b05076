//! Volumes on real containers (youki): data kept across containers and a
//! lost mount, the size enforced by the kernel, read-only mounts, deletion
//! refused while mounted, and a deleted volume wiped.
//!
//! Needs root, cgroups, loop devices, e2fsprogs and the test registry
//! (`./scripts/test-registry start`), as `youki.rs` does.
#![cfg(target_os = "linux")]

mod youki_common;

use container_runtime::youki::YoukiRuntime;
use container_runtime_interface::{
    ContainerRuntime, ContainerSpec, RuntimeError, VolumeAttachment, VolumeRef,
};
use orchestrator_shared_types::PublicKey;
use youki_common::*;

fn data() -> VolumeRef {
    VolumeRef {
        owner: PublicKey([5; 32]),
        name: "data".into(),
    }
}

fn with_volume(script: &str, read_only: bool) -> ContainerSpec {
    let mut s = spec(config("busybox", &["sh", "-c", script]));
    s.volumes = vec![VolumeAttachment {
        volume: data(),
        size_bytes: 8 << 20,
        mount_path: "/data".into(),
        read_only,
    }];
    s
}

/// Runs `script` with the volume at `/data` to its end; its exit code and
/// its output (stdout and stderr).
async fn run(rt: &YoukiRuntime, script: &str, read_only: bool) -> (i32, String) {
    let id = create(rt, &with_volume(script, read_only)).await;
    let status = exited(rt, &id).await;
    let out = output(rt, &id).await;
    rt.remove_container(&id).await.expect("removing");
    (status.exit_code.expect("an exit code"), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_keeps_its_data_is_bounded_by_its_size_and_is_wiped_on_delete() {
    let t = runtime().await;
    let rt = &t.rt;
    let (code, out) = run(rt, "echo kept > /data/file && cat /data/file", false).await;
    assert_eq!((code, out.trim()), (0, "kept"), "{out}");
    let image = rt.volume_image(&data());
    assert!(image.exists(), "{} was made", image.display());
    assert_eq!(
        std::fs::metadata(&image).expect("image").len(),
        8 << 20,
        "the image has the volume's size"
    );

    // Another container (a restart, a new generation) sees the file.
    let (code, out) = run(rt, "cat /data/file", false).await;
    assert_eq!((code, out.trim()), (0, "kept"), "{out}");

    // The node lost the mount (a reboot, a daemon in a new mount
    // namespace): the next container mounts it again, data and all.
    let mount = image.with_extension("");
    let umount = std::process::Command::new("umount")
        .arg(&mount)
        .status()
        .expect("umount runs");
    assert!(umount.success(), "unmounting {}", mount.display());
    let (code, out) = run(rt, "cat /data/file", false).await;
    assert_eq!((code, out.trim()), (0, "kept"), "{out}");

    // Writing past the size fails inside the container.
    let (code, out) = run(
        rt,
        "dd if=/dev/zero of=/data/big bs=1M count=16 2>&1; echo dd=$?",
        false,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("No space left on device"), "{out}");
    assert!(!out.contains("dd=0"), "dd must fail: {out}");

    // Read-only: reading works, writing does not.
    let (code, out) = run(rt, "cat /data/file && touch /data/x 2>&1", true).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("kept"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");

    // Not wiped while a container mounts it.
    let id = create(rt, &with_volume("sleep 3600", false)).await;
    match rt.delete_volume(NODE, &data()).await {
        Err(RuntimeError::VolumeInUse { containers: 1, .. }) => {}
        other => panic!("deleting a mounted volume: {other:?}"),
    }
    assert!(image.exists(), "a volume in use is kept");
    rt.remove_container(&id).await.expect("removing");

    rt.delete_volume(NODE, &data()).await.expect("deleting");
    assert!(!image.exists(), "the image is gone");
    assert!(!mount.exists(), "the mount point is gone");
    // Deleting again: already gone.
    rt.delete_volume(NODE, &data())
        .await
        .expect("deleting again");

    // A new volume of that name starts empty.
    let (code, out) = run(rt, "ls -A /data", false).await;
    assert_eq!((code, out.trim()), (0, "lost+found"), "{out}");
    rt.delete_volume(NODE, &data())
        .await
        .expect("deleting at the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_outlives_a_runtime_restart_and_stays_in_use_by_adopted_containers() {
    let dir = std::sync::Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let first = open(std::sync::Arc::clone(&dir)).await;
    let id = create(
        &first.rt,
        &with_volume("echo kept > /data/file && sleep 3600", false),
    )
    .await;
    let deadline = std::time::Instant::now() + DEADLINE;
    while !mount_has_file(&first.rt) {
        assert!(std::time::Instant::now() < deadline, "the file is written");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    first.rt.shutdown();
    drop(first);

    // A new daemon: the running container is adopted, and holds the volume.
    let second = open(std::sync::Arc::clone(&dir)).await;
    match second.rt.delete_volume(NODE, &data()).await {
        Err(RuntimeError::VolumeInUse { containers: 1, .. }) => {}
        other => panic!("deleting a volume an adopted container mounts: {other:?}"),
    }
    second.rt.remove_container(&id).await.expect("removing");
    let (code, out) = run(&second.rt, "cat /data/file", false).await;
    assert_eq!((code, out.trim()), (0, "kept"), "{out}");
    second
        .rt
        .delete_volume(NODE, &data())
        .await
        .expect("deleting");
    assert!(!second.rt.volume_image(&data()).exists());
}

/// Whether the node's mount of the volume holds `file` yet.
fn mount_has_file(rt: &YoukiRuntime) -> bool {
    rt.volume_image(&data())
        .with_extension("")
        .join("file")
        .exists()
}
