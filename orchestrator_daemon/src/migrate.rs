//! `orchestrator_daemon migrate --from sqlite:PATH --to etcd:URL[,URL...]
//! [--etcd-prefix P]`: copies a stopped SQLite control plane's state into
//! etcd, for a cluster moving to several control planes (`ha`), and checks
//! the copy (feature `etcd`).
//!
//! - **Source** (`source`): the data directory (or its `state.db`), read
//!   whole first: nodes, workloads, instances, every record of every kind,
//!   the audit log file (its chain checked), and the identity of the credit
//!   ledger — its id (the cluster id of `cluster.json` or `--cluster-id`,
//!   else the standalone node's `standalone-{node key}`) and its authority
//!   (the node key). Nothing is created: a missing source is refused.
//! - **Destination**: the prefix must hold nothing at all, else nothing is
//!   written. The store is opened as a control plane opens it, so the
//!   prefix means the same to both.
//! - **Copy**: nodes, workloads and instances (batches), records kind by
//!   kind, the audit log entry by entry as records of kind `audit` (the
//!   line as it is in the file, keyed by its sequence number), which must
//!   then open as the log (`AuditLog::in_store`), and last the cluster's
//!   identity (`cluster`/`id` = the ledger id, `cluster`/`ledger-key` = the
//!   node key), written only if absent: the control planes then keep the
//!   audience, the ledger's id and its authority, so the ledger replays.
//! - **Check** (`check`, `digest`): for nodes, workloads, instances and
//!   each record kind, the count and a SHA-256 over the (key, canonical
//!   JSON) pairs read back from etcd must equal the source's ([`Report`]).
//! - **Errors** (`error`, [`MigrateError`]): each says whether anything was
//!   written.
//!
//! A copy that fails part way leaves the prefix partly written; the error
//! says so and how to delete it before retrying.

use std::path::PathBuf;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use orchestrator_audit::{AuditLog, RECORD_KIND};
use state_store_interface::{EtcdConfig, EtcdStore, StateStore, StoreError};

use crate::error::{Error, Result};
use crate::ha::IDENTITY;
use crate::run::DATABASE_FILE;

mod check;
mod digest;
mod error;
mod source;

pub use check::{Report, Row};
pub use digest::Digest;
pub use error::MigrateError;
use source::Source;

/// Record writes in flight at once while copying.
const PARALLEL_PUTS: usize = 16;

/// What `migrate` copies, from where to where.
#[derive(Clone, Debug)]
pub struct MigrateConfig {
    /// The stopped daemon's data directory.
    pub data_dir: PathBuf,
    /// Its SQLite database (`state.db` in the data directory).
    pub database: PathBuf,
    /// Client URLs of the etcd cluster.
    pub endpoints: Vec<String>,
    /// The key prefix in etcd, as the control planes' `--etcd-prefix`.
    pub prefix: String,
    /// The cluster id the source ran with, when its data directory does not
    /// keep it (`--cluster-id` without `cluster.json`).
    pub cluster_id: Option<String>,
}

impl MigrateConfig {
    /// From the command line: `from` is `sqlite:PATH` (the data directory,
    /// or the `state.db` in it), `to` is `etcd:URL[,URL...]`, `prefix`
    /// defaults as the control planes' does.
    pub fn parse(
        from: &str,
        to: &str,
        prefix: Option<&str>,
        cluster_id: Option<String>,
    ) -> Result<Self> {
        let path = from
            .strip_prefix("sqlite:")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "--from {from:?}: give the stopped daemon's data directory as sqlite:PATH"
                ))
            })?;
        let path = PathBuf::from(path);
        let (data_dir, database) = if path.is_dir() {
            (path.clone(), path.join(DATABASE_FILE))
        } else {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), PathBuf::from);
            (dir, path)
        };
        let endpoints: Vec<String> = to
            .strip_prefix("etcd:")
            .map(|list| list.split(',').map(str::to_owned).collect())
            .filter(|list: &Vec<String>| list.iter().any(|e| !e.trim().is_empty()))
            .ok_or_else(|| {
                Error::Config(format!(
                    "--to {to:?}: give the etcd cluster as etcd:URL[,URL...], e.g. \
                     etcd:http://10.0.0.1:2379"
                ))
            })?;
        let (endpoints, prefix) = crate::config::etcd_target(&endpoints, prefix)?;
        if cluster_id.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Config("--cluster-id must not be empty".into()));
        }
        Ok(Self {
            data_dir,
            database,
            endpoints,
            prefix,
            cluster_id,
        })
    }
}

