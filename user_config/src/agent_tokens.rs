//! `agents/tokens.toml`: the agent tokens you signed, without the tokens
//! themselves (id, agent, tools, validity), so that `ui export` can list
//! them and you can revoke them by id. A token is a bearer credential: it is
//! printed once and never kept here.
//!
//! ```toml
//! [[token]]
//! id = "0f3c…"
//! agent = "claude"
//! tools = ["list_workloads"]
//! issued_at = "2026-12-07T14:00:00Z"
//! expires_at = "2026-12-08T14:00:00Z"
//! ```

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fsutil;
use crate::paths::ConfigDir;
use crate::toml_file::{self, FieldPath, Problem, Validate};

/// The file, relative to the config directory.
pub const TOKENS_FILE: &str = "agents/tokens.toml";

/// One token you signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// The token's id (what `ui agent token revoke` takes).
    pub id: String,
    /// The agent it was signed for.
    pub agent: String,
    /// The MCP tools it allows.
    pub tools: Vec<String>,
    /// When it was signed (RFC 3339).
    pub issued_at: String,
    /// When it stops being valid (RFC 3339).
    pub expires_at: String,
}

/// Every token you signed, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenLog {
    /// The tokens.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenRecord>,
}

impl Validate for TokenLog {
    fn validate(&self) -> std::result::Result<(), Problem> {
        match self.tokens.iter().position(|t| t.id.is_empty()) {
            Some(i) => Err(Problem::new(
                FieldPath::key("token").index(i).child("id"),
                "is empty",
            )),
            None => Ok(()),
        }
    }
}

impl TokenLog {
    /// Reads `agents/tokens.toml` of `dir`; a missing file is an empty log.
    pub fn load(dir: &ConfigDir) -> Result<Self> {
        toml_file::load(dir, TOKENS_FILE)
    }

    /// Appends `record` and writes the file atomically (mode 0600).
    pub fn record(dir: &ConfigDir, record: TokenRecord) -> Result<()> {
        let mut log = Self::load(dir)?;
        log.tokens.push(record);
        dir.ensure()?;
        fsutil::ensure_private_dir(&dir.root().join("agents"), true)?;
        toml_file::save(dir, TOKENS_FILE, &log)
    }

    /// Empties the log (`ui forget`, once the daemon refuses them all).
    pub fn clear(dir: &ConfigDir) -> Result<()> {
        if Self::load(dir)?.tokens.is_empty() {
            return Ok(());
        }
        toml_file::save(dir, TOKENS_FILE, &Self::default())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn tokens_are_recorded_privately_and_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("c"));
        assert!(TokenLog::load(&dir).unwrap().tokens.is_empty());
        let rec = TokenRecord {
            id: "ab".repeat(16),
            agent: "bot".into(),
            tools: vec!["list_workloads".into()],
            issued_at: "2026-12-07T14:00:00Z".into(),
            expires_at: "2026-12-08T14:00:00Z".into(),
        };
        TokenLog::record(&dir, rec.clone()).unwrap();
        TokenLog::record(&dir, rec.clone()).unwrap();
        assert_eq!(TokenLog::load(&dir).unwrap().tokens, vec![rec.clone(), rec]);
        let path = dir.root().join(TOKENS_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        TokenLog::clear(&dir).unwrap();
        assert!(TokenLog::load(&dir).unwrap().tokens.is_empty());
    }
}
