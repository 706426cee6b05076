//! Cases: generic records by kind and key.

use tokio::sync::broadcast::error::TryRecvError;

use super::{init, node};
use crate::{StateStore, StoreChange, StoreError, MAX_RECORD_KEY_BYTES};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Records: absent, put then get, replace.
pub async fn case_records_round_trip(store: &dyn StateStore) {
    init(store).await;
    assert_eq!(
        store.get_record("policy", "alice").await.unwrap(),
        None,
        "absent record"
    );
    let first = r#"{"allow":["deploy"],"note":"é ✓"}"#;
    store.put_record("policy", "alice", first).await.unwrap();
    assert_eq!(
        store
            .get_record("policy", "alice")
            .await
            .unwrap()
            .as_deref(),
        Some(first),
        "record read back as written"
    );

    let second = r#"{"allow":[]}"#;
    store.put_record("policy", "alice", second).await.unwrap();
    assert_eq!(
        store
            .get_record("policy", "alice")
            .await
            .unwrap()
            .as_deref(),
        Some(second),
        "put must replace a record"
    );
    assert_eq!(
        store.list_records("policy").await.unwrap(),
        pairs(&[("alice", second)]),
        "a replace adds no record"
    );
}

/// Records are listed by key (byte order), and each kind sees only its own.
pub async fn case_records_are_listed_by_key_within_their_kind(store: &dyn StateStore) {
    init(store).await;
    assert!(
        store.list_records("approval").await.unwrap().is_empty(),
        "a fresh store has no records"
    );
    for key in ["b", "aa", "B", "a"] {
        store
            .put_record("approval", key, &format!("\"approval {key}\""))
            .await
            .unwrap();
        store
            .put_record("revoked", key, &format!("\"revoked {key}\""))
            .await
            .unwrap();
    }
    // Kinds that share a prefix with another are still apart.
    store
        .put_record("approvals", "a", "\"other\"")
        .await
        .unwrap();
    store.put_record("approva", "z", "\"other\"").await.unwrap();

    assert_eq!(
        store.list_records("approval").await.unwrap(),
        pairs(&[
            ("B", "\"approval B\""),
            ("a", "\"approval a\""),
            ("aa", "\"approval aa\""),
            ("b", "\"approval b\""),
        ]),
        "records of a kind are listed by key, byte order, and no other kind's"
    );
    assert_eq!(
        store.list_records("revoked").await.unwrap(),
        pairs(&[
            ("B", "\"revoked B\""),
            ("a", "\"revoked a\""),
            ("aa", "\"revoked aa\""),
            ("b", "\"revoked b\""),
        ]),
        "the same keys in another kind are other records"
    );
    assert_eq!(
        store.get_record("approvals", "a").await.unwrap().as_deref(),
        Some("\"other\""),
        "get is scoped by kind"
    );
    assert!(
        store.list_records("unknown").await.unwrap().is_empty(),
        "a kind never written lists nothing"
    );
}

/// Deleting a record returns true, then false; other kinds keep theirs.
pub async fn case_records_delete(store: &dyn StateStore) {
    init(store).await;
    assert!(
        !store.delete_record("revoked", "t1").await.unwrap(),
        "deleting an absent record returns false"
    );
    store.put_record("revoked", "t1", "{}").await.unwrap();
    store.put_record("revoked", "t2", "{}").await.unwrap();
    store.put_record("approval", "t1", "{}").await.unwrap();

    assert!(
        store.delete_record("revoked", "t1").await.unwrap(),
        "deleting a present record returns true"
    );
    assert!(
        !store.delete_record("revoked", "t1").await.unwrap(),
        "deleting it again returns false"
    );
    assert_eq!(
        store.get_record("revoked", "t1").await.unwrap(),
        None,
        "a deleted record is gone"
    );
    assert_eq!(
        store.list_records("revoked").await.unwrap(),
        pairs(&[("t2", "{}")]),
        "the other records of the kind remain"
    );
    assert_eq!(
        store.get_record("approval", "t1").await.unwrap().as_deref(),
        Some("{}"),
        "the same key in another kind is not deleted"
    );
    store
        .put_record("revoked", "t1", "\"again\"")
        .await
        .unwrap();
    assert_eq!(
        store.get_record("revoked", "t1").await.unwrap().as_deref(),
        Some("\"again\""),
        "a deleted record can be written again"
    );
}

