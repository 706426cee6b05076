//! The contract every [`ContainerRuntime`] must meet, as tests any
//! implementation runs against itself (feature `testsuite`).
//!
//! ```ignore
//! container_runtime_interface::testsuite::run_all(|| async {
//!     let runtime = Arc::new(MyRuntime::new());
//!     let node = NodeId([1; 32]);
//!     runtime.init_node(node).await.unwrap();
//!     RuntimeUnderTest { runtime, node, config_template: busybox_sleep() }
//! })
//! .await;
//! ```
//!
//! The cases assume nothing a real runtime would not do: they use only the
//! trait, wait for asynchronous effects with a deadline ([`DEADLINE`]), ignore
//! status events of other containers, and remove what they create. The
//! template container must run until stopped (a mock: any image; youki:
//! `busybox sleep 3600`), and its image must have `echo` on its `PATH` (the log
//! case runs `echo`).
//!
//! Failures panic with a message naming the case, as tests do.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use orchestrator_shared_types::{ContainerConfig, ContainerId, InstanceId, NodeId, WorkloadId};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{
    ContainerRuntime, ContainerSpec, ContainerState, ContainerStatus, LogOptions, RuntimeError,
};

/// How long a case waits for an asynchronous effect (an event, a log line).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Grace period the cases give `stop_container`.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// A runtime to test, with a node it has initialised and a container to run.
pub struct RuntimeUnderTest {
    /// The implementation under test.
    pub runtime: Arc<dyn ContainerRuntime>,
    /// A node `runtime` serves, already passed to `init_node`.
    pub node: NodeId,
    /// A container that runs until stopped and whose image has `echo`.
    pub config_template: ContainerConfig,
}

impl RuntimeUnderTest {
    /// A spec of the template for a fresh instance.
    pub fn spec(&self) -> ContainerSpec {
        ContainerSpec {
            instance_id: InstanceId::new(),
            workload_id: WorkloadId::new(),
            config: self.config_template.clone(),
            labels: Default::default(),
            volumes: Vec::new(),
            secrets: Default::default(),
        }
    }

    /// Creates the container of `spec` on the test node, panicking on failure.
    pub async fn create(&self, spec: &ContainerSpec) -> ContainerId {
        self.runtime
            .create_container(self.node, spec)
            .await
            .unwrap_or_else(|e| panic!("creating container {}: {e}", spec.config.name))
    }

    /// Removes a container at the end of a case, panicking on failure.
    pub async fn cleanup(&self, id: &ContainerId) {
        self.runtime
            .remove_container(id)
            .await
            .unwrap_or_else(|e| panic!("removing container {id} after the case: {e}"));
    }
}

/// Runs every case, each on a fresh runtime from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = RuntimeUnderTest>,
{
    create_starts_a_running_container(&make().await).await;
    a_running_container_answers_for_its_usage(&make().await).await;
    create_is_idempotent_per_instance_and_name(&make().await).await;
    created_containers_are_listed_on_their_node(&make().await).await;
    stop_ends_the_container_with_an_exit_code(&make().await).await;
    stop_is_idempotent(&make().await).await;
    remove_forgets_the_container(&make().await).await;
    remove_of_an_unknown_container_is_not_found(&make().await).await;
    logs_hold_the_container_output(&make().await).await;
    status_events_follow_start_and_stop_in_order(&make().await).await;
    uninitialised_nodes_are_refused(&make().await).await;
}

/// `container_usage` of a running container answers (with figures where the
/// runtime measures them, `None` where it does not), never an error.
pub async fn a_running_container_answers_for_its_usage(t: &RuntimeUnderTest) {
    let id = t.create(&t.spec()).await;
    let usage = t.runtime.container_usage(&id).await;
    assert!(usage.is_ok(), "usage of {id}: {usage:?}");
    if let Ok(Some(u)) = usage {
        assert!(u.cpu_seconds >= 0.0, "{u:?}");
    }
    t.cleanup(&id).await;
}

