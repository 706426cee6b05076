//! The `ContainerRuntime` contract suite on the mock, and the mock's own controls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use container_runtime::{MockBehaviour, MockRuntime};
use container_runtime_interface::testsuite::{self, RuntimeUnderTest};
use container_runtime_interface::{
    ContainerRuntime, ContainerSpec, ContainerState, ContainerStatus, LogOptions, RuntimeError,
};
use futures::StreamExt;
use orchestrator_shared_types::{ContainerConfig, ContainerId, InstanceId, NodeId, WorkloadId};
use tokio::sync::broadcast;

const NODE: NodeId = NodeId([1; 32]);
const OTHER: NodeId = NodeId([2; 32]);
/// Deadline of waits in real time.
const WAIT: Duration = Duration::from_secs(5);
/// Deadline of waits on the paused clock, far beyond any mock timer in these tests.
const PAUSED_WAIT: Duration = Duration::from_secs(3600);

fn config(image: &str) -> ContainerConfig {
    ContainerConfig {
        name: "main".into(),
        image: image.into(),
        command: vec!["sleep".into(), "3600".into()],
        args: Vec::new(),
        env: BTreeMap::new(),
        secret_env: Vec::new(),
        secret_files: Vec::new(),
        volumes: Vec::new(),
        ports: Vec::new(),
        resources: Default::default(),
        liveness_probe: None,
        readiness_probe: None,
    }
}

fn spec(image: &str) -> ContainerSpec {
    ContainerSpec {
        instance_id: InstanceId::new(),
        workload_id: WorkloadId::new(),
        config: config(image),
        labels: BTreeMap::new(),
        volumes: Vec::new(),
        secrets: Default::default(),
    }
}

async fn runtime() -> MockRuntime {
    let rt = MockRuntime::new();
    rt.init_node(NODE)
        .await
        .expect("initialising the test node");
    rt
}

