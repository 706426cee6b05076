//! Table-driven tests of [`compare`]: one row per situation an instance can be in.

use std::time::Duration;

use chrono::Utc;
use orchestrator_shared_types::{InstanceStatus, RestartPolicy};

use super::super::sense::{Containers, Observed};
use super::super::test_fixtures::{node, observed, record, strategy, workload};
use super::*;

/// One row: an instance as recorded and as observed, and what compare must say.
struct Row {
    name: &'static str,
    policy: RestartPolicy,
    /// Status of the stored record.
    status: InstanceStatus,
    /// Seconds since the record was last updated.
    age: i64,
    /// The restart the record waits for, in seconds from now (negative: due).
    restart_in: Option<i64>,
    node_lost: bool,
    draining: bool,
    containers: Containers,
    verdict: Verdict,
    /// Status of the record after comparison.
    after: InstanceStatus,
    changed: bool,
    active: bool,
    available: bool,
    evicted: bool,
}

fn running() -> Containers {
    Containers::Running {
        started_at: None,
        ready: true,
        address: None,
        ports: Vec::new(),
    }
}

fn exited(code: i32) -> Containers {
    Containers::Exited {
        code,
        reason: if code == 0 { "Completed" } else { "Error" }.into(),
    }
}

fn row(
    name: &'static str,
    status: InstanceStatus,
    containers: Containers,
    verdict: Verdict,
) -> Row {
    Row {
        name,
        policy: RestartPolicy::Always,
        status,
        age: 5,
        restart_in: None,
        node_lost: false,
        draining: false,
        containers,
        verdict,
        after: status,
        changed: false,
        active: true,
        available: status == InstanceStatus::Running,
        evicted: false,
    }
}

fn rows(cfg: &ReconcilerConfig) -> Vec<Row> {
    use InstanceStatus::*;
    let gc = i64::try_from(cfg.lost_instance_gc.as_secs()).unwrap_or(i64::MAX);
    vec![
        row("running as recorded", Running, running(), Verdict::Healthy),
        Row {
            after: Running,
            changed: true,
            available: true,
            ..row(
                "pending whose containers now run",
                Pending,
                running(),
                Verdict::Healthy,
            )
        },
        Row {
            changed: true,
            ..row(
                "running but no longer ready",
                Running,
                Containers::Running {
                    started_at: None,
                    ready: false,
                    address: None,
                    ports: Vec::new(),
                },
                Verdict::Healthy,
            )
        },
        row(
            "placed, not started",
            Pending,
            Containers::NotStarted,
            Verdict::NeedsStart,
        ),
        Row {
            after: Failed,
            changed: true,
            available: false,
            ..row(
                "crashed under Always: restart after the back-off",
                Running,
                exited(1),
                Verdict::RestartLater(cfg.restart_delay(0)),
            )
        },
        Row {
            policy: RestartPolicy::OnFailure,
            after: Succeeded,
            changed: true,
            available: false,
            ..row(
                "completed under OnFailure",
                Running,
                exited(0),
                Verdict::Terminal,
            )
        },
        Row {
            policy: RestartPolicy::Never,
            after: Failed,
            changed: true,
            available: false,
            ..row("crashed under Never", Running, exited(2), Verdict::Terminal)
        },
        Row {
            after: Failed,
            changed: true,
            available: false,
            ..row(
                "containers vanished: restart now, no back-off",
                Running,
                Containers::Missing,
                Verdict::RestartDue,
            )
        },
        Row {
            restart_in: Some(-1),
            ..row(
                "failed, restart due",
                Failed,
                Containers::NotStarted,
                Verdict::RestartDue,
            )
        },
        Row {
            restart_in: Some(30),
            ..row(
                "failed, restart later",
                Failed,
                Containers::NotStarted,
                Verdict::RestartLater(Duration::from_secs(30)),
            )
        },
        Row {
            node_lost: true,
            after: Unknown,
            changed: true,
            active: false,
            available: false,
            ..row(
                "node lost while running",
                Running,
                Containers::Unreachable("node lost".into()),
                Verdict::Lost,
            )
        },
        Row {
            node_lost: true,
            active: false,
            ..row(
                "node still lost",
                Unknown,
                Containers::Unreachable("node lost".into()),
                Verdict::Lost,
            )
        },
        Row {
            node_lost: true,
            age: gc + 1,
            active: false,
            ..row(
                "node lost longer than the gc period",
                Unknown,
                Containers::Unreachable("node lost".into()),
                Verdict::Forget,
            )
        },
        row(
            "runtime not answering: leave it",
            Running,
            Containers::Unreachable("timeout".into()),
            Verdict::Unobservable,
        ),
        Row {
            active: false,
            ..row(
                "back from a lost node, not answering yet",
                Unknown,
                Containers::Unreachable("timeout".into()),
                Verdict::Unobservable,
            )
        },
        Row {
            draining: true,
            evicted: true,
            ..row(
                "running on a draining node",
                Running,
                running(),
                Verdict::Healthy,
            )
        },
        Row {
            draining: true,
            evicted: true,
            ..row(
                "placed on a draining node",
                Pending,
                Containers::NotStarted,
                Verdict::NeedsStart,
            )
        },
        Row {
            policy: RestartPolicy::Never,
            draining: true,
            available: false,
            ..row(
                "finished on a draining node stays as history",
                Succeeded,
                Containers::NotStarted,
                Verdict::Terminal,
            )
        },
        // Moves the instance state machine forbids are refused: the record
        // stays as stored and the verdict is taken from it.
        Row {
            policy: RestartPolicy::Never,
            available: false,
            ..row(
                "finished for good, its containers seen running: stays Succeeded",
                Succeeded,
                running(),
                Verdict::Terminal,
            )
        },
        Row {
            restart_in: Some(-1),
            available: false,
            ..row(
                "finished, restart due, containers seen running: the restart replaces them",
                Succeeded,
                running(),
                Verdict::RestartDue,
            )
        },
        Row {
            restart_in: Some(30),
            ..row(
                "succeeded, restart later, containers vanished: not turned Failed",
                Succeeded,
                Containers::Missing,
                Verdict::RestartLater(Duration::from_secs(30)),
            )
        },
        Row {
            restart_in: Some(30),
            node_lost: true,
            after: Unknown,
            changed: true,
            active: false,
            ..row(
                "failed, waiting for a restart, node lost",
                Failed,
                Containers::Unreachable("node lost".into()),
                Verdict::Lost,
            )
        },
    ]
}

