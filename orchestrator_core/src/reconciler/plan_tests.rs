//! Table-driven tests of [`plan`]: one row per situation a workload can be in.

use std::time::Duration;

use orchestrator_shared_types::{InstanceStatus, RestartPolicy, Revision, UpdateStrategy};

use super::super::compare::Verdict;
use super::super::test_fixtures::{build_all, strategy, workload, C};
use super::*;

/// One row: a workload's instances, and the plan wanted for them.
struct Row {
    name: &'static str,
    replicas: u32,
    strategy: UpdateStrategy,
    instances: Vec<C>,
    create: usize,
    /// Removal reasons, in the order planned.
    remove: Vec<RemoveReason>,
    start: usize,
    restart: usize,
    release: usize,
    requeue: Option<Duration>,
}

fn row(name: &'static str, replicas: u32, instances: Vec<C>) -> Row {
    Row {
        name,
        replicas,
        strategy: strategy(1, 0),
        instances,
        create: 0,
        remove: vec![],
        start: 0,
        restart: 0,
        release: 0,
        requeue: None,
    }
}

/// Generation of the workload in every row (see `test_fixtures::workload`).
const G: u64 = 2;
/// An older generation.
const OLD: u64 = 1;
/// How soon a rollout or drain looks again.
const ROLLING: Option<Duration> = Some(Duration::from_millis(50));

fn rows() -> Vec<Row> {
    use InstanceStatus::*;
    use RemoveReason::*;
    let later = Duration::from_secs(7);
    vec![
        row("as desired", 3, (1..=3).map(|n| C::running(G, n)).collect()),
        Row {
            create: 2,
            ..row("scale up", 3, vec![C::running(G, 1)])
        },
        Row {
            remove: vec![ScaleDown, ScaleDown],
            ..row("scale down", 1, (1..=3).map(|n| C::running(G, n)).collect())
        },
        Row {
            remove: vec![ScaleDown],
            ..row(
                "scale down removes what does not run first, and does not start it",
                2,
                vec![
                    C::running(G, 1),
                    C::running(G, 2).with(Pending, Verdict::NeedsStart),
                    C::running(G, 3),
                ],
            )
        },
        Row {
            start: 1,
            restart: 1,
            requeue: Some(later),
            ..row(
                "start, restart, and wait for a back-off",
                3,
                vec![
                    C::running(G, 1).with(Pending, Verdict::NeedsStart),
                    C::running(G, 2).with(Failed, Verdict::RestartDue),
                    C::running(G, 3).with(Failed, Verdict::RestartLater(later)),
                ],
            )
        },
        Row {
            create: 1,
            release: 1,
            ..row(
                "a lost replica is replaced",
                2,
                vec![
                    C::running(G, 1),
                    C::running(G, 2).with(Unknown, Verdict::Lost),
                ],
            )
        },
        Row {
            create: 1,
            remove: vec![Forgotten],
            ..row(
                "a replica lost too long is forgotten",
                1,
                vec![C::running(G, 2).with(Unknown, Verdict::Forget)],
            )
        },
        Row {
            release: 1,
            ..row(
                "a finished replica counts and is not replaced",
                1,
                vec![C::running(G, 1).with(Succeeded, Verdict::Terminal)],
            )
        },
        Row {
            create: 1,
            requeue: ROLLING,
            ..row(
                "rollout with no unavailability: surge first",
                4,
                (1..=4).map(|n| C::running(OLD, n)).collect(),
            )
        },
        Row {
            strategy: strategy(1, 1),
            create: 1,
            remove: vec![Replaced],
            requeue: ROLLING,
            ..row(
                "rollout with one unavailable",
                4,
                (1..=4).map(|n| C::running(OLD, n)).collect(),
            )
        },
        Row {
            strategy: strategy(2, 1),
            remove: vec![Replaced, Replaced, Replaced],
            requeue: ROLLING,
            ..row(
                "rollout: what does not run goes regardless of the budget",
                3,
                vec![
                    C::running(G, 1),
                    C::running(G, 2),
                    C::running(OLD, 3).with(Failed, Verdict::RestartDue),
                    C::running(OLD, 4),
                    C::running(OLD, 1),
                ],
            )
        },
        Row {
            create: 1,
            requeue: ROLLING,
            ..row(
                "drain with no unavailability: replacement first",
                3,
                (1..=3).map(|_| C::running(G, 1).draining()).collect(),
            )
        },
        Row {
            strategy: strategy(1, 1),
            create: 1,
            remove: vec![Drained],
            requeue: ROLLING,
            ..row(
                "drain with one unavailable",
                3,
                (1..=3).map(|_| C::running(G, 1).draining()).collect(),
            )
        },
        Row {
            remove: vec![Drained],
            requeue: ROLLING,
            ..row(
                "drain: a replacement runs, so one drained instance goes",
                3,
                vec![
                    C::running(G, 1).draining(),
                    C::running(G, 1).draining(),
                    C::running(G, 2),
                    C::running(G, 3),
                ],
            )
        },
        Row {
            strategy: strategy(1, 1),
            create: 1,
            remove: vec![Drained],
            requeue: ROLLING,
            ..row(
                "drain: what is not running goes at once and is not started there",
                3,
                vec![
                    C::running(G, 1)
                        .draining()
                        .with(Pending, Verdict::NeedsStart),
                    C::running(G, 1).draining(),
                    C::running(G, 2),
                ],
            )
        },
        Row {
            release: 1,
            ..row(
                "drain: a finished instance stays as history",
                1,
                vec![C::running(G, 1)
                    .draining()
                    .with(Succeeded, Verdict::Terminal)],
            )
        },
        Row {
            remove: vec![Drained],
            requeue: ROLLING,
            ..row(
                "drain of a replica above the wanted count",
                1,
                vec![C::running(G, 1).draining(), C::running(G, 2)],
            )
        },
    ]
}

