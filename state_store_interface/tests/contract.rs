//! The contract suite against every store, and SQLite-specific behaviour:
//! persistence across reopen, migrations, refusal of a newer schema and of a
//! file that is not a database.

use std::path::Path;
use std::sync::{Arc, Mutex};

use orchestrator_shared_types::{NodeId, WorkloadId};
use state_store_interface::testsuite::{self, instance, node, owner, workload};
use state_store_interface::{InMemoryStore, SqliteStore, StateStore, StoreError};
use tempfile::TempDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store_passes_the_contract() {
    testsuite::run_all(|| async { Arc::new(InMemoryStore::new()) as Arc<dyn StateStore> }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_contract() {
    // Keep every store's directory until the end of the test.
    let dirs = Mutex::new(Vec::new());
    testsuite::run_all(|| {
        let dir = TempDir::new().expect("creating a temp dir");
        let store = SqliteStore::open(dir.path().join("state").join("store.db"))
            .expect("preparing a store in a temp dir");
        dirs.lock().expect("temp dir list").push(dir);
        async move { Arc::new(store) as Arc<dyn StateStore> }
    })
    .await;
}

async fn opened(path: &Path) -> SqliteStore {
    let store = SqliteStore::open(path).expect("preparing the store");
    store.initialize().await.expect("initialising the store");
    store
}

fn schema_versions(path: &Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(path).expect("opening the database directly");
    let mut stmt = conn
        .prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version")
        .expect("preparing the migrations query");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("querying migrations");
    rows.collect::<Result<_, _>>().expect("reading migrations")
}

#[tokio::test]
async fn sqlite_data_survives_close_and_reopen() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let n = node(4);
    let w = workload(owner(1), "kept");
    let i = instance(w.id, n.id);
    {
        let store = opened(&path).await;
        store.put_node(&n).await.unwrap();
        store.put_workload(&w).await.unwrap();
        store.put_instance(&i).await.unwrap();
    }
    let store = opened(&path).await;
    assert_eq!(store.get_node(&n.id).await.unwrap(), Some(n));
    assert_eq!(
        store.get_workload_by_name(&owner(1), "kept").await.unwrap(),
        Some(w.clone())
    );
    assert_eq!(
        store.list_instances_by_workload(&w.id).await.unwrap(),
        vec![i]
    );
    let clash = store.put_workload(&workload(owner(1), "kept")).await;
    assert!(
        matches!(clash, Err(StoreError::NameTaken { .. })),
        "uniqueness persists: {clash:?}"
    );
}

#[tokio::test]
async fn sqlite_records_survive_close_and_reopen() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = opened(&path).await;
        store
            .put_record("policy", "bob", "{\"v\":1}")
            .await
            .unwrap();
        store
            .put_record("policy", "alice", "{\"v\":1}")
            .await
            .unwrap();
        store
            .put_record("policy", "alice", "{\"v\":2}")
            .await
            .unwrap();
        store.put_record("revoked", "t1", "true").await.unwrap();
        store.put_record("revoked", "t2", "true").await.unwrap();
        assert!(store.delete_record("revoked", "t1").await.unwrap());
    }
    let store = opened(&path).await;
    assert_eq!(
        store.list_records("policy").await.unwrap(),
        vec![
            ("alice".to_owned(), "{\"v\":2}".to_owned()),
            ("bob".to_owned(), "{\"v\":1}".to_owned()),
        ],
        "records and their last values persist"
    );
    assert_eq!(
        store.list_records("revoked").await.unwrap(),
        vec![("t2".to_owned(), "true".to_owned())],
        "a delete persists"
    );
    assert!(
        !store.delete_record("revoked", "t1").await.unwrap(),
        "the deleted record stays deleted"
    );
}

