//! Errors of the orchestrator core.

use cluster_manager_interface::ClusterError;
use container_runtime_interface::RuntimeError;
use orchestrator_shared_types::{ManifestError, OrchestrationError};
use scheduler_interface::SchedulerError;
use state_store_interface::StoreError;

/// Failures of the reconciler and the library API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The container runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The scheduler failed.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The cluster manager failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A manifest is invalid.
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// No such object (for this owner).
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// Kind of object.
        kind: &'static str,
        /// Name or id asked for.
        name: String,
    },
    /// An argument is out of range.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// Which argument.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A write would grow an owner's usage above a quota; nothing was written.
    #[error(
        "quota {quota} exceeded: this would make {would_use} {unit}, above the limit of {limit}"
    )]
    QuotaExceeded {
        /// The quota's name (see [`crate::api::quota::names`]).
        quota: &'static str,
        /// Its value.
        limit: u64,
        /// The owner's usage the write would make.
        would_use: u64,
        /// What is counted.
        unit: &'static str,
    },
    /// The object is in a state that refuses this (a volume still in use).
    #[error("{kind} {name:?}: {message}")]
    Conflict {
        /// Kind of object.
        kind: &'static str,
        /// Its name.
        name: String,
        /// What conflicts.
        message: String,
    },
    /// Configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The reconciler task panicked while reconciling a workload.
    #[error("reconcile of workload {workload} panicked")]
    Panicked {
        /// The workload.
        workload: String,
    },
    /// The orchestrator is shutting down.
    #[error("the orchestrator is shutting down")]
    ShuttingDown,
}

impl From<Error> for OrchestrationError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e.into(),
            Error::Runtime(e) => e.into(),
            Error::Scheduler(e) => e.into(),
            Error::Cluster(e) => e.into(),
            Error::Manifest(e) => OrchestrationError::InvalidManifest(e),
            Error::NotFound { kind, name } => OrchestrationError::NotFound { kind, id: name },
            Error::InvalidArgument { field, message } => OrchestrationError::InvalidArgument {
                field: field.to_owned(),
                message,
            },
            e @ Error::QuotaExceeded { quota, .. } => OrchestrationError::InvalidArgument {
                field: quota.to_owned(),
                message: e.to_string(),
            },
            Error::Conflict {
                kind,
                name,
                message,
            } => OrchestrationError::Conflict {
                kind,
                id: name,
                message,
            },
            Error::ShuttingDown => OrchestrationError::Unavailable("shutting down".to_owned()),
            other => OrchestrationError::Unavailable(other.to_string()),
        }
    }
}

/// What kind of failure an [`Error`] is, as far as retrying is concerned; the
/// reconciler's `error_policy` chooses a back-off per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An image could not be pulled, or the runtime refused to create a
    /// container from it: the workload itself is at fault, so retrying soon
    /// will not help.
    Image,
    /// The state store is down or not ready: it usually comes back soon.
    StoreUnavailable,
    /// A node (or the runtime serving it) cannot be reached.
    NodeUnreachable,
    /// The cluster manager is not running (not initialised or stopped).
    Membership,
    /// A container operation failed for another reason (stop, remove, …).
    Runtime,
    /// Retrying cannot help until something changes: invalid input or
    /// configuration, a stored record that cannot be decoded, a panic.
    Permanent,
    /// The orchestrator is shutting down.
    ShuttingDown,
}

impl ErrorKind {
    /// A label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Image => "image",
            ErrorKind::StoreUnavailable => "store_unavailable",
            ErrorKind::NodeUnreachable => "node_unreachable",
            ErrorKind::Membership => "membership",
            ErrorKind::Runtime => "runtime",
            ErrorKind::Permanent => "permanent",
            ErrorKind::ShuttingDown => "shutting_down",
        }
    }
}

fn runtime_kind(e: &RuntimeError) -> ErrorKind {
    match e {
        RuntimeError::ImagePull { .. } | RuntimeError::Create { .. } => ErrorKind::Image,
        RuntimeError::NodeUnreachable(_) | RuntimeError::UnknownNode(_) => {
            ErrorKind::NodeUnreachable
        }
        RuntimeError::ShutDown => ErrorKind::ShuttingDown,
        RuntimeError::NotFound(_)
        | RuntimeError::AlreadyExists(_)
        | RuntimeError::Operation { .. }
        | RuntimeError::Volume { .. }
        | RuntimeError::VolumeInUse { .. } => ErrorKind::Runtime,
        RuntimeError::Unsupported { .. } => ErrorKind::Permanent,
    }
}

fn store_kind(e: &StoreError) -> ErrorKind {
    if e.is_unavailable() {
        ErrorKind::StoreUnavailable
    } else {
        ErrorKind::Permanent
    }
}

fn cluster_kind(e: &ClusterError) -> ErrorKind {
    match e {
        ClusterError::UnknownNode(_) => ErrorKind::NodeUnreachable,
        ClusterError::NotInitialized | ClusterError::ShutDown => ErrorKind::Membership,
        ClusterError::InvalidConfig(_)
        | ClusterError::Bind { .. }
        | ClusterError::KeyMismatch { .. }
        | ClusterError::Publish { .. }
        | ClusterError::RecordEncoding(_)
        | ClusterError::IllegalTransition(_) => ErrorKind::Permanent,
    }
}

impl Error {
    /// What kind of failure this is, for choosing how soon to retry.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(e) => store_kind(e),
            Error::Runtime(e) => runtime_kind(e),
            Error::Cluster(e) => cluster_kind(e),
            Error::ShuttingDown => ErrorKind::ShuttingDown,
            Error::Scheduler(_)
            | Error::Manifest(_)
            | Error::NotFound { .. }
            | Error::InvalidArgument { .. }
            | Error::QuotaExceeded { .. }
            | Error::Conflict { .. }
            | Error::Config(_)
            | Error::Panicked { .. } => ErrorKind::Permanent,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
