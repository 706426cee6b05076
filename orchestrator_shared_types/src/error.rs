//! The error type shared at crate boundaries.

use crate::manifest::ManifestError;

/// Errors that cross the boundary between components (API, reconciler, backends).
#[derive(Debug, thiserror::Error)]
pub enum OrchestrationError {
    /// A manifest or argument failed to parse or validate.
    #[error("invalid manifest: {0}")]
    InvalidManifest(#[from] ManifestError),
    /// An argument is out of range or malformed.
    #[error("invalid argument {field}: {message}")]
    InvalidArgument {
        /// Which argument.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The named object does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Kind of object (`workload`, `node`, `instance`).
        kind: &'static str,
        /// Its id or name.
        id: String,
    },
    /// The object exists already, or a concurrent change conflicts.
    #[error("conflict on {kind} {id}: {message}")]
    Conflict {
        /// Kind of object.
        kind: &'static str,
        /// Its id or name.
        id: String,
        /// What conflicts.
        message: String,
    },
    /// The state store failed.
    #[error("state store: {0}")]
    Store(String),
    /// The container runtime failed.
    #[error("container runtime: {0}")]
    Runtime(String),
    /// The scheduler failed.
    #[error("scheduler: {0}")]
    Scheduler(String),
    /// The cluster manager failed.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The component is shutting down or not started yet.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Result with [`OrchestrationError`].
pub type Result<T, E = OrchestrationError> = std::result::Result<T, E>;

/// `e` and its sources, outer to inner, joined by `": "` (what anyhow's
/// `{:#}` prints), for errors that travel as text: logs, API messages.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod chain_tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_reads_outer_to_inner() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(super::chain(&e), "outer: inner");
    }
}
