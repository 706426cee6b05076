//! The crate's error type.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A metric could not be created or registered (a bad name or a duplicate).
    #[error("registering metric {name}")]
    RegisterMetric {
        /// Name of the metric being registered.
        name: &'static str,
        /// What prometheus reported.
        #[source]
        source: prometheus::Error,
    },
    /// The registry could not be encoded in the Prometheus text format.
    #[error("encoding metrics in the prometheus text format")]
    EncodeMetrics(#[source] prometheus::Error),
    /// `RUST_LOG` (or the given filter) is not a valid tracing filter.
    #[error("parsing log filter {filter:?}")]
    LogFilter {
        /// The filter as given.
        filter: String,
        /// What the parser reported.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The global tracing subscriber could not be installed, usually because
    /// one is already set.
    #[error("installing the global tracing subscriber")]
    TracingInit(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A log format other than `text` or `json` was asked for.
    #[error("unknown log format {0:?} (expected \"text\" or \"json\")")]
    UnknownLogFormat(String),
    /// A topic name other than `nodes`, `workloads`, `instances` or `cluster`.
    #[error("unknown topic {0:?} (expected nodes, workloads, instances or cluster)")]
    UnknownTopic(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
