//! The reconciler against a mock cluster: scale, update, delete, node loss and
//! return, restart policies and back-off.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use container_runtime::mock::MockBehaviour;
use container_runtime_interface::{ContainerRuntime, ContainerState};
use orchestrator_core::ReconcileEvent;
use orchestrator_shared_types::{InstanceStatus, NodeStatus, RestartPolicy, UpdateStrategy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_workloads_of_three_replicas_converge_on_ten_nodes() {
    let h = memory_harness(10).await;
    for i in 0..100 {
        h.apply(spec(&format!("w{i}"), 3)).await;
    }
    h.wait_containers(300).await;
    for i in 0..100 {
        h.wait_running(&format!("w{i}"), 3).await;
    }
    // Spread: no node holds more than its share plus slack.
    for n in &h.nodes {
        let on = h.runtime.containers_on(n.id).len();
        assert!(
            (20..=40).contains(&on),
            "node {} runs {on} containers",
            n.id.short()
        );
    }
    // Converged means a further pass does nothing.
    for w in h.orch.list_workloads().await.unwrap() {
        assert_eq!(
            h.orch.reconcile_now(w.id).await.unwrap().actions,
            0,
            "{}",
            w.name()
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_to_zero_and_back() {
    let h = memory_harness(3).await;
    h.apply(spec("web", 4)).await;
    h.wait_running("web", 4).await;
    h.orch.scale(&OWNER, "web", 0).await.unwrap();
    h.wait_running("web", 0).await;
    h.wait_containers(0).await;
    h.orch.scale(&OWNER, "web", 5).await.unwrap();
    h.wait_running("web", 5).await;
    h.wait_containers(5).await;
    let e = h
        .orch
        .scale(&OWNER, "web", 1_000_000)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("replicas:"), "{e}");
    assert!(h.orch.scale(&OWNER, "nope", 1).await.is_err());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_replaces_every_instance_within_its_bounds() {
    let h = memory_harness(4).await;
    let mut s = spec("api", 6);
    s.update_strategy = UpdateStrategy {
        max_surge: 2,
        max_unavailable: 1,
        ..UpdateStrategy::default()
    };
    let before = h.apply(s.clone()).await;
    h.wait_running("api", 6).await;
    let old: HashSet<_> = h.instances("api").await.into_iter().map(|i| i.id).collect();

    // Track running containers of the workload from the runtime's own events.
    let mut status_rx = h.runtime.subscribe_status();
    let mut running: HashSet<_> = h
        .instances("api")
        .await
        .into_iter()
        .flat_map(|i| i.container_ids)
        .collect();
    s.containers[0].image = "example/app:2".into();
    let after = h.apply(s).await;
    assert_eq!(after.generation, before.generation + 1);

    let mut min_running = running.len();
    let mut max_total = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let instances = h.instances("api").await;
        max_total = max_total.max(instances.len());
        let done = instances.len() == 6
            && instances
                .iter()
                .all(|i| i.generation == after.generation && i.status == InstanceStatus::Running);
        while let Ok(st) = status_rx.try_recv() {
            if st.workload_id != after.id {
                continue;
            }
            match st.state {
                ContainerState::Running => {
                    running.insert(st.id);
                }
                _ => {
                    running.remove(&st.id);
                }
            }
            min_running = min_running.min(running.len());
        }
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollout did not finish: {instances:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        min_running >= 5,
        "running dropped to {min_running}, below replicas - max_unavailable"
    );
    assert!(
        max_total <= 8,
        "{max_total} instances exceeded replicas + max_surge"
    );
    let new: HashSet<_> = h.instances("api").await.into_iter().map(|i| i.id).collect();
    assert!(old.is_disjoint(&new), "every instance was replaced");
    h.wait_containers(6).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_every_instance_and_container() {
    let h = memory_harness(2).await;
    let w = h.apply(spec("gone", 3)).await;
    h.apply(spec("stays", 2)).await;
    h.wait_containers(5).await;
    h.orch.delete_workload(&OWNER, "gone").await.unwrap();
    h.wait_containers(2).await;
    wait_for(
        Duration::from_secs(10),
        "instances of the deleted workload to go",
        || async {
            h.orch
                .list_instances(&w.id)
                .await
                .unwrap()
                .is_empty()
                .then_some(())
        },
    )
    .await;
    assert!(h
        .orch
        .get_workload_by_name(&OWNER, "gone")
        .await
        .unwrap()
        .is_none());
    assert!(h.orch.delete_workload(&OWNER, "gone").await.is_err());
    h.wait_running("stays", 2).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_nodes_instances_are_rescheduled_and_extras_removed_when_it_returns() {
    let h = memory_harness(3).await;
    h.apply(spec("svc", 6)).await;
    h.wait_running("svc", 6).await;
    let victim = h.nodes[1].clone();
    let on_victim = h.runtime.containers_on(victim.id).len();
    assert!(on_victim > 0, "spread put instances on every node");

    // The node vanishes; its containers keep running on the far side.
    let started = tokio::time::Instant::now();
    h.runtime.set_node_reachable(victim.id, false);
    h.cluster.remove_node(&victim.id);
    wait_for(
        Duration::from_secs(5),
        "replacements on live nodes",
        || async {
            let running_elsewhere = h
                .instances("svc")
                .await
                .iter()
                .filter(|i| i.status == InstanceStatus::Running && i.node_id != victim.id)
                .count();
            (running_elsewhere == 6).then_some(())
        },
    )
    .await;
    let took = started.elapsed();
    assert!(
        took < common_resync(),
        "rescheduled in {took:?}, within one resync"
    );
    let lost: Vec<_> = h
        .instances("svc")
        .await
        .into_iter()
        .filter(|i| i.node_id == victim.id)
        .collect();
    assert!(
        lost.iter().all(|i| i.status == InstanceStatus::Unknown),
        "{lost:?}"
    );

    // It comes back with its old containers still running: extras go.
    h.runtime.set_node_reachable(victim.id, true);
    h.cluster.add_node(victim.clone()).unwrap();
    h.wait_running("svc", 6).await;
    h.wait_containers(6).await;
    h.stop().await;
}

fn common_resync() -> Duration {
    orchestrator_core::ReconcilerConfig::for_test().resync_period
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_going_down_counts_as_lost() {
    let h = memory_harness(2).await;
    h.apply(spec("db", 2)).await;
    h.wait_running("db", 2).await;
    let victim = h.nodes[0].id;
    h.runtime.set_node_reachable(victim, false);
    h.cluster.set_status(&victim, NodeStatus::Down).unwrap();
    wait_for(
        Duration::from_secs(5),
        "both replicas on the live node",
        || async {
            let n = h
                .instances("db")
                .await
                .iter()
                .filter(|i| i.status == InstanceStatus::Running && i.node_id != victim)
                .count();
            (n == 2).then_some(())
        },
    )
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_container_is_restarted_with_growing_delays() {
    let h = memory_harness(1).await;
    h.runtime.set_image_behaviour(
        "crash:1",
        MockBehaviour::ExitAfter {
            after: Duration::from_millis(5),
            exit_code: 1,
        },
    );
    let mut events = h.orch.subscribe();
    let w = h.apply(spec_with_image("crashy", 1, "crash:1")).await;
    let mut restarts = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while restarts.len() < 4 {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("restarts keep coming")
            .unwrap();
        if let ReconcileEvent::InstanceRestarted { workload, .. } = ev {
            assert_eq!(workload, w.id);
            restarts.push(tokio::time::Instant::now());
        }
    }
    let gaps: Vec<Duration> = restarts.windows(2).map(|p| p[1] - p[0]).collect();
    // Base 50 ms doubling: 100, 200, 400 ms between restarts 1-2, 2-3, 3-4.
    for pair in gaps.windows(2) {
        assert!(pair[1] > pair[0].mul_f64(1.4), "delays grow: {gaps:?}");
    }
    let inst = &h.instances("crashy").await[0];
    assert!(inst.restarts >= 4);
    assert_eq!(inst.last_exit_code, Some(1));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies_decide_what_happens_on_exit() {
    let h = memory_harness(1).await;
    h.runtime.set_image_behaviour(
        "fail:1",
        MockBehaviour::ExitAfter {
            after: Duration::from_millis(5),
            exit_code: 3,
        },
    );
    h.runtime.set_image_behaviour(
        "ok:1",
        MockBehaviour::ExitAfter {
            after: Duration::from_millis(5),
            exit_code: 0,
        },
    );
    let cases = [
        (
            "never-fail",
            "fail:1",
            RestartPolicy::Never,
            InstanceStatus::Failed,
        ),
        (
            "onfailure-ok",
            "ok:1",
            RestartPolicy::OnFailure,
            InstanceStatus::Succeeded,
        ),
        (
            "never-ok",
            "ok:1",
            RestartPolicy::Never,
            InstanceStatus::Succeeded,
        ),
    ];
    for (name, image, policy, _) in &cases {
        let mut s = spec_with_image(name, 1, image);
        s.restart_policy = *policy;
        h.apply(s).await;
    }
    for (name, _, _, want) in &cases {
        wait_for(
            Duration::from_secs(10),
            &format!("{name} to finish"),
            || async {
                let i = h.instances(name).await;
                (i.len() == 1 && i[0].status == *want).then_some(())
            },
        )
        .await;
    }
    // Give the reconciler a full resync to prove nothing restarts them.
    let mut ev = h.orch.subscribe();
    for w in h.orch.list_workloads().await.unwrap() {
        assert_eq!(h.orch.reconcile_now(w.id).await.unwrap().actions, 0);
    }
    let until = tokio::time::Instant::now() + common_resync() * 2;
    while let Ok(Ok(e)) = tokio::time::timeout_at(until, ev.recv()).await {
        assert!(
            !matches!(e, ReconcileEvent::InstanceRestarted { .. }),
            "{e:?}"
        );
    }
    for (name, _, _, want) in &cases {
        let i = h.instances(name).await;
        assert_eq!(
            (i.len(), i[0].status, i[0].restarts),
            (1, *want, 0),
            "{name}"
        );
    }
    // OnFailure restarts a failure.
    let mut s = spec_with_image("onfailure-fail", 1, "fail:1");
    s.restart_policy = RestartPolicy::OnFailure;
    h.apply(s).await;
    wait_for(Duration::from_secs(10), "a restart on failure", || async {
        let i = h.instances("onfailure-fail").await;
        (i.len() == 1 && i[0].restarts >= 1).then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_rollout_rolls_back_to_the_previous_template() {
    let h = memory_harness(2).await;
    h.runtime.set_image_behaviour(
        "bad:2",
        MockBehaviour::ExitAfter {
            after: Duration::from_millis(2),
            exit_code: 1,
        },
    );
    let good = spec_with_image("roll", 3, "good:1");
    let v1 = h.apply(good.clone()).await;
    h.wait_running("roll", 3).await;
    let mut events = h.orch.subscribe();
    let bad = h.apply(spec_with_image("roll", 3, "bad:2")).await;
    assert_eq!(bad.generation, v1.generation + 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("a rollback")
            .unwrap();
        if let ReconcileEvent::RolledBack { generation, .. } = ev {
            assert_eq!(generation, bad.generation + 1);
            break;
        }
    }
    h.wait_running("roll", 3).await;
    let w = h
        .orch
        .get_workload_by_name(&OWNER, "roll")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.spec.containers[0].image, "good:1");
    h.wait_containers(3).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_that_fit_nowhere_wait_until_a_node_can_take_them() {
    let h = memory_harness(1).await;
    let mut s = spec("big", 2);
    s.containers[0].resources.requests.cpu = Some(orchestrator_shared_types::CpuQuantity(12_000));
    let mut events = h.orch.subscribe();
    h.apply(s).await;
    let reason = loop {
        if let ReconcileEvent::PlacementFailed { reason, .. } = events.recv().await.unwrap() {
            break reason;
        }
    };
    assert!(
        reason.contains("cpu"),
        "the reason names the resource: {reason}"
    );
    h.wait_running("big", 1).await;
    h.cluster
        .add_node(cluster_manager::mock::test_node(50, NODE_CPU, NODE_MEM))
        .unwrap();
    {
        use container_runtime_interface::ContainerRuntime;
        h.runtime
            .init_node(cluster_manager::mock::test_node(50, 1, 1).id)
            .await
            .unwrap();
    }
    h.wait_running("big", 2).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_nobody_owns_are_removed_when_their_node_joins() {
    use container_runtime_interface::ContainerSpec;
    use orchestrator_shared_types::{InstanceId, WorkloadId};
    let h = memory_harness(1).await;
    let stray = cluster_manager::mock::test_node(77, NODE_CPU, NODE_MEM);
    h.runtime.init_node(stray.id).await.unwrap();
    let orphan = ContainerSpec {
        instance_id: InstanceId::new(),
        workload_id: WorkloadId::new(),
        config: spec("x", 1).containers[0].clone(),
        labels: Default::default(),
        volumes: Vec::new(),
        secrets: Default::default(),
    };
    h.runtime.create_container(stray.id, &orphan).await.unwrap();
    assert_eq!(h.runtime.running_count(), 1);
    h.cluster.add_node(stray).unwrap();
    h.wait_containers(0).await;
    h.stop().await;
}

/// A pass that would move a record the instance state machine forbids
/// (Succeeded -> Running: containers of a finished record still run) is
/// refused by `WorkloadInstance::transition`, and the stored record stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_never_moves_a_record_the_state_machine_forbids() {
    let h = memory_harness(1).await;
    let mut s = spec("done", 1);
    s.restart_policy = RestartPolicy::Never;
    let w = h.apply(s).await;
    h.wait_running("done", 1).await;
    let mut finished = h.instances("done").await.remove(0);
    finished
        .transition(
            InstanceStatus::Succeeded,
            Some("Completed".into()),
            chrono::Utc::now(),
        )
        .unwrap();
    h.store.put_instance(&finished).await.unwrap();
    assert_eq!(h.runtime.running_count(), 1, "its container still runs");

    h.orch.reconcile_now(w.id).await.unwrap();
    h.orch.reconcile_now(w.id).await.unwrap();
    let stored = h.store.get_instance(&finished.id).await.unwrap();
    assert_eq!(
        stored.as_ref(),
        Some(&finished),
        "the finished record must not be moved back to Running"
    );
    assert_eq!(
        h.instances("done").await.len(),
        1,
        "and nothing replaced it"
    );
    h.stop().await;
}