/// `create_container` returns once the container runs, and its status names its
/// node, instance, workload and container name.
pub async fn create_starts_a_running_container(t: &RuntimeUnderTest) {
    let spec = t.spec();
    let id = t.create(&spec).await;
    let status = status_of(t, &id).await;
    assert_eq!(status.id, id, "status of {id} has another id");
    assert_eq!(
        status.state,
        ContainerState::Running,
        "a created container runs: {status:?}"
    );
    assert_eq!(status.node_id, t.node);
    assert_eq!(status.instance_id, spec.instance_id);
    assert_eq!(status.workload_id, spec.workload_id);
    assert_eq!(status.name, spec.config.name);
    assert!(
        status.started_at.is_some(),
        "a running container has started_at: {status:?}"
    );
    assert_eq!(
        status.exit_code, None,
        "a running container has no exit code: {status:?}"
    );
    t.cleanup(&id).await;
}

/// Creating again for the same (instance, name) fails with `AlreadyExists`
/// naming the existing container, and creates nothing.
pub async fn create_is_idempotent_per_instance_and_name(t: &RuntimeUnderTest) {
    let spec = t.spec();
    let id = t.create(&spec).await;
    match t.runtime.create_container(t.node, &spec).await {
        Err(RuntimeError::AlreadyExists(existing)) => assert_eq!(existing, id),
        other => panic!("second create of the same instance and name: expected AlreadyExists({id}), got {other:?}"),
    }
    let same_instance = list(t)
        .await
        .into_iter()
        .filter(|s| s.instance_id == spec.instance_id);
    assert_eq!(
        same_instance.count(),
        1,
        "a duplicate create must not add a container"
    );
    t.cleanup(&id).await;
}

/// `list_containers(node)` includes a container created there.
pub async fn created_containers_are_listed_on_their_node(t: &RuntimeUnderTest) {
    let spec = t.spec();
    let id = t.create(&spec).await;
    let listed = list(t).await;
    let found = listed.iter().find(|s| s.id == id);
    let found = found.unwrap_or_else(|| panic!("container {id} is not listed: {listed:?}"));
    assert_eq!(found.instance_id, spec.instance_id);
    assert_eq!(found.node_id, t.node);
    t.cleanup(&id).await;
}

/// `stop_container` leaves the container `Exited` with an exit code.
pub async fn stop_ends_the_container_with_an_exit_code(t: &RuntimeUnderTest) {
    let id = t.create(&t.spec()).await;
    stop(t, &id).await;
    let status = status_of(t, &id).await;
    assert_eq!(
        status.state,
        ContainerState::Exited,
        "a stopped container exited: {status:?}"
    );
    assert!(
        status.exit_code.is_some(),
        "a stopped container has an exit code: {status:?}"
    );
    assert!(
        status.finished_at.is_some(),
        "a stopped container has finished_at: {status:?}"
    );
    t.cleanup(&id).await;
}

/// Stopping a stopped container succeeds and changes nothing.
pub async fn stop_is_idempotent(t: &RuntimeUnderTest) {
    let id = t.create(&t.spec()).await;
    stop(t, &id).await;
    let first = status_of(t, &id).await;
    stop(t, &id).await;
    let second = status_of(t, &id).await;
    assert_eq!(second.state, ContainerState::Exited);
    assert_eq!(
        second.exit_code, first.exit_code,
        "a second stop changed the exit code"
    );
    t.cleanup(&id).await;
}

/// After `remove_container` (of a running container), the container is gone:
/// its status is `NotFound` and it is no longer listed.
pub async fn remove_forgets_the_container(t: &RuntimeUnderTest) {
    let id = t.create(&t.spec()).await;
    t.cleanup(&id).await;
    match t.runtime.get_container_status(&id).await {
        Err(RuntimeError::NotFound(missing)) => assert_eq!(missing, id),
        other => panic!("status of removed container {id}: expected NotFound, got {other:?}"),
    }
    assert!(
        !list(t).await.iter().any(|s| s.id == id),
        "removed container {id} is still listed"
    );
}

/// Removing a container the runtime never had fails with `NotFound`.
pub async fn remove_of_an_unknown_container_is_not_found(t: &RuntimeUnderTest) {
    let id = ContainerId("contract-suite-no-such-container".to_owned());
    match t.runtime.remove_container(&id).await {
        Err(RuntimeError::NotFound(missing)) => assert_eq!(missing, id),
        other => panic!("removing unknown container {id}: expected NotFound, got {other:?}"),
    }
}

