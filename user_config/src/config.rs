//! `config.toml`: which daemon to talk to, and whether AI agents may act.
//!
//! ```toml
//! server = "http://127.0.0.1:9090"
//!
//! [ai]
//! enabled = false
//!
//! [audiences]
//! "http://127.0.0.1:9090" = "6b1f…"
//! ```
//!
//! Every key is optional; a missing file means all defaults. Unknown keys are errors.
//!
//! `[audiences]` keeps, for each server `ui` has signed requests to, the
//! audience it signs them for (SPEC §11: the server's cluster id, or a
//! standalone node's own id), learned from the server's `GET /api/v1/info`
//! on first use and kept, so a server that later answers for another
//! cluster is noticed rather than followed.
//!
//! Retired keys: `bootstrap`, `state_backend` and `[observability] telemetry`
//! were read and never used (the daemon takes its seeds and store from its own
//! flags, and no telemetry exists). A file that still sets one of them to a
//! value that asks for something is refused naming the key; the inert values
//! that `ui init` used to write (`bootstrap = []`, `telemetry = false`) are
//! accepted, so older files keep working, and are dropped when the file is
//! next saved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::paths::ConfigDir;
use crate::toml_file::{self, FieldPath, Problem, Validate};

/// `config.toml`, relative to the config directory.
pub const CONFIG_FILE: &str = "config.toml";

/// The user's `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The daemon's API URL, e.g. `http://127.0.0.1:9090` (must start with `http://`
    /// or `https://`). `None`: the CLI's own default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `[ai]`.
    #[serde(default)]
    pub ai: AiConfig,
    /// `[audiences]`: server URL (without a trailing `/`) → the audience
    /// requests to it are signed for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub audiences: BTreeMap<String, String>,
    /// Retired `bootstrap` (read only to refuse it; never written).
    #[serde(default, skip_serializing)]
    bootstrap: Option<Vec<toml::Value>>,
    /// Retired `state_backend` (read only to refuse it; never written).
    #[serde(default, skip_serializing)]
    state_backend: Option<toml::Value>,
    /// Retired `[observability]` (read only to refuse it; never written).
    #[serde(default, skip_serializing)]
    observability: Option<RetiredObservability>,
}

/// The retired `[observability]` table of `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetiredObservability {
    #[serde(default)]
    telemetry: bool,
}

/// `[ai]` of `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiConfig {
    /// Whether AI agents (the MCP server) may act for this user. Off by default.
    #[serde(default)]
    pub enabled: bool,
}

impl UserConfig {
    /// Reads `config.toml` of `dir`; a missing file gives the defaults.
    pub fn load(dir: &ConfigDir) -> Result<Self> {
        toml_file::load(dir, CONFIG_FILE)
    }

    /// Parses the text of a `config.toml`.
    pub fn parse(text: &str) -> Result<Self> {
        toml_file::parse(CONFIG_FILE, text)
    }

    /// Validates and writes `config.toml` of `dir` atomically.
    pub fn save(&self, dir: &ConfigDir) -> Result<()> {
        toml_file::save(dir, CONFIG_FILE, self)
    }
}

