//! Leader election and fenced writes against a real etcd cluster: one leader
//! among several stores, observers following it, `lost` firing before etcd
//! can expire a stopped leader's lease, and a deposed leader's late writes
//! refused by the fence.
//!
//! The cluster is named by `UNIVRS_TEST_ETCD` (`scripts/test-etcd start`);
//! without it every test prints why it is skipped and returns. Every test
//! uses a fresh random prefix, hence its own election. Figures (TTL granted,
//! margins, takeover times) are printed: run with `--nocapture` to see them.

mod etcd_common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, GetOptions, WatchOptions};
use orchestrator_shared_types::{NodeId, WorkloadInstance};
use state_store_interface::testsuite::{instance, node, owner, workload};
use state_store_interface::{EtcdStore, Leadership, StateStore, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use etcd_common::{endpoints, fresh_prefix, Proxy};

/// How long any awaited condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);
/// The TTL asked for, the daemon's default; etcd grants its minimum instead.
const TTL: Duration = Duration::from_secs(1);

async fn store(endpoints: &[String], prefix: &str) -> Arc<EtcdStore> {
    let store = EtcdStore::connect(endpoints, prefix)
        .await
        .expect("connecting to the test etcd");
    store.initialize().await.expect("initialising the store");
    Arc::new(store)
}

async fn raw(endpoints: &[String]) -> Client {
    Client::connect(endpoints, None)
        .await
        .expect("connecting a raw client")
}

async fn lead(store: &EtcdStore, value: &str) -> Leadership {
    timeout(DEADLINE, store.campaign(value.into(), TTL))
        .await
        .expect("no leadership within the deadline")
        .expect("campaigning")
}

/// Campaigns in a task; the leadership and when it was won.
fn spawn_campaign(store: &Arc<EtcdStore>, value: &str) -> JoinHandle<(Leadership, Instant)> {
    let (store, value) = (Arc::clone(store), value.as_bytes().to_vec());
    tokio::spawn(async move {
        let leadership = store.campaign(value, TTL).await.expect("campaigning");
        (leadership, Instant::now())
    })
}

async fn won(campaign: JoinHandle<(Leadership, Instant)>) -> (Leadership, Instant) {
    timeout(DEADLINE, campaign)
        .await
        .expect("the campaign did not win within the deadline")
        .expect("the campaign task failed")
}

/// Waits until the election of `prefix` has `n` candidates' keys.
async fn until_candidates(raw: &mut Client, prefix: &str, n: i64) {
    let options = GetOptions::new().with_prefix().with_count_only();
    let until = Instant::now() + DEADLINE;
    loop {
        let count = raw
            .get(format!("{prefix}/election/leader/"), Some(options.clone()))
            .await
            .expect("counting candidates")
            .count();
        if count == n {
            return;
        }
        assert!(Instant::now() < until, "{count} candidates, not {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_observed(rx: &mut watch::Receiver<Option<Vec<u8>>>, want: Option<&str>) {
    timeout(
        DEADLINE,
        rx.wait_for(|v| v.as_deref() == want.map(str::as_bytes)),
    )
    .await
    .unwrap_or_else(|_| panic!("the observer did not see {want:?} within the deadline"))
    .expect("the observer task ended");
}

/// The outcome of `write` once the store answers: an unreachable or
/// reconnecting etcd (`StoreError::Etcd`) is tried again.
async fn settled<T, F, Fut>(mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let until = Instant::now() + DEADLINE;
    loop {
        match write().await {
            Err(StoreError::Etcd(e)) if Instant::now() < until => {
                eprintln!("etcd unavailable, trying again: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Tries every kind of write with `store`, each named by `tag`; their outcomes.
async fn writes(store: &EtcdStore, tag: &str) -> Vec<(&'static str, Result<(), StoreError>)> {
    let w = workload(owner(7), &format!("{tag}-workload"));
    let batch = [7, 8].map(|n| instance(w.id, NodeId([n; 32])));
    let mut n = node(7);
    n.address = format!("{tag}.invalid:7000");
    let record = format!("{tag}-record");
    vec![
        (
            "put_record",
            settled(|| store.put_record("notes", &record, "{}")).await,
        ),
        ("put_workload", settled(|| store.put_workload(&w)).await),
        (
            "put_instances_batch",
            settled(|| store.put_instances_batch(&batch)).await,
        ),
        ("put_node", settled(|| store.put_node(&n)).await),
        (
            "delete_record",
            settled(|| store.delete_record("notes", "kept"))
                .await
                .map(drop),
        ),
    ]
}

/// Asserts that every outcome is a refusal by the fence (`fenced`) or a success.
fn assert_all(fenced: bool, outcomes: &[(&str, Result<(), StoreError>)]) {
    for (what, outcome) in outcomes {
        let as_expected = match outcome {
            Err(StoreError::Fenced { .. }) => fenced,
            Ok(()) => !fenced,
            Err(_) => false,
        };
        assert!(
            as_expected,
            "{what}: {outcome:?}, expected fenced: {fenced}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_grants_its_minimum_ttl() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let mut raw = raw(&endpoints).await;
    let granted = raw.lease_grant(1, None).await.expect("granting a lease");
    println!("asked etcd for a lease of 1 s: granted {} s", granted.ttl());
    assert!(granted.ttl() >= 1);
    raw.lease_revoke(granted.id()).await.expect("revoking it");

    let store = store(&endpoints, &fresh_prefix()).await;
    let leadership = lead(&store, "only").await;
    assert_eq!(
        leadership.ttl(),
        Duration::from_secs(granted.ttl().unsigned_abs()),
        "a leadership reports the TTL etcd granted, not the one asked for"
    );
    leadership.resign().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_elect_one_leader_and_observers_follow_the_handover() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let prefix = fresh_prefix();
    let (a, b) = (
        store(&endpoints, &prefix).await,
        store(&endpoints, &prefix).await,
    );
    let mut raw = raw(&endpoints).await;
    let (mut seen_by_a, mut seen_by_b) = (
        a.observe_leader().await.expect("observing from a"),
        b.observe_leader().await.expect("observing from b"),
    );
    assert_eq!(*seen_by_a.borrow(), None, "nobody leads yet");
    assert_eq!(a.leader().await.expect("reading the leader"), None);

    let (mut for_a, mut for_b) = (spawn_campaign(&a, "a"), spawn_campaign(&b, "b"));
    let (first, second, second_value) = timeout(DEADLINE, async {
        tokio::select! {
            won = &mut for_a => (won, for_b, "b"),
            won = &mut for_b => (won, for_a, "a"),
        }
    })
    .await
    .expect("nobody won within the deadline");
    let (leader, _) = first.expect("the campaign task failed");
    let first_value = if second_value == "a" { "b" } else { "a" };
    until_candidates(&mut raw, &prefix, 2).await;
    for store in [&a, &b] {
        assert_eq!(
            store.leader().await.expect("reading the leader").as_deref(),
            Some(first_value.as_bytes()),
            "both stores name the same leader"
        );
    }
    until_observed(&mut seen_by_a, Some(first_value)).await;
    until_observed(&mut seen_by_b, Some(first_value)).await;
    assert!(
        !second.is_finished() && !leader.lost().is_cancelled(),
        "exactly one leads while the leader holds"
    );

    leader.resign().await;
    let (next, _) = won(second).await;
    until_observed(&mut seen_by_a, Some(second_value)).await;
    until_observed(&mut seen_by_b, Some(second_value)).await;
    assert_eq!(
        a.leader().await.expect("reading the leader").as_deref(),
        Some(second_value.as_bytes())
    );

    next.resign().await;
    until_observed(&mut seen_by_a, None).await;
    until_observed(&mut seen_by_b, None).await;
    assert_eq!(b.leader().await.expect("reading the leader"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_lease_fires_lost_and_the_old_leaders_writes_are_fenced() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let prefix = fresh_prefix();
    let (a, b) = (
        store(&endpoints, &prefix).await,
        store(&endpoints, &prefix).await,
    );
    let mut raw = raw(&endpoints).await;
    let la = lead(&a, "a").await;
    a.set_fence(Some(la.fence()));
    assert_eq!(a.fence(), Some(la.fence()));
    a.put_record("notes", "kept", "{}")
        .await
        .expect("a leader's fenced write succeeds");
    let for_b = spawn_campaign(&b, "b");
    until_candidates(&mut raw, &prefix, 2).await;

    let lost = la.lost();
    let revoked = Instant::now();
    raw.lease_revoke(la.lease_id())
        .await
        .expect("revoking a's lease behind its back");
    timeout(DEADLINE, lost.cancelled())
        .await
        .expect("lost did not fire");
    let noticed = revoked.elapsed();
    println!("revoked lease: lost fired {noticed:?} after the revoke");
    assert!(noticed < la.ttl(), "lost fires promptly: {noticed:?}");

    let (lb, _) = won(for_b).await;
    b.set_fence(Some(lb.fence()));
    assert_all(true, &writes(&a, "a").await);
    assert_all(false, &writes(&b, "b").await);
    assert_eq!(
        b.get_record("notes", "a-record").await.expect("reading"),
        None,
        "nothing of a's was written"
    );
    assert!(
        b.get_workload_by_name(&owner(7), "a-workload")
            .await
            .expect("reading")
            .is_none(),
        "nothing of a's was written"
    );
    lb.resign().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_stops_acting_before_its_lease_expires_and_its_late_writes_fail() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let prefix = fresh_prefix();
    // a reaches etcd only through the proxy: cutting it is a's SIGSTOP.
    let proxy = Proxy::start(&endpoints[0]).await;
    let a = store(&[proxy.url()], &prefix).await;
    let b = store(&endpoints, &prefix).await;
    let mut raw = raw(&endpoints).await;
    let la = lead(&a, "a").await;
    let ttl = la.ttl();
    a.set_fence(Some(la.fence()));
    a.put_record("notes", "kept", "{}")
        .await
        .expect("a leader's fenced write succeeds");
    let lost = la.lost();
    let lost_at = tokio::spawn(async move {
        lost.cancelled().await;
        Instant::now()
    });
    let for_b = spawn_campaign(&b, "b");
    until_candidates(&mut raw, &prefix, 2).await;

    let connections = proxy.forwarded();
    let cut = Instant::now();
    proxy.cut_and_pause();
    let lost_at = timeout(DEADLINE, lost_at)
        .await
        .expect("lost did not fire")
        .expect("the lost task failed");
    let (lb, won_at) = won(for_b).await;
    println!(
        "stopped leader (TTL {ttl:?}): lost fired {:?} after the cut, b won {:?} after it: \
         a stopped acting {:?} before etcd let b lead",
        lost_at - cut,
        won_at - cut,
        won_at.saturating_duration_since(lost_at),
    );
    assert!(
        lost_at < won_at,
        "a stops acting before its lease expires and b wins"
    );
    assert!(
        lost_at - cut <= ttl,
        "lost fires within a TTL of the last renewal"
    );

    let fence = lb.fence();
    b.set_fence(Some(fence.clone()));
    proxy.resume();
    // a, awake again, still thinks its fence is good and writes.
    assert_all(true, &writes(&a, "a").await);
    assert!(proxy.forwarded() > connections, "a reached etcd again");
    b.put_record("notes", "sentinel", "{}")
        .await
        .expect("the new leader's fenced write succeeds");

    // etcd's history since b won: nothing but the election and b's sentinel.
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(fence.revision);
    let mut history = raw
        .watch(format!("{prefix}/"), Some(options))
        .await
        .expect("watching the history");
    let mut changed = Vec::new();
    while !changed.iter().any(|k: &String| k.ends_with("/sentinel")) {
        let resp = timeout(DEADLINE, history.message())
            .await
            .expect("the sentinel did not come within the deadline")
            .expect("the history watch failed")
            .expect("the history watch ended");
        changed.extend(
            resp.events()
                .iter()
                .filter_map(|e| e.kv())
                .map(|kv| String::from_utf8_lossy(kv.key()).into_owned()),
        );
    }
    let election = format!("{prefix}/election/");
    for key in &changed {
        assert!(
            key.starts_with(&election) || key.ends_with("/sentinel"),
            "{key} was written after b won: {changed:?}"
        );
    }
    assert!(
        b.get_record("notes", "kept")
            .await
            .expect("reading")
            .is_some(),
        "a's fenced delete deleted nothing"
    );
    lb.resign().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resigning_or_dropping_the_store_hands_over_without_waiting_for_expiry() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let prefix = fresh_prefix();
    let (a, b, c) = (
        store(&endpoints, &prefix).await,
        store(&endpoints, &prefix).await,
        store(&endpoints, &prefix).await,
    );
    let mut raw = raw(&endpoints).await;
    let mut seen = c.observe_leader().await.expect("observing");
    let la = lead(&a, "a").await;
    until_observed(&mut seen, Some("a")).await;
    let for_b = spawn_campaign(&b, "b");
    until_candidates(&mut raw, &prefix, 2).await;

    let resigned = Instant::now();
    la.resign().await;
    let (lb, won_at) = won(for_b).await;
    let takeover = won_at - resigned;
    println!("takeover after resign: {takeover:?}");
    assert!(takeover < lb.ttl(), "no wait for the lease to expire");
    until_observed(&mut seen, Some("b")).await;
    b.set_fence(Some(lb.fence()));
    b.put_record("notes", "b", "{}")
        .await
        .expect("the new leader's fenced write succeeds");

    let for_c = spawn_campaign(&c, "c");
    until_candidates(&mut raw, &prefix, 2).await;
    let lost = lb.lost();
    let dropped = Instant::now();
    drop(b);
    let (lc, won_at) = won(for_c).await;
    let takeover = won_at - dropped;
    println!("takeover after the leader's store was dropped: {takeover:?}");
    assert!(takeover < lc.ttl(), "the dropped store revoked its lease");
    assert!(
        lost.is_cancelled(),
        "the dropped store's leadership is lost"
    );
    until_observed(&mut seen, Some("c")).await;
    drop(lb);

    lc.resign().await;
    until_observed(&mut seen, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_campaign_leaves_no_candidate_behind() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let prefix = fresh_prefix();
    let (a, b) = (
        store(&endpoints, &prefix).await,
        store(&endpoints, &prefix).await,
    );
    let mut raw = raw(&endpoints).await;
    let la = lead(&a, "a").await;
    {
        let campaign = b.campaign(b"b".to_vec(), TTL);
        tokio::select! {
            _ = campaign => panic!("b cannot win while a leads"),
            () = until_candidates(&mut raw, &prefix, 2) => {}
        }
    }
    until_candidates(&mut raw, &prefix, 1).await;
    la.resign().await;
    until_candidates(&mut raw, &prefix, 0).await;
    assert_eq!(b.leader().await.expect("reading the leader"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contention_under_a_valid_fence_is_retried_not_fenced() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let prefix = fresh_prefix();
    let (a, b) = (
        store(&endpoints, &prefix).await,
        store(&endpoints, &prefix).await,
    );
    let la = lead(&a, "a").await;
    // Two writers under one leadership (say, two tasks of the leader).
    a.set_fence(Some(la.fence()));
    b.set_fence(Some(la.fence()));
    let w = workload(owner(1), "contended");
    a.put_workload(&w).await.expect("writing the workload");
    for round in 0..20u8 {
        // One instance, moved to two different nodes at once.
        let x = instance(w.id, NodeId([round; 32]));
        let y = WorkloadInstance {
            node_id: NodeId([round + 100; 32]),
            ..x.clone()
        };
        let (rx, ry) = tokio::join!(a.put_instance(&x), b.put_instance(&y));
        assert!(
            rx.is_ok() && ry.is_ok(),
            "round {round}: both writes succeed: {rx:?} {ry:?}"
        );
    }
    la.resign().await;
    let late = a.put_record("notes", "late", "{}").await;
    assert!(
        matches!(late, Err(StoreError::Fenced { .. })),
        "after resigning the fence is broken: {late:?}"
    );
}
