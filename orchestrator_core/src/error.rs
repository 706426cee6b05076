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
            Error::ShuttingDown => OrchestrationError::Unavailable("shutting down".to_owned()),
            other => OrchestrationError::Unavailable(other.to_string()),
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