/// The next status event about `id`, within `limit`: [`WAIT`] in real time,
/// [`PAUSED_WAIT`] on the paused clock (where time jumps straight to the next timer).
async fn next_status(
    rx: &mut broadcast::Receiver<ContainerStatus>,
    id: &ContainerId,
    limit: Duration,
) -> ContainerStatus {
    tokio::time::timeout(limit, async {
        loop {
            let s = rx.recv().await.expect("status channel");
            if s.id == *id {
                return s;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no status event for {id} within {limit:?}"))
}

#[tokio::test]
async fn mock_runtime_passes_the_contract_suite() {
    testsuite::run_all(|| async {
        RuntimeUnderTest {
            runtime: Arc::new(runtime().await) as Arc<dyn ContainerRuntime>,
            node: NODE,
            config_template: config("mock/anything:1"),
        }
    })
    .await;
}

#[tokio::test]
async fn mock_runtime_with_latency_passes_the_contract_suite() {
    testsuite::run_all(|| async {
        RuntimeUnderTest {
            runtime: Arc::new(runtime().await.with_latency(Duration::from_millis(2))),
            node: NODE,
            config_template: config("mock/anything:1"),
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn exit_after_ends_the_container_on_the_tokio_clock() {
    let rt = runtime().await;
    rt.set_image_behaviour(
        "job:1",
        MockBehaviour::ExitAfter {
            after: Duration::from_secs(30),
            exit_code: 0,
        },
    );
    rt.set_image_behaviour(
        "crash:1",
        MockBehaviour::ExitAfter {
            after: Duration::from_secs(60),
            exit_code: 3,
        },
    );
    let mut rx = rt.subscribe_status();
    let start = tokio::time::Instant::now();
    let job = rt.create_container(NODE, &spec("job:1")).await.unwrap();
    let crash = rt.create_container(NODE, &spec("crash:1")).await.unwrap();
    assert_eq!(
        next_status(&mut rx, &job, PAUSED_WAIT).await.state,
        ContainerState::Running
    );
    assert_eq!(
        next_status(&mut rx, &crash, PAUSED_WAIT).await.state,
        ContainerState::Running
    );

    let done = next_status(&mut rx, &job, PAUSED_WAIT).await;
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(
        (done.state, done.exit_code, done.reason.as_deref()),
        (ContainerState::Exited, Some(0), Some("Completed"))
    );
    let failed = next_status(&mut rx, &crash, PAUSED_WAIT).await;
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    assert_eq!(
        (failed.exit_code, failed.reason.as_deref()),
        (Some(3), Some("Error"))
    );
    assert_eq!(rt.running_count(), 0);
    assert_eq!(rt.get_container_status(&crash).await.unwrap(), failed);
}

#[tokio::test(start_paused = true)]
async fn a_container_stopped_before_its_timer_stays_stopped() {
    let rt = runtime().await;
    rt.set_image_behaviour(
        "job:1",
        MockBehaviour::ExitAfter {
            after: Duration::from_secs(30),
            exit_code: 0,
        },
    );
    let id = rt.create_container(NODE, &spec("job:1")).await.unwrap();
    rt.stop_container(&id, Duration::ZERO).await.unwrap();
    tokio::time::advance(Duration::from_secs(31)).await;
    let status = rt.get_container_status(&id).await.unwrap();
    assert_eq!(
        (status.exit_code, status.reason.as_deref()),
        (Some(143), Some("Killed"))
    );
}

#[tokio::test]
async fn failing_images_create_nothing() {
    let rt = runtime().await;
    rt.set_image_behaviour("missing:1", MockBehaviour::FailPull);
    rt.set_image_behaviour(
        "broken:1",
        MockBehaviour::FailCreate {
            reason: "no such binary".into(),
        },
    );
    let err = rt
        .create_container(NODE, &spec("missing:1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::ImagePull { image, .. } if image == "missing:1"),
        "{err}"
    );
    let err = rt
        .create_container(NODE, &spec("broken:1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Create { reason, .. } if reason == "no such binary"),
        "{err}"
    );
    assert_eq!((rt.created_count(), rt.container_count()), (0, 0));

    // The same instance can be created once the image works again.
    let s = spec("missing:1");
    assert!(rt.create_container(NODE, &s).await.is_err());
    rt.set_image_behaviour("missing:1", MockBehaviour::RunForever);
    rt.create_container(NODE, &s).await.unwrap();
    assert_eq!(rt.created_count(), 1);
}

#[tokio::test]
async fn crashes_and_oom_kills_are_published() {
    let rt = runtime().await;
    let mut rx = rt.subscribe_status();
    let a = rt.create_container(NODE, &spec("app:1")).await.unwrap();
    let b = rt.create_container(NODE, &spec("app:1")).await.unwrap();
    rt.exit_container(&a, 1).unwrap();
    rt.kill_container_oom(&b).unwrap();
    rt.exit_container(&a, 0).unwrap(); // already exited: nothing changes
    let states: Vec<(ContainerId, ContainerState, Option<i32>, Option<String>)> =
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|s| (s.id, s.state, s.exit_code, s.reason))
            .collect();
    assert_eq!(
        states,
        vec![
            (a.clone(), ContainerState::Running, None, None),
            (b.clone(), ContainerState::Running, None, None),
            (
                a.clone(),
                ContainerState::Exited,
                Some(1),
                Some("Error".into())
            ),
            (
                b.clone(),
                ContainerState::Exited,
                Some(137),
                Some("OOMKilled".into())
            ),
        ]
    );
    assert!(matches!(
        rt.exit_container(&ContainerId("nope".into()), 0),
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_unreachable_node_refuses_calls_but_keeps_its_containers() {
    let rt = runtime().await;
    rt.init_node(OTHER).await.unwrap();
    let mut rx = rt.subscribe_status();
    let far = rt.create_container(NODE, &spec("app:1")).await.unwrap();
    let near = rt.create_container(OTHER, &spec("app:1")).await.unwrap();
    next_status(&mut rx, &far, WAIT).await;
    next_status(&mut rx, &near, WAIT).await;

    rt.set_node_reachable(NODE, false);
    let unreachable = |r: Result<(), RuntimeError>| matches!(r, Err(RuntimeError::NodeUnreachable(n)) if n == NODE);
    assert!(unreachable(
        rt.create_container(NODE, &spec("app:1")).await.map(drop)
    ));
    assert!(unreachable(rt.list_containers(NODE).await.map(drop)));
    assert!(unreachable(rt.get_container_status(&far).await.map(drop)));
    assert!(unreachable(
        rt.get_container_logs(&far, LogOptions::default())
            .await
            .map(drop)
    ));
    assert!(unreachable(rt.follow_container_logs(&far).await.map(drop)));
    assert!(unreachable(rt.stop_container(&far, Duration::ZERO).await));
    assert!(unreachable(rt.remove_container(&far).await));
    assert!(unreachable(rt.init_node(NODE).await));
    // The other node is unaffected, and the far container still runs over there.
    assert_eq!(
        rt.get_container_status(&near).await.unwrap().state,
        ContainerState::Running
    );
    assert_eq!(rt.containers_on(NODE)[0].state, ContainerState::Running);
    assert_eq!(rt.running_count(), 2);

    // It crashes behind the partition: nobody hears of it until the node is back.
    rt.exit_container(&far, 2).unwrap();
    assert!(rx.try_recv().is_err());
    rt.set_node_reachable(NODE, true);
    let seen = next_status(&mut rx, &far, WAIT).await;
    assert_eq!(
        (seen.state, seen.exit_code),
        (ContainerState::Exited, Some(2))
    );
    assert_eq!(rt.list_containers(NODE).await.unwrap(), vec![seen]);
}

#[tokio::test]
async fn logs_hold_echo_output_and_honour_tail() {
    let rt = runtime().await;
    let mut s = spec("busybox:1");
    s.config.command = vec!["echo".into()];
    s.config.args = vec!["hello".into(), "world".into()];
    let id = rt.create_container(NODE, &s).await.unwrap();
    let lines: Vec<String> = rt
        .get_container_logs(&id, LogOptions::default())
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(lines, ["mock: started main from busybox:1", "hello world"]);
    rt.write_log(&id, "third").unwrap();
    let tail = rt
        .get_container_logs(&id, LogOptions { tail: Some(2) })
        .await
        .unwrap();
    assert_eq!(
        tail.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
        ["hello world", "third"]
    );
    assert_eq!(
        rt.get_container_logs(&id, LogOptions { tail: Some(99) })
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(rt
        .get_container_logs(&id, LogOptions { tail: Some(0) })
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn followers_get_new_lines_until_the_container_exits() {
    let rt = runtime().await;
    let id = rt.create_container(NODE, &spec("app:1")).await.unwrap();
    let mut follow = rt.follow_container_logs(&id).await.unwrap();
    rt.write_log(&id, "one").unwrap();
    rt.write_log(&id, "two").unwrap();
    rt.stop_container(&id, Duration::ZERO).await.unwrap();
    let got = tokio::time::timeout(WAIT, async {
        let mut got = Vec::new();
        while let Some(line) = follow.next().await {
            got.push(line.line);
        }
        got
    })
    .await
    .unwrap();
    assert_eq!(
        got,
        ["one", "two"],
        "only lines after the call, then the end"
    );
    assert!(
        rt.write_log(&id, "late").is_err(),
        "an exited container writes nothing"
    );
    let after_exit = rt.follow_container_logs(&id).await.unwrap();
    assert!(after_exit.collect::<Vec<_>>().await.is_empty());
}

#[tokio::test]
async fn followers_end_when_the_container_is_removed() {
    let rt = runtime().await;
    let id = rt.create_container(NODE, &spec("app:1")).await.unwrap();
    let follow = rt.follow_container_logs(&id).await.unwrap();
    rt.remove_container(&id).await.unwrap();
    let rest = tokio::time::timeout(WAIT, follow.collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn the_mock_does_not_measure_usage() {
    let rt = runtime().await;
    let id = rt.create_container(NODE, &spec("app:1")).await.unwrap();
    assert_eq!(rt.container_usage(&id).await.unwrap(), None);
}

#[tokio::test]
async fn counters_and_reuse_after_remove() {
    let rt = runtime().await;
    rt.init_node(OTHER).await.unwrap();
    let s = spec("app:1");
    let first = rt.create_container(NODE, &s).await.unwrap();
    rt.create_container(OTHER, &spec("app:1")).await.unwrap();
    assert_eq!(
        (rt.created_count(), rt.running_count(), rt.container_count()),
        (2, 2, 2)
    );
    assert_eq!(rt.containers_on(NODE).len(), 1);
    rt.stop_container(&first, Duration::ZERO).await.unwrap();
    assert_eq!(rt.running_count(), 1);
    rt.remove_container(&first).await.unwrap();
    // Once removed, the same instance and name can be created again, with a new id.
    let second = rt.create_container(NODE, &s).await.unwrap();
    assert_ne!(first, second);
    assert_eq!((rt.created_count(), rt.container_count()), (3, 2));
    assert!(matches!(
        rt.stop_container(&first, Duration::ZERO).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_creates_make_one_container() {
    let rt = runtime().await;
    let s = spec("app:1");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (rt, s) = (rt.clone(), s.clone());
            tokio::spawn(async move { rt.create_container(NODE, &s).await })
        })
        .collect();
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(id) => created.push(id),
            Err(RuntimeError::AlreadyExists(id)) => existing.push(id),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(created.len(), 1);
    assert!(existing.iter().all(|id| *id == created[0]));
    assert_eq!(rt.created_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_creation_on_the_tokio_clock() {
    let rt = runtime().await.with_latency(Duration::from_millis(250));
    let start = tokio::time::Instant::now();
    rt.create_container(NODE, &spec("app:1")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(250));
}
