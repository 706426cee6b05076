//! A user's identity, configuration, policy files and secrets (SPEC §15).
//!
//! - [`paths`]: [`ConfigDir`], where the files live (`--config-dir` >
//!   `UNIVRS_CONFIG_DIR` > `$XDG_CONFIG_HOME/univrs` > `$HOME/.config/univrs`) and
//!   their layout;
//! - [`identity`]: the Ed25519 [`Identity`] and [`IdentityStore`], which keeps its
//!   seed encrypted under a passphrase with age (scrypt);
//! - [`passphrase`]: `UNIVRS_PASSPHRASE` or a prompt without echo;
//! - [`config`]: [`UserConfig`] (`config.toml`);
//! - [`policy`]: [`TrustPolicy`], [`LimitsPolicy`], [`AutomationPolicy`] under
//!   `policy/`, with errors that say `file:line: field: problem`;
//! - [`secrets`]: [`SecretStore`], age-encrypted secrets keyed from the identity;
//! - [`error`]: the crate's [`Error`] and [`Result`].
//!
//! Private keys and secret values are never written in plaintext: they are
//! encrypted in memory and written atomically (temporary file, fsync, rename) with
//! mode 0600, in directories created with mode 0700.

pub mod agent_tokens;
pub mod config;
pub mod error;
mod fsutil;
pub mod identity;
pub mod passphrase;
pub mod paths;
pub mod policy;
pub mod secrets;
mod toml_file;

pub use age::secrecy::{ExposeSecret, SecretString};
pub use config::{AiConfig, UserConfig};

/// Writes `contents` to `path` atomically (temporary file, fsync, rename)
/// with mode 0600: for files that hold what is yours alone, such as the
/// archive of `ui export`.
pub fn write_private_file(path: &std::path::Path, contents: &[u8]) -> error::Result<()> {
    fsutil::write_atomic(path, contents, fsutil::PRIVATE_FILE)
}
pub use error::{Error, Result};
pub use identity::{Identity, IdentityStore};
pub use passphrase::{
    new_passphrase_from_env_or_prompt, passphrase_from_env_or_prompt, PASSPHRASE_ENV,
};
pub use paths::{ConfigDir, ConfigDirSource, CONFIG_DIR_ENV};
pub use policy::{AutomationPolicy, Decision, LimitsPolicy, Policies, TrustPolicy};
pub use secrets::SecretStore;