/// Empty and over-long kinds and keys are refused by every operation, and a
/// refused put stores nothing; the longest allowed ones work.
pub async fn case_records_refuse_invalid_kinds_and_keys(store: &dyn StateStore) {
    init(store).await;
    let too_long = "k".repeat(MAX_RECORD_KEY_BYTES + 1);
    // Fewer characters than the limit, more bytes: the limit is in bytes.
    let too_many_bytes = "é".repeat(MAX_RECORD_KEY_BYTES / 2 + 1);
    let longest = "é".repeat(MAX_RECORD_KEY_BYTES / 2);
    assert_eq!(longest.len(), MAX_RECORD_KEY_BYTES);

    let invalid = [
        ("", "key", "kind"),
        (too_long.as_str(), "key", "kind"),
        (too_many_bytes.as_str(), "key", "kind"),
        ("kind", "", "key"),
        ("kind", too_long.as_str(), "key"),
        ("kind", too_many_bytes.as_str(), "key"),
    ];
    for (kind, key, bad) in invalid {
        let refused = |what: &str, r: Result<(), StoreError>| {
            match r {
            Err(StoreError::InvalidKey { field, len }) => {
                assert_eq!(field, bad, "{what}: the error names the bad field");
                let want = if bad == "kind" { kind.len() } else { key.len() };
                assert_eq!(len, want, "{what}: the error gives its length");
            }
            other => panic!(
                "{what} with a {} byte kind and a {} byte key must fail with InvalidKey, got {other:?}",
                kind.len(),
                key.len()
            ),
        }
        };
        refused("put_record", store.put_record(kind, key, "{}").await);
        refused("get_record", store.get_record(kind, key).await.map(drop));
        refused(
            "delete_record",
            store.delete_record(kind, key).await.map(drop),
        );
        if bad == "kind" {
            refused("list_records", store.list_records(kind).await.map(drop));
        }
    }
    assert!(
        store.list_records("kind").await.unwrap().is_empty(),
        "a refused put stores nothing"
    );

    store.put_record(&longest, &longest, "{}").await.unwrap();
    assert_eq!(
        store.list_records(&longest).await.unwrap(),
        vec![(longest.clone(), "{}".to_owned())],
        "a kind and key of exactly {MAX_RECORD_KEY_BYTES} bytes are accepted"
    );
    assert!(store.delete_record(&longest, &longest).await.unwrap());
}

/// Every kind with a record is listed once, sorted by bytes (kinds that
/// share a prefix, contain `/` or are not ASCII included); a kind whose
/// last record is deleted is no longer listed; nodes are no kind.
pub async fn case_record_kinds_are_listed(store: &dyn StateStore) {
    init(store).await;
    assert!(
        store.list_record_kinds().await.unwrap().is_empty(),
        "a fresh store has no record kind"
    );
    store.put_node(&node(1)).await.unwrap();
    let kinds = [
        "revoked",
        "approvals",
        "a/b",
        "approval",
        "é",
        "a",
        "approva",
        "B",
    ];
    for kind in kinds {
        store.put_record(kind, "k/1", "{}").await.unwrap();
        store.put_record(kind, "k2", "[]").await.unwrap();
    }
    let mut want: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    want.sort();
    assert_eq!(
        store.list_record_kinds().await.unwrap(),
        want,
        "each kind once, in byte order"
    );
    for key in ["k/1", "k2"] {
        assert!(store.delete_record("approva", key).await.unwrap());
    }
    assert!(store.delete_record("revoked", "k2").await.unwrap());
    want.retain(|k| k != "approva");
    assert_eq!(
        store.list_record_kinds().await.unwrap(),
        want,
        "a kind without records is gone; one with a record left stays"
    );
}

/// Record writes are not published on `watch`.
pub async fn case_records_are_not_watched(store: &dyn StateStore) {
    init(store).await;
    let mut rx = store.watch();
    store.put_record("policy", "a", "{}").await.unwrap();
    store.put_record("policy", "a", "[]").await.unwrap();
    assert!(store.delete_record("policy", "a").await.unwrap());
    let n = node(1);
    store.put_node(&n).await.unwrap();
    assert_eq!(
        rx.recv().await.unwrap(),
        StoreChange::NodePut(n.id),
        "the first change published is the node's: records publish nothing"
    );
    assert!(
        matches!(rx.try_recv(), Err(TryRecvError::Empty)),
        "nothing after the node"
    );
}

/// Before `initialize`, record reads and writes fail with `NotInitialized`.
/// Needs a store on which `initialize` was never called.
pub async fn case_records_refused_before_initialize(store: &dyn StateStore) {
    assert!(
        matches!(
            store.put_record("policy", "a", "{}").await,
            Err(StoreError::NotInitialized)
        ),
        "a record write before initialize must fail with NotInitialized"
    );
    assert!(
        matches!(
            store.list_records("policy").await,
            Err(StoreError::NotInitialized)
        ),
        "a record read before initialize must fail with NotInitialized"
    );
    assert!(
        matches!(
            store.list_record_kinds().await,
            Err(StoreError::NotInitialized)
        ),
        "listing the kinds before initialize must fail with NotInitialized"
    );
    init(store).await;
    assert!(
        store.list_records("policy").await.unwrap().is_empty(),
        "the refused write stored nothing"
    );
}
