//! Why a migration was refused or failed ([`MigrateError`]).

use std::path::PathBuf;

use orchestrator_audit::AuditError;
use state_store_interface::StoreError;

/// Why a migration was refused or failed. Each says whether anything was
/// written to etcd, and if so how to clear the prefix before retrying.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// There is no SQLite database at the source.
    #[error(
        "no SQLite state at {}: migrate copies a stopped daemon's data directory (or the \
         state.db in it) and creates none",
        path.display()
    )]
    NoSource {
        /// The database looked for.
        path: PathBuf,
    },
    /// The source's data directory has no node key (its ledger authority).
    #[error(
        "no node key in {}: the source's credit ledger is signed with it, and the control \
         planes need it to go on",
        dir.display()
    )]
    NoNodeKey {
        /// The data directory.
        dir: PathBuf,
    },
    /// The source's state could not be read.
    #[error("reading the SQLite state at {}; nothing was copied", path.display())]
    Source {
        /// The database.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The source's audit log cannot be read or does not verify.
    #[error(
        "the audit log {} cannot be read or does not verify; nothing was copied",
        path.display()
    )]
    SourceAudit {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: AuditError,
    },
    /// The source holds records of a kind the migration writes itself.
    #[error(
        "the source holds records of kind {kind:?}, which migrate writes itself (the audit \
         log, the cluster's identity); nothing was copied"
    )]
    ReservedKind {
        /// The kind.
        kind: String,
    },
    /// etcd could not be reached.
    #[error("connecting to etcd at {endpoints}; nothing was copied")]
    Connect {
        /// The client URLs.
        endpoints: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The destination prefix holds something already.
    #[error(
        "etcd prefix {prefix} already holds {keys} key(s): migrate copies into an empty prefix \
         only, and nothing was copied (choose another --etcd-prefix or, if nothing uses this \
         one, delete it: etcdctl del --prefix {prefix}/)"
    )]
    NotEmpty {
        /// The prefix.
        prefix: String,
        /// How many keys are under it.
        keys: u64,
    },
    /// A write to etcd failed part way.
    #[error(
        "copying {what} into etcd failed, and prefix {prefix} now holds part of the state: \
         delete it (etcdctl del --prefix {prefix}/) before retrying"
    )]
    Copy {
        /// What was being copied.
        what: String,
        /// The prefix.
        prefix: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The audit log copied into etcd does not open as the log.
    #[error(
        "the audit log copied into etcd prefix {prefix} does not verify: delete the prefix \
         (etcdctl del --prefix {prefix}/) before retrying"
    )]
    CopiedAudit {
        /// The prefix.
        prefix: String,
        /// Why.
        #[source]
        source: AuditError,
    },
    /// Something else wrote the cluster's identity while the copy ran.
    #[error(
        "etcd prefix {prefix} got another {key:?} record while migrate copied into it (did a \
         control plane start on it?): stop it and delete the prefix (etcdctl del --prefix \
         {prefix}/) before retrying"
    )]
    IdentityTaken {
        /// The `cluster` record's key.
        key: &'static str,
        /// The prefix.
        prefix: String,
    },
    /// Data could not be encoded for its digest.
    #[error("encoding {what} for the check")]
    Digest {
        /// What.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Reading the copy back failed.
    #[error("reading {what} back from etcd prefix {prefix} to check the copy")]
    ReadBack {
        /// What.
        what: String,
        /// The prefix.
        prefix: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// What was read back differs from the source.
    #[error(
        "the copy differs from the source in {}: delete etcd prefix {prefix} (etcdctl del \
         --prefix {prefix}/) before retrying",
        differing.join(", ")
    )]
    Mismatch {
        /// The prefix.
        prefix: String,
        /// What differs (`workloads`, `records audit`, …).
        differing: Vec<String>,
    },
}