/// Copies the source into etcd and reads it back (see the module doc). The
/// report's rows may differ: see [`Report::check`].
pub async fn run(config: &MigrateConfig) -> Result<Report> {
    let source = Source::read(config).await?;
    let prefix = config.prefix.clone();
    let connect_failed = |source| MigrateError::Connect {
        endpoints: config.endpoints.join(","),
        source,
    };
    // As a control plane opens it (ha::start), so P means the same to both.
    let etcd = EtcdStore::connect_with(EtcdConfig::new(&config.endpoints, &config.prefix))
        .await
        .map_err(connect_failed)?;
    etcd.initialize().await.map_err(connect_failed)?;
    let keys = etcd.count_keys().await.map_err(connect_failed)?;
    if keys > 0 {
        return Err(MigrateError::NotEmpty { prefix, keys }.into());
    }
    let etcd = Arc::new(etcd);
    copy(&source, &etcd, &prefix).await?;
    let copied = check::read_back(&etcd, &prefix).await?;
    let expected = check::expected(&source)?;
    Ok(check::compare(&expected, copied, prefix, source.ledger_id))
}

/// Writes the source into the empty prefix.
async fn copy(source: &Source, etcd: &Arc<EtcdStore>, prefix: &str) -> Result<()> {
    let failed = |what: &str| {
        let (what, prefix) = (what.to_owned(), prefix.to_owned());
        move |source| MigrateError::Copy {
            what,
            prefix,
            source,
        }
    };
    for node in &source.nodes {
        etcd.put_node(node).await.map_err(failed("the nodes"))?;
    }
    if !source.workloads.is_empty() {
        etcd.put_workloads_batch(&source.workloads)
            .await
            .map_err(failed("the workloads"))?;
    }
    if !source.instances.is_empty() {
        etcd.put_instances_batch(&source.instances)
            .await
            .map_err(failed("the instances"))?;
    }
    for (kind, records) in &source.records {
        put_records(etcd, kind, records)
            .await
            .map_err(failed(&format!("the records of kind {kind:?}")))?;
    }
    put_records(etcd, RECORD_KIND, &source.audit)
        .await
        .map_err(failed("the audit log"))?;
    // The log the leaders will open: its chain must verify in etcd.
    let copied_audit = |source| MigrateError::CopiedAudit {
        prefix: prefix.to_owned(),
        source,
    };
    AuditLog::in_store(Arc::clone(etcd) as Arc<dyn StateStore>)
        .await
        .map_err(copied_audit)?
        .verify()
        .await
        .map_err(copied_audit)?;
    for (key, value) in source.identity() {
        let stored = etcd
            .record_once(IDENTITY.0, key, value)
            .await
            .map_err(failed("the cluster's identity"))?;
        if stored != value {
            return Err(MigrateError::IdentityTaken {
                key,
                prefix: prefix.to_owned(),
            }
            .into());
        }
    }
    Ok(())
}

async fn put_records(
    etcd: &EtcdStore,
    kind: &str,
    records: &[(String, String)],
) -> Result<(), StoreError> {
    futures::stream::iter(records)
        .map(|(key, value)| etcd.put_record(kind, key, value))
        .buffer_unordered(PARALLEL_PUTS)
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_and_to_are_parsed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let c = MigrateConfig::parse(
            &format!("sqlite:{d}"),
            "etcd:http://127.0.0.1:2379, http://127.0.0.1:2380",
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.data_dir, dir.path());
        assert_eq!(c.database, dir.path().join(DATABASE_FILE));
        assert_eq!(c.endpoints.len(), 2);
        assert_eq!(c.prefix, crate::config::DEFAULT_ETCD_PREFIX);

        let c = MigrateConfig::parse(
            &format!("sqlite:{d}/state.db"),
            "etcd:http://127.0.0.1:2379",
            Some("/p"),
            None,
        )
        .unwrap();
        assert_eq!(
            (c.data_dir.as_path(), c.database.as_path()),
            (dir.path(), dir.path().join("state.db").as_path())
        );
        assert_eq!(c.prefix, "/p");

        let to = "etcd:http://127.0.0.1:2379";
        for (from, to, prefix, says) in [
            ("sqlite:", to, None, "--from"),
            ("/var/lib/univrs", to, None, "--from"),
            ("sqlite:/x", "http://127.0.0.1:2379", None, "--to"),
            ("sqlite:/x", "etcd:", None, "--to"),
            ("sqlite:/x", "etcd:127.0.0.1:2379", None, "client URL"),
            ("sqlite:/x", to, Some("univrs"), "prefix"),
            ("sqlite:/x", to, Some("/univrs/"), "prefix"),
        ] {
            let e = MigrateConfig::parse(from, to, prefix, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{from} {to} {prefix:?}: {e}");
        }
    }
}
