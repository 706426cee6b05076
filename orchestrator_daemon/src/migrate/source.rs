//! The source of a migration, read whole before anything is written: the
//! SQLite state of a stopped daemon, its audit log file, and the identity
//! its credit ledger has (ledger id and authority key).

use std::collections::BTreeMap;
use std::path::Path;

use orchestrator_audit::{AuditEntry, AuditError, AuditLog, AUDIT_FILE, RECORD_KIND};
use orchestrator_shared_types::{Node, WorkloadDefinition, WorkloadInstance};
use state_store_interface::{SqliteStore, StateStore, StoreError};
use zeroize::Zeroizing;

use super::{MigrateConfig, MigrateError};
use crate::control::standalone_ledger_id;
use crate::error::Result;
use crate::ha::{IDENTITY, LEDGER_KEY};
use crate::{cluster_identity, node_key};

/// Everything the migration copies.
pub(super) struct Source {
    pub(super) nodes: Vec<Node>,
    pub(super) workloads: Vec<WorkloadDefinition>,
    pub(super) instances: Vec<WorkloadInstance>,
    /// The store's records: kind, then its records (key, value) in key order.
    pub(super) records: BTreeMap<String, Vec<(String, String)>>,
    /// The audit log's entries as records of kind `audit`: the key of each
    /// (its sequence number, zero-padded) and its line as it is in the file.
    pub(super) audit: Vec<(String, String)>,
    /// The credit ledger's id: the cluster id, or the standalone node's.
    pub(super) ledger_id: String,
    /// The credit ledger's authority, the node key, as hex (a secret).
    pub(super) ledger_key: Zeroizing<String>,
}

impl Source {
    /// Reads the source `config` names; refuses one that is not there (it
    /// creates nothing), one whose audit log does not verify, and one that
    /// holds records of the kinds the migration writes itself.
    pub(super) async fn read(config: &MigrateConfig) -> Result<Self> {
        let dir = &config.data_dir;
        if !config.database.is_file() {
            return Err(MigrateError::NoSource {
                path: config.database.clone(),
            }
            .into());
        }
        let key =
            node_key::load(dir)?.ok_or_else(|| MigrateError::NoNodeKey { dir: dir.clone() })?;
        let ledger_id = match &config.cluster_id {
            Some(id) => id.clone(),
            None => match cluster_identity::load(dir)? {
                Some(identity) => identity.cluster_id,
                None => standalone_ledger_id(&key),
            },
        };
        let ledger_key = Zeroizing::new(hex::encode(key.to_bytes()));
        let audit = read_audit(dir).await?;

        let failed = |source: StoreError| MigrateError::Source {
            path: config.database.clone(),
            source,
        };
        let store = SqliteStore::open(&config.database).map_err(failed)?;
        store.initialize().await.map_err(failed)?;
        let mut records = BTreeMap::new();
        for kind in store.list_record_kinds().await.map_err(failed)? {
            if kind == RECORD_KIND || kind == IDENTITY.0 || kind == LEDGER_KEY.0 {
                return Err(MigrateError::ReservedKind { kind }.into());
            }
            let of_kind = store.list_records(&kind).await.map_err(failed)?;
            records.insert(kind, of_kind);
        }
        Ok(Self {
            nodes: store.list_nodes().await.map_err(failed)?,
            workloads: store.list_workloads().await.map_err(failed)?,
            instances: store.list_instances().await.map_err(failed)?,
            records,
            audit,
            ledger_id,
            ledger_key,
        })
    }

    /// The records of the cluster's identity in etcd (kind `cluster`): its
    /// id, the ledger id, and the ledger's authority key.
    pub(super) fn identity(&self) -> [(&'static str, &str); 2] {
        [
            (IDENTITY.1, self.ledger_id.as_str()),
            (LEDGER_KEY.1, self.ledger_key.as_str()),
        ]
    }
}

/// The entries of `dir/audit.log` (none without the file), after checking
/// its whole chain as the daemon does before it appends.
async fn read_audit(dir: &Path) -> Result<Vec<(String, String)>> {
    let path = dir.join(AUDIT_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let broken = |source: AuditError| MigrateError::SourceAudit {
        path: path.clone(),
        source,
    };
    let verified = AuditLog::open(dir)
        .map_err(broken)?
        .verify()
        .await
        .map_err(broken)?;
    let text = std::fs::read_to_string(&path).map_err(|source| {
        broken(AuditError::Io {
            path: path.clone(),
            source,
        })
    })?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: AuditEntry = serde_json::from_str(line).map_err(|e| {
            broken(AuditError::Broken {
                seq: entries.len() as u64 + 1,
                reason: format!("line {} is not an entry: {e}", n + 1),
            })
        })?;
        entries.push((format!("{:020}", entry.seq), line.to_owned()));
    }
    if entries.len() as u64 != verified {
        return Err(broken(AuditError::Broken {
            seq: verified.min(entries.len() as u64) + 1,
            reason: format!(
                "{} entries read but {verified} verified: was the log written meanwhile (is the \
                 daemon stopped?)",
                entries.len()
            ),
        })
        .into());
    }
    Ok(entries)
}