#[test]
fn each_situation_gets_its_verdict_status_and_counts() {
    let cfg = ReconcilerConfig::for_test();
    let now = Utc::now();
    for r in rows(&cfg) {
        let mut w = workload(1, strategy(1, 0), r.policy);
        w.spec.restart_policy = r.policy;
        let mut rec = record(
            &w,
            w.generation,
            node(1),
            r.status,
            now - chrono::Duration::seconds(r.age),
        );
        rec.restart_after = r.restart_in.map(|s| now + chrono::Duration::seconds(s));
        let mut o = observed(rec, r.node_lost, r.containers.clone());
        o.draining = r.draining;
        let obs = Observed {
            workload: Some(w.clone()),
            instances: vec![o],
            now,
        };
        let (compared, _) = compare(&cfg, &w, &obs);
        let c = &compared[0];
        assert_eq!(c.verdict, r.verdict, "{}: verdict", r.name);
        assert_eq!(c.record.status, r.after, "{}: status", r.name);
        assert_eq!(c.changed, r.changed, "{}: changed", r.name);
        assert_eq!(c.is_active(), r.active, "{}: active", r.name);
        assert_eq!(c.is_available(), r.available, "{}: available", r.name);
        assert_eq!(c.is_evicted(), r.evicted, "{}: evicted", r.name);
        assert_eq!(
            c.was_lost,
            r.status == InstanceStatus::Unknown,
            "{}: was_lost",
            r.name
        );
        if c.record.status != InstanceStatus::Running {
            assert!(
                !c.record.ready,
                "{}: only a running instance is ready",
                r.name
            );
        }
    }
}

#[test]
fn an_instance_that_ran_long_restarts_without_back_off() {
    let cfg = ReconcilerConfig::for_test();
    let now = Utc::now();
    let w = workload(1, strategy(1, 0), RestartPolicy::Always);
    let table = [
        // (restarts so far, ran for, expected delay)
        (3, Duration::from_millis(10), cfg.restart_delay(3)),
        (3, cfg.restart_backoff_reset * 2, cfg.restart_delay(0)),
        (0, Duration::from_millis(10), cfg.restart_delay(0)),
    ];
    for (restarts, ran, delay) in table {
        let mut rec = record(&w, w.generation, node(1), InstanceStatus::Running, now);
        rec.restarts = restarts;
        rec.started_at = Some(now - chrono::Duration::from_std(ran).unwrap_or_default());
        let obs = Observed {
            workload: Some(w.clone()),
            instances: vec![observed(rec, false, exited(1))],
            now,
        };
        let (compared, _) = compare(&cfg, &w, &obs);
        assert_eq!(
            compared[0].verdict,
            Verdict::RestartLater(delay),
            "{restarts} restarts, ran {ran:?}"
        );
        assert_eq!(compared[0].record.last_exit_code, Some(1));
    }
}

#[test]
fn the_drift_counts_what_the_instances_are() {
    use InstanceStatus::*;
    let cfg = ReconcilerConfig::for_test();
    let now = Utc::now();
    let w = workload(4, strategy(1, 0), RestartPolicy::Always);
    let old = w.generation - 1;
    // (generation, status, node lost, draining, containers)
    let table = [
        (w.generation, Running, false, false, running()),
        (old, Running, false, false, running()),
        (w.generation, Pending, false, false, Containers::NotStarted),
        (
            w.generation,
            Running,
            true,
            false,
            Containers::Unreachable("lost".into()),
        ),
        (w.generation, Running, false, true, running()),
    ];
    let instances = table
        .into_iter()
        .map(|(g, status, lost, draining, containers)| {
            let mut o = observed(record(&w, g, node(1), status, now), lost, containers);
            o.draining = draining;
            o
        })
        .collect();
    let obs = Observed {
        workload: Some(w.clone()),
        instances,
        now,
    };
    let (_, drift) = compare(&cfg, &w, &obs);
    assert_eq!(
        drift,
        Drift {
            desired: 4,
            active: 4,
            available: 3,
            outdated: 1,
            lost: 1,
            draining: 1,
        }
    );
    assert!(drift.is_urgent(), "a replica is lost");
    let calm = Drift {
        desired: 2,
        active: 2,
        available: 2,
        ..Drift::default()
    };
    assert!(!calm.is_urgent());
}
