//! A container's own usage (`container_usage`) on the youki runtime, read
//! from its cgroup while it runs and after it exited; needs what `youki.rs`
//! needs (root, cgroups, the test registry).
#![cfg(target_os = "linux")]

mod youki_common;

use std::time::{Duration, Instant};

use container_runtime_interface::{ContainerRuntime, ContainerState, RuntimeError};
use youki_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_reports_its_usage_until_it_is_removed() {
    let t = runtime().await;
    let mut c = config("busybox", &["sh", "-c", "while :; do :; done"]);
    c.resources.limits.cpu = Some("500m".parse().expect("quantity"));
    let id = create(&t.rt, &spec(c)).await;

    // Half a CPU: 0.2 s of CPU time within about 0.4 s of running.
    let deadline = Instant::now() + DEADLINE;
    let running = loop {
        let u = t.rt.container_usage(&id).await.expect("usage");
        if let Some(u) = u.filter(|u| u.cpu_seconds > 0.2) {
            break u;
        }
        assert!(Instant::now() < deadline, "CPU time still {u:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(running.memory_bytes > 0, "{running:?}");

    t.rt.stop_container(&id, Duration::ZERO)
        .await
        .expect("stop");
    let s = exited(&t.rt, &id).await;
    assert_eq!(s.state, ContainerState::Exited);
    // The cgroup stays until removal: an exited container still answers,
    // with at least the CPU time it had used.
    let after =
        t.rt.container_usage(&id)
            .await
            .expect("usage after exit")
            .expect("the cgroup of an exited container is still there");
    assert!(after.cpu_seconds >= running.cpu_seconds, "{after:?}");

    t.rt.remove_container(&id).await.expect("remove");
    assert!(matches!(
        t.rt.container_usage(&id).await,
        Err(RuntimeError::NotFound(_))
    ));
}