#[tokio::test]
async fn sqlite_a_database_from_before_records_gains_them_on_open() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    let n = node(4);
    {
        let store = opened(&path).await;
        store.put_node(&n).await.unwrap();
    }
    // Take the file back to schema version 1, before the records table.
    let versions = schema_versions(&path);
    assert!(versions.len() >= 2, "records come with migration 2");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE records; DELETE FROM schema_migrations WHERE version >= 2;")
            .unwrap();
    }
    assert_eq!(schema_versions(&path).len(), 1, "the file is at version 1");

    let store = opened(&path).await;
    assert_eq!(
        schema_versions(&path).len(),
        versions.len(),
        "opening migrates the file to the latest version"
    );
    assert_eq!(
        store.get_node(&n.id).await.unwrap(),
        Some(n),
        "the old data is kept"
    );
    store.put_record("approval", "a1", "{}").await.unwrap();
    assert_eq!(
        store.get_record("approval", "a1").await.unwrap().as_deref(),
        Some("{}"),
        "records work on the migrated file"
    );
}

#[tokio::test]
async fn sqlite_migrations_are_recorded_once() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    drop(opened(&path).await);
    let first = schema_versions(&path);
    assert!(!first.is_empty(), "migrations are recorded");
    assert!(
        first
            .iter()
            .enumerate()
            .all(|(n, (v, _))| *v == n as i64 + 1),
        "versions 1..=n"
    );
    assert!(
        first.iter().all(|(_, at)| at.ends_with('Z')),
        "applied_at is a UTC time: {first:?}"
    );
    drop(opened(&path).await);
    assert_eq!(
        schema_versions(&path),
        first,
        "reopening applies nothing again"
    );

    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "the database is in WAL mode");
}

#[tokio::test]
async fn sqlite_refuses_a_newer_schema() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    drop(opened(&path).await);
    let newest = schema_versions(&path).len() as i64;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 'the future')",
            [newest + 1],
        )
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    match store.initialize().await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newest + 1, newest));
        }
        other => panic!("a newer schema must be refused with SchemaTooNew, got {other:?}"),
    }
    assert!(
        matches!(store.list_nodes().await, Err(StoreError::NotInitialized)),
        "a store that failed to initialise stays unusable"
    );
}

#[tokio::test]
async fn sqlite_refuses_a_file_that_is_not_a_database() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.db");
    std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    match store.initialize().await {
        Err(e @ StoreError::Open { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("store.db"),
                "the error names the file: {text}"
            );
            assert!(
                text.contains("not a database"),
                "the error says why: {text}"
            );
        }
        other => panic!("a non-database file must fail with Open, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_open_creates_parent_directories_and_initialize_the_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("a").join("b").join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    assert!(
        path.parent().unwrap().is_dir(),
        "open creates the parent directories"
    );
    assert_eq!(store.path(), path);
    store.initialize().await.unwrap();
    assert!(path.is_file(), "initialize creates the database");
    store
        .put_instance(&instance(WorkloadId::new(), NodeId([1; 32])))
        .await
        .unwrap();
}

/// Data at rest: the database and SQLite's files beside it are the daemon's
/// user's alone (0600), including one an older version left readable by all.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("state").join("store.db");
    let store = opened(&path).await;
    store.put_node(&node(1)).await.unwrap();
    assert_eq!(mode(path.parent().unwrap()), 0o700, "the directory made");
    let files = ["store.db", "store.db-wal", "store.db-shm"];
    for f in files {
        let p = dir.path().join("state").join(f);
        assert!(p.exists(), "{f} exists while the store is open");
        assert_eq!(mode(&p), 0o600, "{f}");
    }
    drop(store);

    // An older database, with its files readable by all (empty ones are an
    // empty database and an empty log to SQLite).
    let older = dir.path().join("older.db");
    for f in ["older.db", "older.db-wal"] {
        let p = dir.path().join(f);
        std::fs::write(&p, b"").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let store = opened(&older).await;
    store.put_node(&node(2)).await.unwrap();
    for f in ["older.db", "older.db-wal", "older.db-shm"] {
        assert_eq!(mode(&dir.path().join(f)), 0o600, "{f}, reopened");
    }
    assert_eq!(store.list_nodes().await.unwrap().len(), 1);
}
