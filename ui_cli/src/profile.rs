//! The user's local files (identity, config.toml, policy), through `user_config`.
//!
//! Everything the CLI needs from that crate goes through here, so the commands
//! stay independent of its exact API.

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use user_config::paths::ConfigDir;
use user_config::{passphrase_from_env_or_prompt, IdentityStore, UserConfig};

/// Reads `config.toml` (defaults when it does not exist).
pub fn load_config(dir: &ConfigDir) -> anyhow::Result<UserConfig> {
    UserConfig::load(dir).with_context(|| format!("reading {}", dir.config_file().display()))
}

/// Decrypts the identity (passphrase from `UNIVRS_PASSPHRASE` or a prompt)
/// and returns its signing key.
pub fn signing_key(dir: &ConfigDir) -> anyhow::Result<SigningKey> {
    let store = IdentityStore::new(dir);
    if !store.exists() {
        anyhow::bail!(
            "no identity in {}: create one with `ui init`",
            dir.root().display()
        );
    }
    let passphrase = passphrase_from_env_or_prompt("Passphrase of your identity: ")
        .context("reading the passphrase of your identity")?;
    let identity = store.load(&passphrase).context("unlocking your identity")?;
    Ok(identity.signing_key().clone())
}

/// The policy types, re-exported for the commands.
pub use user_config::policy::{AutomationPolicy, LimitsPolicy, TrustPolicy};

/// Writes the default `config.toml` and policy files where they do not exist
/// yet; returns the paths written.
pub fn write_default_files(dir: &ConfigDir) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    let context = |path: &std::path::Path| format!("writing {}", path.display());
    let path = dir.config_file();
    if !path.exists() {
        UserConfig::default()
            .save(dir)
            .with_context(|| context(&path))?;
        written.push(path);
    }
    let path = dir.trust_file();
    if !path.exists() {
        TrustPolicy::default()
            .save(dir)
            .with_context(|| context(&path))?;
        written.push(path);
    }
    let path = dir.limits_file();
    if !path.exists() {
        LimitsPolicy::default()
            .save(dir)
            .with_context(|| context(&path))?;
        written.push(path);
    }
    let path = dir.automation_file();
    if !path.exists() {
        AutomationPolicy::default()
            .save(dir)
            .with_context(|| context(&path))?;
        written.push(path);
    }
    Ok(written)
}
