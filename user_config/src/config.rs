//! `config.toml`: which daemon to talk to, bootstrap peers, state backend and opt-ins.
//!
//! ```toml
//! server = "http://127.0.0.1:9090"
//! bootstrap = ["10.0.0.1:7946", "10.0.0.2:7946"]
//! state_backend = "sqlite"
//!
//! [observability]
//! telemetry = false
//!
//! [ai]
//! enabled = false
//! ```
//!
//! Every key is optional; a missing file means all defaults. Unknown keys are errors.

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
    /// Bootstrap peers (`host:port`) for joining the network.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// The state backend, e.g. `sqlite` or `etcd`. `None`: the daemon's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_backend: Option<String>,
    /// `[observability]`.
    #[serde(default)]
    pub observability: ObservabilityConfig,
    /// `[ai]`.
    #[serde(default)]
    pub ai: AiConfig,
}

/// `[observability]` of `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Opt-in to telemetry. Off by default; nothing leaves the machine unless set.
    #[serde(default)]
    pub telemetry: bool,
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
        for (i, peer) in self.bootstrap.iter().enumerate() {
            if peer.trim().is_empty() {
                return Err(Problem::new(
                    FieldPath::key("bootstrap").index(i),
                    "empty peer address",
                ));
            }
        }
        if let Some(backend) = &self.state_backend {
            if backend.trim().is_empty() {
                return Err(Problem::new(
                    FieldPath::key("state_backend"),
                    "empty backend name",
                ));
            }
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
        assert!(!c.observability.telemetry);
        assert!(!c.ai.enabled);
    }

    #[test]
    fn round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("u"));
        let c = UserConfig {
            server: Some("http://127.0.0.1:9090".into()),
            bootstrap: vec!["10.0.0.1:7946".into(), "10.0.0.2:7946".into()],
            state_backend: Some("sqlite".into()),
            observability: ObservabilityConfig { telemetry: true },
            ai: AiConfig { enabled: true },
        };
        c.save(&dir).unwrap();
        assert_eq!(UserConfig::load(&dir).unwrap(), c);
    }

    #[test]
    fn parses_the_documented_example() {
        let text = "server = \"http://127.0.0.1:9090\"\nbootstrap = [\"a:1\"]\n\
                    state_backend = \"sqlite\"\n[observability]\ntelemetry = false\n[ai]\nenabled = true\n";
        let c = UserConfig::parse(text).unwrap();
        assert!(c.ai.enabled);
        assert_eq!(c.bootstrap, ["a:1"]);
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err =
            UserConfig::parse("server = \"http://x\"\n\n[ai]\nenabled = true\nmodel = \"x\"\n")
                .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("config.toml:5: "), "{msg}");
        assert!(msg.contains("model"), "{msg}");
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
