//! The store backend against `InMemoryStore` and `SqliteStore`: the chain
//! across reopening, every way of tampering with the records, and failing or
//! abandoned writes.

use std::sync::Arc;
use std::time::Duration;

use state_store_interface::{InMemoryStore, SqliteStore, StateStore};
use tempfile::TempDir;

use super::flaky::{Flaky, Puts};
use super::RECORD_KIND;
use crate::chain::{entry_hash, record_key};
use crate::{AuditEntry, AuditError, AuditLog, Call, Decision, Result};

/// A store to test against; the SQLite file lives as long as `_dir`.
struct Backend {
    name: &'static str,
    store: Arc<dyn StateStore>,
    _dir: Option<TempDir>,
}

/// A fresh store of each kind, initialised.
async fn backends() -> Vec<Backend> {
    let memory = InMemoryStore::new();
    memory.initialize().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("store.db")).unwrap();
    sqlite.initialize().await.unwrap();
    vec![
        Backend {
            name: "memory",
            store: Arc::new(memory),
            _dir: None,
        },
        Backend {
            name: "sqlite",
            store: Arc::new(sqlite),
            _dir: Some(dir),
        },
    ]
}

async fn append(log: &AuditLog, i: u64) -> Result<AuditEntry> {
    let path = format!("/api/v1/workloads/w{i}/scale");
    let body = format!("{{\"replicas\":{i}}}");
    log.append(Call {
        key: Some("ab".into()),
        agent: None,
        method: "POST",
        path: &path,
        body: body.as_bytes(),
        status: 200,
        decision: Decision::Allowed,
    })
    .await
}

/// A log in `store` with entries 1 to `n`.
async fn log_of(store: &Arc<dyn StateStore>, n: u64) -> AuditLog {
    let log = AuditLog::in_store(Arc::clone(store)).await.unwrap();
    for i in 1..=n {
        assert_eq!(append(&log, i).await.unwrap().seq, i);
    }
    log
}

async fn stored(store: &Arc<dyn StateStore>, seq: u64) -> AuditEntry {
    let value = store
        .get_record(RECORD_KIND, &record_key(seq))
        .await
        .unwrap();
    serde_json::from_str(&value.unwrap()).unwrap()
}

async fn put(store: &Arc<dyn StateStore>, key: &str, e: &AuditEntry) {
    let value = serde_json::to_string(e).unwrap();
    store.put_record(RECORD_KIND, key, &value).await.unwrap();
}

fn assert_broken_at<T: std::fmt::Debug>(r: Result<T>, seq: u64, what: &str) {
    match r {
        Err(AuditError::Broken {
            seq: at,
            ref reason,
        }) => {
            assert_eq!(at, seq, "{what}: broken at {at} ({reason}), {seq} expected");
        }
        other => panic!("{what}: {other:?}, broken at {seq} expected"),
    }
}

#[tokio::test]
async fn entries_come_back_in_order_and_a_reopened_log_continues_the_chain() {
    for b in backends().await {
        let log = log_of(&b.store, 3).await;
        let entries = log.entries().await.unwrap();
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3], "{}", b.name);
        assert_eq!(entries[1].action, "POST /api/v1/workloads/w2/scale");
        assert_eq!(entries[2].args, "{\"replicas\":3}");
        assert_eq!(log.verify().await.unwrap(), 3, "{}", b.name);
        let keys: Vec<String> = b
            .store
            .list_records(RECORD_KIND)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "00000000000000000001",
                "00000000000000000002",
                "00000000000000000003"
            ]
        );
        drop(log);

        // Another leader opens it and goes on from the last entry.
        let log = AuditLog::in_store(Arc::clone(&b.store)).await.unwrap();
        let e = append(&log, 4).await.unwrap();
        assert_eq!(e.seq, 4, "{}", b.name);
        assert_eq!(e.prev, entries[2].hash, "{}", b.name);
        assert_eq!(log.verify().await.unwrap(), 4, "{}", b.name);
        assert_eq!(log.entries().await.unwrap().len(), 4);
    }
}

/// Ways of tampering with a log of four entries.
#[derive(Clone, Copy, Debug)]
enum Attack {
    /// Entry 2's arguments changed, its hash left.
    EditArgs,
    /// Entry 2's status changed and its hash recomputed.
    EditStatusAndRehash,
    /// Entry 2 deleted.
    Delete,
    /// Entries 2 and 3 swapped (each under the other's key).
    Swap,
    /// Record 3 replaced by something that is not an entry.
    Garbage,
    /// A copy of entry 2 slipped in under a key between 2 and 3.
    Insert,
}

impl Attack {
    const ALL: [(Attack, u64); 6] = [
        (Attack::EditArgs, 2),
        (Attack::EditStatusAndRehash, 3),
        (Attack::Delete, 2),
        (Attack::Swap, 2),
        (Attack::Garbage, 3),
        (Attack::Insert, 3),
    ];

    async fn apply(self, store: &Arc<dyn StateStore>) {
        let two = stored(store, 2).await;
        match self {
            Attack::EditArgs => {
                let mut e = two;
                e.args = "{\"replicas\":99}".into();
                put(store, &record_key(2), &e).await;
            }
            Attack::EditStatusAndRehash => {
                // (A struct update: the ontology test reads `x.status = ` as
                // an instance's status set around its state machine.)
                let mut e = AuditEntry { status: 403, ..two };
                e.hash = entry_hash(&e);
                put(store, &record_key(2), &e).await;
            }
            Attack::Delete => {
                assert!(store
                    .delete_record(RECORD_KIND, &record_key(2))
                    .await
                    .unwrap());
            }
            Attack::Swap => {
                let three = stored(store, 3).await;
                put(store, &record_key(2), &three).await;
                put(store, &record_key(3), &two).await;
            }
            Attack::Garbage => {
                store
                    .put_record(RECORD_KIND, &record_key(3), "{\"seq\":3}")
                    .await
                    .unwrap();
            }
            Attack::Insert => put(store, &format!("{}a", record_key(2)), &two).await,
        }
    }
}

