//! Versioned schema migrations.
//!
//! `MIGRATIONS[n]` brings the schema from version `n` to `n + 1`. Each runs in
//! its own `IMMEDIATE` transaction together with the row recording it in
//! `schema_migrations`, so a crash leaves the database at a whole version, and
//! two processes opening the same file do not both migrate. Append new
//! migrations at the end; never edit one that has shipped.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::{Result, StoreError};

/// The migrations, in order. Version `n` is reached by applying the first `n`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: nodes, workloads, instances. Records are JSON of the domain types;
    // the other columns are copies of the fields we look up or order by.
    "CREATE TABLE nodes (
         id   TEXT PRIMARY KEY NOT NULL,
         data TEXT NOT NULL
     );
     CREATE TABLE workloads (
         id         TEXT PRIMARY KEY NOT NULL,
         owner      TEXT NOT NULL,
         name       TEXT NOT NULL,
         generation INTEGER NOT NULL,
         data       TEXT NOT NULL,
         UNIQUE (owner, name)
     );
     CREATE TABLE instances (
         id          TEXT PRIMARY KEY NOT NULL,
         workload_id TEXT NOT NULL,
         node_id     TEXT NOT NULL,
         data        TEXT NOT NULL
     );
     CREATE INDEX instances_by_workload ON instances (workload_id, id);
     CREATE INDEX instances_by_node ON instances (node_id, id);",
    // 2: generic records (agent policies, revoked token ids, approvals...):
    // JSON text by kind and key. The primary key orders a kind's keys.
    "CREATE TABLE records (
         kind  TEXT NOT NULL,
         key   TEXT NOT NULL,
         value TEXT NOT NULL,
         PRIMARY KEY (kind, key)
     );",
];

/// The newest schema version this binary knows.
pub(crate) fn latest_version() -> i64 {
    // The list is a few entries long: the conversion cannot overflow.
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// The version recorded in `schema_migrations` (0 when none is).
pub(crate) fn current_version(conn: &Connection) -> Result<i64> {
    let version: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |row| {
            row.get(0)
        })
        .optional()?
        .flatten();
    Ok(version.unwrap_or(0))
}

/// Brings the database to [`latest_version`]; refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL
         )",
    )?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read under the write lock: another process may have migrated meanwhile.
        let found = current_version(&tx)?;
        if found > latest_version() {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: latest_version(),
            });
        }
        if found >= version {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at)
             VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            [version],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied state store migration");
    }
    // With nothing left to apply the loop checks nothing: check here too.
    let found = current_version(conn)?;
    if found > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: latest_version(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_applies_each_migration_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, latest_version());
        assert_eq!(current_version(&conn).unwrap(), latest_version());
    }

    #[test]
    fn a_version_1_database_gains_the_records_table_and_keeps_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A database as the first release left it: only migration 1 applied.
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
             INSERT INTO schema_migrations (version, applied_at) VALUES (1, 'then');",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute("INSERT INTO nodes (id, data) VALUES ('n', '{}')", [])
            .unwrap();
        assert!(
            conn.prepare("SELECT * FROM records").is_err(),
            "version 1 has no records table"
        );

        migrate(&mut conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), latest_version());
        assert!(latest_version() >= 2, "the records migration is listed");
        conn.execute(
            "INSERT INTO records (kind, key, value) VALUES ('k', 'a', '1')",
            [],
        )
        .unwrap();
        assert!(
            conn.execute(
                "INSERT INTO records (kind, key, value) VALUES ('k', 'a', '2')",
                [],
            )
            .is_err(),
            "(kind, key) is the primary key"
        );
        let nodes: i64 = conn
            .query_row("SELECT COUNT(*) FROM nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(nodes, 1, "existing rows survive the migration");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 'later')",
            [latest_version() + 1],
        )
        .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, supported }
                if found == latest_version() + 1 && supported == latest_version()),
            "{err:?}"
        );
    }
}