impl Validate for UserConfig {
    fn validate(&self) -> Result<(), Problem> {
        if let Some(server) = &self.server {
            if !(server.starts_with("http://") || server.starts_with("https://")) {
                return Err(Problem::new(
                    FieldPath::key("server"),
                    format!("{server:?} is not an http:// or https:// URL"),
                ));
            }
        }
        for (server, audience) in &self.audiences {
            if audience.trim().is_empty() || audience.chars().any(char::is_control) {
                return Err(Problem::new(
                    FieldPath::key("audiences").child(server),
                    format!("{audience:?} is not an audience (a cluster id or node id)"),
                ));
            }
        }
        if self.bootstrap.as_ref().is_some_and(|b| !b.is_empty()) {
            return Err(Problem::new(
                FieldPath::key("bootstrap"),
                "is no longer read: ui talks only to `server`, and a daemon joins a \
                 cluster with `orchestrator_daemon --seed HOST:PORT`; remove this key",
            ));
        }
        if self.state_backend.is_some() {
            return Err(Problem::new(
                FieldPath::key("state_backend"),
                "is no longer read: the state backend is the daemon's choice \
                 (`orchestrator_daemon --store`); remove this key",
            ));
        }
        if self.observability.as_ref().is_some_and(|o| o.telemetry) {
            return Err(Problem::new(
                FieldPath::key("observability").child("telemetry"),
                "is no longer read: there is no telemetry, nothing leaves the machine; \
                 remove this key",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn defaults_when_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        let c = UserConfig::load(&dir).unwrap();
        assert_eq!(c, UserConfig::default());
        assert!(!c.ai.enabled);
    }

    #[test]
    fn round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("u"));
        let c = UserConfig {
            server: Some("http://127.0.0.1:9090".into()),
            ai: AiConfig { enabled: true },
            ..UserConfig::default()
        };
        c.save(&dir).unwrap();
        assert_eq!(UserConfig::load(&dir).unwrap(), c);
    }

    #[test]
    fn the_default_file_holds_only_keys_that_are_used() {
        let text = toml::to_string_pretty(&UserConfig::default()).unwrap();
        assert_eq!(text.trim(), "[ai]\nenabled = false", "{text}");
        for retired in ["bootstrap", "state_backend", "observability", "telemetry"] {
            assert!(!text.contains(retired), "{text}");
        }
    }

    #[test]
    fn parses_the_documented_example() {
        let text = "server = \"http://127.0.0.1:9090\"\n[ai]\nenabled = true\n";
        let c = UserConfig::parse(text).unwrap();
        assert!(c.ai.enabled);
        assert_eq!(c.server.as_deref(), Some("http://127.0.0.1:9090"));
    }

    #[test]
    fn retired_keys_that_ask_for_something_are_refused_naming_the_key() {
        for (text, want) in [
            (
                "server = \"http://x\"\nbootstrap = [\"10.0.0.1:7946\"]\n",
                "config.toml:2: bootstrap: is no longer read",
            ),
            (
                "state_backend = \"sqlite\"\n",
                "config.toml:1: state_backend: is no longer read",
            ),
            (
                "[ai]\nenabled = true\n[observability]\ntelemetry = true\n",
                "config.toml:4: observability.telemetry: is no longer read",
            ),
        ] {
            let err = UserConfig::parse(text).unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.starts_with(want), "want {want:?}, got {msg:?}");
            assert!(msg.ends_with("remove this key"), "{msg}");
        }
    }

    #[test]
    fn what_older_ui_init_wrote_still_loads_and_is_dropped_on_save() {
        let old = "bootstrap = []\n\n[observability]\ntelemetry = false\n\n[ai]\nenabled = true\n";
        let c = UserConfig::parse(old).unwrap();
        assert!(c.ai.enabled);
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        c.save(&dir).unwrap();
        let saved = std::fs::read_to_string(dir.config_file()).unwrap();
        assert_eq!(saved.trim(), "[ai]\nenabled = true", "{saved}");
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err =
            UserConfig::parse("server = \"http://x\"\n\n[ai]\nenabled = true\nmodel = \"x\"\n")
                .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("config.toml:5: "), "{msg}");
        assert!(msg.contains("model"), "{msg}");
        let err = UserConfig::parse("[observability]\nexporter = \"otlp\"\n").unwrap_err();
        assert!(err.to_string().starts_with("config.toml:2: "), "{err}");
    }

    #[test]
    fn audiences_round_trip_and_an_empty_one_is_refused() {
        let text = "server = \"http://x\"\n\n[audiences]\n\"http://x\" = \"c1\"\n";
        let c = UserConfig::parse(text).unwrap();
        assert_eq!(c.audiences.get("http://x").map(String::as_str), Some("c1"));
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        c.save(&dir).unwrap();
        assert_eq!(UserConfig::load(&dir).unwrap(), c);
        let err = UserConfig::parse("[audiences]\n\"http://x\" = \" \"\n").unwrap_err();
        assert!(err.to_string().contains("audiences"), "{err}");
    }

    #[test]
    fn bad_server_names_the_line() {
        let err = UserConfig::parse("\nserver = \"127.0.0.1:9090\"\n").unwrap_err();
        assert!(matches!(err, Error::Invalid { line: Some(2), .. }), "{err}");
        assert!(
            err.to_string().starts_with("config.toml:2: server: "),
            "{err}"
        );
    }
}