/// What a container prints can be read back, and `tail` keeps the last lines.
pub async fn logs_hold_the_container_output(t: &RuntimeUnderTest) {
    let text = format!("contract-suite-{}", InstanceId::new());
    let mut spec = t.spec();
    spec.config.command = vec!["echo".to_owned(), text.clone()];
    spec.config.args = Vec::new();
    let id = t.create(&spec).await;

    let deadline = tokio::time::Instant::now() + DEADLINE;
    let lines = loop {
        let lines = t
            .runtime
            .get_container_logs(&id, LogOptions::default())
            .await
            .unwrap_or_else(|e| panic!("reading logs of {id}: {e}"));
        if lines.iter().any(|l| l.line == text) {
            break lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "logs of {id} never showed {text:?}; they are {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let tail = t
        .runtime
        .get_container_logs(&id, LogOptions { tail: Some(1) })
        .await
        .unwrap_or_else(|e| panic!("reading the last log line of {id}: {e}"));
    assert_eq!(tail.len(), 1, "tail 1 of a non-empty log gave {tail:?}");
    if let (Some(last), Some(full_last)) = (tail.first(), lines.last()) {
        assert!(
            last.timestamp >= full_last.timestamp,
            "tail 1 gave {last:?}, older than the last line read before, {full_last:?}"
        );
    }
    t.cleanup(&id).await;
}

/// A subscriber sees the container's `Running` status before its `Exited` one.
pub async fn status_events_follow_start_and_stop_in_order(t: &RuntimeUnderTest) {
    let mut events = t.runtime.subscribe_status();
    let id = t.create(&t.spec()).await;
    stop(t, &id).await;

    let mut seen = Vec::new();
    loop {
        let status = next_status_of(&mut events, &id).await;
        seen.push(status.state);
        if status.state == ContainerState::Exited {
            assert!(
                status.exit_code.is_some(),
                "the Exited event has an exit code: {status:?}"
            );
            break;
        }
    }
    let running = seen.iter().position(|s| *s == ContainerState::Running);
    assert!(
        running.is_some_and(|r| r + 1 < seen.len()),
        "expected a Running event before the Exited one for {id}, saw {seen:?}"
    );
    t.cleanup(&id).await;
}

/// A node that was never initialised takes no containers and lists nothing:
/// both fail with `UnknownNode`.
pub async fn uninitialised_nodes_are_refused(t: &RuntimeUnderTest) {
    let other = NodeId(t.node.0.map(|b| !b));
    match t.runtime.create_container(other, &t.spec()).await {
        Err(RuntimeError::UnknownNode(node)) => assert_eq!(node, other),
        other_result => panic!(
            "creating on uninitialised node {other}: expected UnknownNode, got {other_result:?}"
        ),
    }
    match t.runtime.list_containers(other).await {
        Err(RuntimeError::UnknownNode(node)) => assert_eq!(node, other),
        other_result => {
            panic!("listing uninitialised node {other}: expected UnknownNode, got {other_result:?}")
        }
    }
}

async fn status_of(t: &RuntimeUnderTest, id: &ContainerId) -> ContainerStatus {
    t.runtime
        .get_container_status(id)
        .await
        .unwrap_or_else(|e| panic!("status of container {id}: {e}"))
}

async fn list(t: &RuntimeUnderTest) -> Vec<ContainerStatus> {
    t.runtime
        .list_containers(t.node)
        .await
        .unwrap_or_else(|e| panic!("listing containers of node {}: {e}", t.node))
}

async fn stop(t: &RuntimeUnderTest, id: &ContainerId) {
    t.runtime
        .stop_container(id, STOP_GRACE)
        .await
        .unwrap_or_else(|e| panic!("stopping container {id}: {e}"));
}

/// The next status event about `id`, skipping other containers', within [`DEADLINE`].
async fn next_status_of(
    events: &mut broadcast::Receiver<ContainerStatus>,
    id: &ContainerId,
) -> ContainerStatus {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(status) if status.id == *id => return status,
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => panic!("status subscriber lagged by {n} events"),
                Err(RecvError::Closed) => panic!("status channel closed while waiting for {id}"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("no status event for {id} within {DEADLINE:?}"))
}