#[test]
fn each_situation_gets_its_plan() {
    for r in rows() {
        let w = workload(r.replicas, r.strategy, RestartPolicy::Always);
        let compared = build_all(&w, &r.instances);
        let drift = Drift {
            desired: r.replicas,
            available: compared.iter().filter(|c| c.is_available()).count() as u32,
            ..Drift::default()
        };
        let p = plan(&w, &compared, drift);
        let reasons: Vec<RemoveReason> = p.remove.iter().map(|(_, why)| *why).collect();
        assert_eq!(p.create, r.create, "{}: create", r.name);
        assert_eq!(reasons, r.remove, "{}: removals", r.name);
        assert_eq!(p.start.len(), r.start, "{}: starts", r.name);
        assert_eq!(p.restart.len(), r.restart, "{}: restarts", r.name);
        assert_eq!(p.release.len(), r.release, "{}: releases", r.name);
        assert_eq!(p.requeue, r.requeue, "{}: requeue", r.name);
        assert!(!p.rollback, "{}: no rollback", r.name);

        // The bounds every plan keeps: no more than replicas + max_surge
        // active after it, and a removal never takes the running replicas
        // below replicas - max_unavailable.
        let active = compared.iter().filter(|c| c.is_active()).count();
        let surge_cap = r.replicas as usize + r.strategy.max_surge as usize;
        assert!(
            active + p.create <= surge_cap.max(active),
            "{}: surge exceeded",
            r.name
        );
        let removed_running = p
            .remove
            .iter()
            .filter(|(i, _)| i.status == InstanceStatus::Running)
            .count();
        let available = drift.available as usize;
        let min_available =
            (r.replicas as usize).saturating_sub(r.strategy.max_unavailable as usize);
        if removed_running > 0 && !reasons.contains(&RemoveReason::ScaleDown) {
            assert!(
                available - removed_running >= min_available,
                "{}: {removed_running} running removed of {available}",
                r.name
            );
        }
        // Nothing is both removed and started.
        for (gone, _) in &p.remove {
            assert!(
                !p.start.iter().chain(&p.restart).any(|i| i.id == gone.id),
                "{}: {} removed and started",
                r.name,
                gone.id
            );
        }
    }
}

#[test]
fn a_rollout_that_keeps_failing_rolls_back_instead() {
    // (auto rollback, failures of the new generation, has a previous template, rolls back)
    let table = [
        (true, 3, true, true),
        (true, 2, true, false),
        (false, 5, true, false),
        (true, 5, false, false),
    ];
    for (auto, failures, previous, rolls_back) in table {
        let mut w = workload(
            2,
            UpdateStrategy {
                auto_rollback: auto,
                rollback_after_failures: 3,
                ..strategy(1, 0)
            },
            RestartPolicy::Always,
        );
        if previous {
            w.previous = Some(Box::new(Revision {
                generation: OLD,
                spec: w.spec.clone(),
            }));
        }
        let compared = build_all(
            &w,
            &[
                C::running(OLD, 1),
                C::running(OLD, 2),
                C::running(G, 3)
                    .with(InstanceStatus::Failed, Verdict::RestartDue)
                    .restarts(failures - 1),
            ],
        );
        let drift = Drift {
            desired: 2,
            available: 2,
            ..Drift::default()
        };
        let p = plan(&w, &compared, drift);
        assert_eq!(
            p.rollback, rolls_back,
            "auto {auto}, {failures} failures, previous {previous}"
        );
        if rolls_back {
            assert_eq!(p.len(), 1, "a rollback is all the pass does");
        }
    }
}

#[test]
fn a_deleted_workload_removes_every_instance() {
    let w = workload(2, strategy(1, 0), RestartPolicy::Always);
    let records: Vec<_> = build_all(&w, &[C::running(G, 1), C::running(OLD, 2)])
        .into_iter()
        .map(|c| c.record)
        .collect();
    let p = plan_deletion(records);
    assert_eq!(p.remove.len(), 2);
    assert!(p
        .remove
        .iter()
        .all(|(_, why)| *why == RemoveReason::WorkloadDeleted));
    assert_eq!(p.len(), 2);
}

#[test]
fn surplus_goes_from_the_most_crowded_node_first() {
    let w = workload(2, strategy(1, 0), RestartPolicy::Always);
    let compared = build_all(&w, &[C::running(G, 1), C::running(G, 2), C::running(G, 2)]);
    let drift = Drift {
        desired: 2,
        available: 3,
        ..Drift::default()
    };
    let p = plan(&w, &compared, drift);
    assert_eq!(p.remove.len(), 1);
    assert_eq!(p.remove[0].0.node_id, compared[1].record.node_id);
}
