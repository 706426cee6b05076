//! The contract suite against a real etcd cluster, and etcd-specific
//! behaviour: the change feed resuming after a broken watch and resyncing
//! after a compaction, concurrent read-modify-writes from two stores, batches
//! larger than one transaction, the feed stopping with the store.
//!
//! The cluster is named by `UNIVRS_TEST_ETCD` (comma-separated client URLs;
//! `scripts/test-etcd start` runs a three-member one on loopback). Without it
//! every test prints why it is skipped and returns. Every store gets a fresh
//! random prefix, so runs and tests share the cluster without seeing each
//! other.

mod etcd_common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, CompactionOptions};
use orchestrator_shared_types::{NodeId, WorkloadId};
use state_store_interface::testsuite::{self, instance, node, owner, workload};
use state_store_interface::{EtcdConfig, EtcdStore, StateStore, StoreChange, StoreError};
use tokio::sync::broadcast;

use etcd_common::{endpoints, fresh_prefix, Proxy};

/// How long any awaited condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// Held shared by every test, and alone by the one that compacts the
/// cluster: a compaction would also reach the feeds of stores that other
/// tests are starting at that moment.
static CLUSTER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

async fn store(endpoints: &[String], prefix: &str) -> EtcdStore {
    let store = EtcdStore::connect(endpoints, prefix)
        .await
        .expect("connecting to the test etcd");
    store.initialize().await.expect("initialising the store");
    store
}

/// The next change, failing the test after [`DEADLINE`].
async fn next_change(rx: &mut broadcast::Receiver<StoreChange>) -> StoreChange {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("no change within the deadline")
        .expect("the change feed failed")
}

