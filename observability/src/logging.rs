//! Logs through `tracing` (SPEC §14): human-readable or JSON lines on
//! stderr, filtered by `RUST_LOG` (default [`DEFAULT_FILTER`]). Nothing leaves the
//! machine.

use std::fmt;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

use crate::error::{Error, Result};

/// Filter used when `RUST_LOG` is unset or empty: `info`, but hickory-dns's
/// server logs every query it answers at `info` (a line per lookup of every
/// instance), so its crates say only warnings.
pub const DEFAULT_FILTER: &str =
    "info,hickory_server=warn,hickory_proto=warn,hickory_resolver=warn";

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (`text`).
    #[default]
    Text,
    /// One JSON object per line (`json`).
    Json,
}

impl FromStr for LogFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(Error::UnknownLogFormat(other.to_owned())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Installs the global subscriber: `format` lines on stderr, filtered by
/// `RUST_LOG` (or [`DEFAULT_FILTER`]).
///
/// Fails, without panicking, if `RUST_LOG` does not parse or a global
/// subscriber is already installed (a second call is harmless).
pub fn init_tracing(format: LogFormat) -> Result<()> {
    let from_env = std::env::var("RUST_LOG").ok();
    let filter = filter_from(from_env.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(Error::TracingInit)
}

/// The filter for a `RUST_LOG` value; unset or blank means [`DEFAULT_FILTER`].
pub fn filter_from(rust_log: Option<&str>) -> Result<EnvFilter> {
    let filter = match rust_log.map(str::trim) {
        Some(value) if !value.is_empty() => value,
        _ => DEFAULT_FILTER,
    };
    EnvFilter::builder()
        .parse(filter)
        .map_err(|source| Error::LogFilter {
            filter: filter.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_custom_filters() {
        let default = filter_from(None).unwrap().to_string();
        assert!(
            default.contains("hickory_server=warn") && default.split(',').any(|d| d == "info"),
            "{default}"
        );
        assert_eq!(filter_from(Some("  ")).unwrap().to_string(), default);
        assert_eq!(filter_from(Some("debug")).unwrap().to_string(), "debug");
        assert!(filter_from(Some("observability=debug,warn")).is_ok());
        assert!(matches!(
            filter_from(Some("foo=notalevel")),
            Err(Error::LogFilter { .. })
        ));
    }

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert!("xml".parse::<LogFormat>().is_err());
        assert_eq!(LogFormat::Json.to_string(), "json");
    }
}
