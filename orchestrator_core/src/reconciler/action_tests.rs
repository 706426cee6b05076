//! Tests of [`Action`] and [`error_policy`].

use std::time::Duration;

use cluster_manager_interface::ClusterError;
use container_runtime_interface::RuntimeError;
use orchestrator_shared_types::{ContainerId, InstanceId, NodeId};
use state_store_interface::StoreError;

use super::*;

fn node() -> NodeId {
    cluster_manager::mock::test_node(1, 1000, 1 << 30).id
}

fn image_pull() -> Error {
    Error::Runtime(RuntimeError::ImagePull {
        image: "example/missing:1".into(),
        reason: "manifest unknown".into(),
    })
}

fn store_down() -> Error {
    Error::Store(StoreError::Worker("connection closed".into()))
}

fn node_unreachable() -> Error {
    Error::Runtime(RuntimeError::NodeUnreachable(node()))
}

/// The jitter is ±25 %: the delay after `failures` lies within these bounds
/// of `base · 2^(failures-1)`, capped at `max`.
fn bounds(b: Backoff, failures: u32) -> (Duration, Duration) {
    let raw = b.base.saturating_mul(1 << (failures - 1)).min(b.max);
    (raw.mul_f64(0.75), raw.mul_f64(1.25).min(b.max))
}

fn delay(a: Action) -> Duration {
    match a {
        Action::Requeue(d) => d,
        Action::AwaitChange => panic!("expected a requeue, got {a:?}"),
    }
}

#[test]
fn each_error_has_the_kind_its_retry_depends_on() {
    let cases: Vec<(Error, ErrorKind)> = vec![
        (image_pull(), ErrorKind::Image),
        (
            Error::Runtime(RuntimeError::Create {
                instance: InstanceId::new(),
                name: "main".into(),
                reason: "no such image".into(),
            }),
            ErrorKind::Image,
        ),
        (store_down(), ErrorKind::StoreUnavailable),
        (
            Error::Store(StoreError::NotInitialized),
            ErrorKind::StoreUnavailable,
        ),
        (
            Error::Store(StoreError::InvalidKey {
                field: "key",
                len: 0,
            }),
            ErrorKind::Permanent,
        ),
        (node_unreachable(), ErrorKind::NodeUnreachable),
        (
            Error::Runtime(RuntimeError::UnknownNode(node())),
            ErrorKind::NodeUnreachable,
        ),
        (
            Error::Cluster(ClusterError::UnknownNode(node())),
            ErrorKind::NodeUnreachable,
        ),
        (
            Error::Cluster(ClusterError::ShutDown),
            ErrorKind::Membership,
        ),
        (
            Error::Runtime(RuntimeError::Operation {
                operation: "stopping",
                id: ContainerId("c1".into()),
                reason: "busy".into(),
            }),
            ErrorKind::Runtime,
        ),
        (
            Error::Panicked {
                workload: "w".into(),
            },
            ErrorKind::Permanent,
        ),
        (
            Error::Runtime(RuntimeError::ShutDown),
            ErrorKind::ShuttingDown,
        ),
        (Error::ShuttingDown, ErrorKind::ShuttingDown),
    ];
    for (error, kind) in cases {
        assert_eq!(error.kind(), kind, "{error}");
    }
}

#[test]
fn an_image_pull_backs_off_longer_than_an_unreachable_node_and_that_longer_than_the_store() {
    let cfg = ReconcilerConfig::default();
    for failures in 1..=6 {
        let image = delay(error_policy(&image_pull(), failures, &cfg));
        let node = delay(error_policy(&node_unreachable(), failures, &cfg));
        let store = delay(error_policy(&store_down(), failures, &cfg));
        assert!(
            image > node && node > store,
            "after {failures} failures: image {image:?}, node {node:?}, store {store:?}"
        );
    }
}

#[test]
fn each_kind_backs_off_exponentially_within_its_own_bounds_and_cap() {
    let cfg = ReconcilerConfig::default();
    let store = Backoff {
        base: cfg.error_backoff_base,
        max: cfg.error_backoff_max,
    };
    let table: [(&str, Error, Backoff); 3] = [
        ("image", image_pull(), cfg.image_backoff),
        ("store", store_down(), store),
        ("node", node_unreachable(), cfg.unreachable_backoff),
    ];
    for (name, error, backoff) in table {
        for failures in [1u32, 2, 3, 5, 10, 40] {
            let d = delay(error_policy(&error, failures, &cfg));
            let (lo, hi) = bounds(backoff, failures.min(21));
            assert!(
                d >= lo && d <= hi,
                "{name} after {failures} failures: {d:?} not in {lo:?}..={hi:?}"
            );
            assert!(d <= backoff.max, "{name}: {d:?} exceeds the cap");
        }
    }
}

#[test]
fn the_store_is_retried_soon_even_after_many_failures() {
    let cfg = ReconcilerConfig::default();
    let first = delay(error_policy(&store_down(), 1, &cfg));
    assert!(first <= Duration::from_millis(250), "{first:?}");
    let late = delay(error_policy(&store_down(), 1_000, &cfg));
    assert!(late <= cfg.error_backoff_max, "{late:?}");
}

#[test]
fn nothing_is_retried_while_shutting_down() {
    let cfg = ReconcilerConfig::default();
    assert_eq!(
        error_policy(&Error::ShuttingDown, 1, &cfg),
        Action::AwaitChange
    );
    assert_eq!(
        error_policy(&Error::Runtime(RuntimeError::ShutDown), 3, &cfg),
        Action::AwaitChange
    );
}

#[test]
fn a_zero_failure_count_is_treated_as_the_first_failure() {
    let cfg = ReconcilerConfig::default();
    let d = delay(error_policy(&store_down(), 0, &cfg));
    let (lo, hi) = bounds(
        Backoff {
            base: cfg.error_backoff_base,
            max: cfg.error_backoff_max,
        },
        1,
    );
    assert!(d >= lo && d <= hi, "{d:?}");
}

#[test]
fn the_sooner_action_wins() {
    let s = Duration::from_secs;
    let table = [
        (
            Action::Requeue(s(1)),
            Action::Requeue(s(2)),
            Action::Requeue(s(1)),
        ),
        (
            Action::Requeue(s(3)),
            Action::AwaitChange,
            Action::Requeue(s(3)),
        ),
        (
            Action::AwaitChange,
            Action::Requeue(s(4)),
            Action::Requeue(s(4)),
        ),
        (
            Action::AwaitChange,
            Action::AwaitChange,
            Action::AwaitChange,
        ),
    ];
    for (a, b, want) in table {
        assert_eq!(a.sooner(b), want, "{a:?} vs {b:?}");
        assert_eq!(b.sooner(a), want, "{b:?} vs {a:?}");
    }
    assert_eq!(Action::from_requeue(None), Action::AwaitChange);
    assert_eq!(Action::from_requeue(Some(s(5))).requeue_after(), Some(s(5)));
}