/// Changes up to and including `last`.
async fn changes_until(
    rx: &mut broadcast::Receiver<StoreChange>,
    last: &StoreChange,
) -> Vec<StoreChange> {
    let mut got = Vec::new();
    while got.last() != Some(last) {
        got.push(next_change(rx).await);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_passes_the_contract() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let _cluster = CLUSTER.read().await;
    testsuite::run_all(|| {
        let endpoints = endpoints.clone();
        async move {
            let store = EtcdStore::connect(&endpoints, &fresh_prefix())
                .await
                .expect("connecting to the test etcd");
            Arc::new(store) as Arc<dyn StateStore>
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_keys_counts_every_key_under_the_prefix_and_no_other() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let _cluster = CLUSTER.read().await;
    let prefix = fresh_prefix();
    let s = store(&endpoints, &prefix).await;
    assert_eq!(s.count_keys().await.unwrap(), 0, "a fresh prefix is empty");
    // A sibling prefix that extends this one's name is not under it.
    let sibling = store(&endpoints, &format!("{prefix}2")).await;
    sibling.put_node(&node(1)).await.unwrap();
    assert_eq!(
        s.count_keys().await.unwrap(),
        0,
        "{prefix}2 is not under {prefix}"
    );
    // Keys this store did not write count too.
    let mut raw = Client::connect(&endpoints, None).await.unwrap();
    raw.put(format!("{prefix}/foreign"), "x", None)
        .await
        .unwrap();
    s.put_record("policy", "a", "{}").await.unwrap();
    assert_eq!(s.count_keys().await.unwrap(), 2);
    assert_eq!(
        s.list_record_kinds().await.unwrap(),
        vec!["policy".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_resumes_after_its_connection_breaks_without_loss_or_repeat() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let _cluster = CLUSTER.read().await;
    let prefix = fresh_prefix();
    let proxy = Proxy::start(&endpoints[0]).await;
    let watched = store(&[proxy.url()], &prefix).await;
    let direct = store(&endpoints, &prefix).await;
    let mut rx = watched.watch();

    let a = node(1);
    direct.put_node(&a).await.unwrap();
    assert_eq!(next_change(&mut rx).await, StoreChange::NodePut(a.id));

    let connections = proxy.forwarded();
    proxy.cut_and_pause();
    // Written while the watched store cannot reach etcd at all.
    let w = workload(owner(1), "while-cut");
    let i = instance(w.id, a.id);
    direct.put_workload(&w).await.unwrap();
    assert!(direct.delete_node(&a.id).await.unwrap());
    direct.put_instance(&i).await.unwrap();
    proxy.resume();

    let sentinel = node(9);
    direct.put_node(&sentinel).await.unwrap();
    let got = changes_until(&mut rx, &StoreChange::NodePut(sentinel.id)).await;
    assert_eq!(
        got,
        vec![
            StoreChange::WorkloadPut(w.id),
            StoreChange::NodeDeleted(a.id),
            StoreChange::InstancePut {
                id: i.id,
                workload_id: w.id
            },
            StoreChange::NodePut(sentinel.id),
        ],
        "the writes made while the watch was broken come once each, in order"
    );
    assert!(
        proxy.forwarded() > connections,
        "the store connected again through the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_resyncs_after_the_revisions_it_missed_are_compacted() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let _alone = CLUSTER.write().await;
    let prefix = fresh_prefix();
    let proxy = Proxy::start(&endpoints[0]).await;
    let watched = store(&[proxy.url()], &prefix).await;
    let direct = store(&endpoints, &prefix).await;
    let mut rx = watched.watch();

    let (a, b) = (node(1), node(2));
    let w = workload(owner(1), "kept");
    let (i1, i2) = (instance(w.id, a.id), instance(w.id, a.id));
    direct.put_node(&a).await.unwrap();
    direct.put_workload(&w).await.unwrap();
    direct
        .put_instances_batch(&[i1.clone(), i2.clone()])
        .await
        .unwrap();
    let last = StoreChange::InstancePut {
        id: i2.id,
        workload_id: w.id,
    };
    assert_eq!(changes_until(&mut rx, &last).await.len(), 4);

    proxy.cut_and_pause();
    assert!(direct.delete_node(&a.id).await.unwrap());
    assert!(direct.delete_instance(&i1.id).await.unwrap());
    direct.put_node(&b).await.unwrap();
    let w2 = workload(owner(1), "new");
    direct.put_workload(&w2).await.unwrap();
    // Compact everything up to now: the watched store's next revision is gone.
    let mut raw = Client::connect(&endpoints, None).await.unwrap();
    let now = raw
        .get("/", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    raw.compact(now, Some(CompactionOptions::new().with_physical()))
        .await
        .unwrap();
    proxy.resume();

    let mut want: Vec<StoreChange> = vec![
        StoreChange::NodeDeleted(a.id),
        StoreChange::InstanceDeleted {
            id: i1.id,
            workload_id: w.id,
        },
        StoreChange::NodePut(b.id),
        // Unchanged since the cut: only a resync reports these.
        StoreChange::WorkloadPut(w.id),
        StoreChange::InstancePut {
            id: i2.id,
            workload_id: w.id,
        },
        StoreChange::WorkloadPut(w2.id),
    ];
    while !want.is_empty() {
        let change = next_change(&mut rx).await;
        let at = want.iter().position(|w| *w == change);
        assert!(
            at.map(|at| want.swap_remove(at)).is_some(),
            "unexpected or repeated change after a compaction: {change:?} (still waiting for {want:?})"
        );
    }
    let sentinel = node(9);
    direct.put_node(&sentinel).await.unwrap();
    assert_eq!(
        next_change(&mut rx).await,
        StoreChange::NodePut(sentinel.id),
        "after the resync the feed follows the watch again, with nothing extra"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_renames_to_one_name_from_two_stores_let_exactly_one_win() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let _cluster = CLUSTER.read().await;
    let prefix = fresh_prefix();
    let (one, two) = (
        store(&endpoints, &prefix).await,
        store(&endpoints, &prefix).await,
    );
    let o = owner(1);
    for round in 0..10 {
        let (w1, w2) = (
            workload(o, &format!("one-{round}")),
            workload(o, &format!("two-{round}")),
        );
        one.put_workload(&w1).await.unwrap();
        one.put_workload(&w2).await.unwrap();
        let same = format!("same-{round}");
        let (mut r1, mut r2) = (w1.clone(), w2.clone());
        r1.spec.name = same.clone();
        r2.spec.name = same.clone();
        let (x, y) = tokio::join!(one.put_workload(&r1), two.put_workload(&r2));
        let (winner, loser, lost) = match (x, y) {
            (Ok(()), Err(e)) => (&r1, &w2, e),
            (Err(e), Ok(())) => (&r2, &w1, e),
            other => panic!("round {round}: exactly one rename must win, got {other:?}"),
        };
        match lost {
            StoreError::NameTaken { name, existing } => {
                assert_eq!((name.as_str(), existing), (same.as_str(), winner.id));
            }
            other => panic!("round {round}: the loser must get NameTaken, got {other:?}"),
        }
        assert_eq!(
            two.get_workload_by_name(&o, &same).await.unwrap().as_ref(),
            Some(winner),
            "round {round}: the name is the winner's"
        );
        assert_eq!(
            one.get_workload(&loser.id).await.unwrap().as_ref(),
            Some(loser),
            "round {round}: the loser is unchanged"
        );
        let freed = if winner.id == w1.id { &w1 } else { &w2 };
        assert_eq!(
            one.get_workload_by_name(&o, &freed.spec.name)
                .await
                .unwrap(),
            None,
            "round {round}: the winner's old name is free"
        );
    }
}

/// The mod revision of each key, read directly.
async fn revisions(raw: &mut Client, keys: &[String]) -> Vec<i64> {
    let mut out = Vec::new();
    for key in keys {
        let resp = raw
            .get(key.as_str(), None)
            .await
            .expect("reading a key directly");
        out.push(resp.kvs().first().expect("the key exists").mod_revision());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_beyond_the_op_limit_are_split_into_whole_items_and_clashes_still_write_nothing() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let _cluster = CLUSTER.read().await;
    let prefix = fresh_prefix();
    let too_small = EtcdStore::connect_with(EtcdConfig {
        max_txn_ops: 4,
        ..EtcdConfig::new(&endpoints, &prefix)
    })
    .await;
    assert!(
        matches!(too_small, Err(StoreError::InvalidConfig(_))),
        "a limit below one instance's operations is refused: {too_small:?}"
    );

    // 10 operations: two instances (five each) or three workloads per transaction.
    let store = EtcdStore::connect_with(EtcdConfig {
        max_txn_ops: 10,
        ..EtcdConfig::new(&endpoints, &prefix)
    })
    .await
    .unwrap();
    store.initialize().await.unwrap();
    let mut rx = store.watch();
    let mut raw = Client::connect(&endpoints, None).await.unwrap();
    let key =
        |i: &orchestrator_shared_types::WorkloadInstance| format!("{prefix}/instances/{}", i.id);

    let w = WorkloadId::new();
    let small: Vec<_> = (0..2).map(|_| instance(w, NodeId([1; 32]))).collect();
    store.put_instances_batch(&small).await.unwrap();
    let revs = revisions(&mut raw, &small.iter().map(key).collect::<Vec<_>>()).await;
    assert_eq!(
        revs[0], revs[1],
        "a batch within the limit is one transaction"
    );

    let big: Vec<_> = (0..7).map(|_| instance(w, NodeId([2; 32]))).collect();
    store.put_instances_batch(&big).await.unwrap();
    let revs = revisions(&mut raw, &big.iter().map(key).collect::<Vec<_>>()).await;
    let distinct: HashSet<i64> = revs.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        4,
        "seven instances, two per transaction: {revs:?}"
    );
    assert!(
        revs.chunks(2).all(|c| c.iter().all(|r| *r == c[0])),
        "each transaction holds whole consecutive items: {revs:?}"
    );
    assert_eq!(
        store
            .list_instances_by_node(&NodeId([2; 32]))
            .await
            .unwrap()
            .len(),
        7,
        "every instance of the split batch is written and indexed"
    );
    for i in small.iter().chain(&big) {
        let want = StoreChange::InstancePut {
            id: i.id,
            workload_id: w,
        };
        assert_eq!(next_change(&mut rx).await, want, "reported in batch order");
    }

    let o = owner(1);
    let stored = workload(o, "taken");
    store.put_workload(&stored).await.unwrap();
    let mut batch: Vec<_> = (0..7).map(|n| workload(o, &format!("w-{n}"))).collect();
    batch.push(workload(o, "taken"));
    assert!(
        matches!(
            store.put_workloads_batch(&batch).await,
            Err(StoreError::NameTaken { ref name, existing }) if name == "taken" && existing == stored.id
        ),
        "a clash in the last transaction of a split batch is NameTaken"
    );
    assert_eq!(
        store.list_workloads().await.unwrap(),
        vec![stored.clone()],
        "and nothing of the batch was written"
    );
    batch.pop();
    store.put_workloads_batch(&batch).await.unwrap();
    assert_eq!(store.list_workloads().await.unwrap().len(), 8);
    for n in 0..7 {
        assert!(
            store
                .get_workload_by_name(&o, &format!("w-{n}"))
                .await
                .unwrap()
                .is_some(),
            "w-{n} is found by name"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_stops_its_feed() {
    let Some(endpoints) = endpoints() else {
        return;
    };
    let _cluster = CLUSTER.read().await;
    let store = store(&endpoints, &fresh_prefix()).await;
    let mut rx = store.watch();
    drop(store);
    let ended = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("the feed did not stop within the deadline");
    assert!(
        matches!(ended, Err(broadcast::error::RecvError::Closed)),
        "the feed task ended and dropped its sender: {ended:?}"
    );
}