#[tokio::test]
async fn every_attack_is_found_at_the_first_broken_entry_and_the_log_is_not_reopened() {
    for (attack, at) in Attack::ALL {
        for b in backends().await {
            let what = format!("{attack:?} on {}", b.name);
            let log = log_of(&b.store, 4).await;
            attack.apply(&b.store).await;
            assert_broken_at(log.verify().await, at, &what);
            assert_broken_at(AuditLog::in_store(Arc::clone(&b.store)).await, at, &what);
        }
    }
}

#[tokio::test]
async fn the_running_log_finds_its_end_removed_or_rewritten() {
    for b in backends().await {
        let log = log_of(&b.store, 4).await;
        let four = stored(&b.store, 4).await;
        assert!(b
            .store
            .delete_record(RECORD_KIND, &record_key(4))
            .await
            .unwrap());
        // The chain 1..3 alone verifies; the log knows it wrote entry 4.
        assert_broken_at(log.verify().await, 4, b.name);

        let mut forged = four;
        forged.args = "{\"replicas\":0}".into();
        forged.hash = entry_hash(&forged);
        put(&b.store, &record_key(4), &forged).await;
        assert_broken_at(log.verify().await, 4, b.name);
    }
}

#[tokio::test]
async fn a_failed_write_leaves_the_tail_and_the_next_append_takes_its_place() {
    let flaky = Flaky::new().await;
    let store: Arc<dyn StateStore> = flaky.clone();
    let log = log_of(&store, 2).await;
    flaky.set(Puts::Fail);
    for _ in 0..2 {
        let err = append(&log, 3).await.unwrap_err();
        assert!(matches!(err, AuditError::Store { .. }), "{err}");
    }
    assert_eq!(log.entries().await.unwrap().len(), 2);
    assert_eq!(log.verify().await.unwrap(), 2);

    flaky.set(Puts::Work);
    let e = append(&log, 3).await.unwrap();
    assert_eq!(e.seq, 3, "the failed entries took no place");
    assert_eq!(e.prev, stored(&store, 2).await.hash);
    assert_eq!(log.verify().await.unwrap(), 3);
    let reopened = AuditLog::in_store(store).await.unwrap();
    assert_eq!(reopened.verify().await.unwrap(), 3);
}

#[tokio::test]
async fn a_write_that_landed_despite_its_error_is_kept() {
    let flaky = Flaky::new().await;
    let store: Arc<dyn StateStore> = flaky.clone();
    let log = log_of(&store, 1).await;
    flaky.set(Puts::LandThenFail);
    let lost = append(&log, 2).await.unwrap_err();
    assert!(matches!(lost, AuditError::Store { .. }), "{lost}");
    let landed = stored(&store, 2).await;

    flaky.set(Puts::Work);
    let e = append(&log, 3).await.unwrap();
    assert_eq!(e.seq, 3, "entry 2 landed: it is not overwritten");
    assert_eq!(e.prev, landed.hash);
    assert_eq!(stored(&store, 2).await, landed);
    assert_eq!(log.verify().await.unwrap(), 3);
}

#[tokio::test]
async fn another_writer_in_the_place_of_a_failed_write_stops_the_log() {
    let flaky = Flaky::new().await;
    let store: Arc<dyn StateStore> = flaky.clone();
    let log = log_of(&store, 1).await;
    flaky.set(Puts::Fail);
    append(&log, 2).await.unwrap_err();
    flaky.set(Puts::Work);
    // An unfenced second writer takes entry 2.
    let other = AuditLog::in_store(Arc::clone(&store)).await.unwrap();
    let theirs = append(&other, 2).await.unwrap();
    assert_eq!(theirs.seq, 2);

    for _ in 0..2 {
        let err = append(&log, 3).await.unwrap_err();
        assert!(matches!(err, AuditError::Overtaken { seq: 2 }), "{err}");
    }
    assert_eq!(stored(&store, 2).await, theirs, "nothing was overwritten");
    assert_eq!(other.verify().await.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn callers_that_go_away_mid_write_neither_lose_nor_repeat_their_entries() {
    let flaky = Flaky::new().await;
    let store: Arc<dyn StateStore> = flaky.clone();
    let log = log_of(&store, 1).await;
    flaky.set(Puts::Wait);
    let wait = Duration::from_secs(1);
    // Entry 2's caller gives up while its write waits at the gate, entry 3's
    // while it waits for the tail.
    assert!(tokio::time::timeout(wait, append(&log, 2)).await.is_err());
    assert!(tokio::time::timeout(wait, append(&log, 3)).await.is_err());
    flaky.set(Puts::Work);
    flaky.gate.add_permits(1);

    let e = append(&log, 4).await.unwrap();
    assert_eq!(
        e.seq, 4,
        "the abandoned entries were written and the tail advanced"
    );
    let actions: Vec<String> = log
        .entries()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        (1..=4)
            .map(|i| format!("POST /api/v1/workloads/w{i}/scale"))
            .collect::<Vec<_>>()
    );
    assert_eq!(log.verify().await.unwrap(), 4);
}
