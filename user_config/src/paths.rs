//! Where a user's files live.
//!
//! The directory is chosen in this order (first match wins):
//!
//! 1. an explicit path, e.g. from the CLI's `--config-dir` flag;
//! 2. the `UNIVRS_CONFIG_DIR` environment variable;
//! 3. `$XDG_CONFIG_HOME/univrs` (only when `XDG_CONFIG_HOME` is absolute, as the XDG
//!    spec asks);
//! 4. `$HOME/.config/univrs`.
//!
//! Empty environment variables count as unset. Layout inside it:
//!
//! ```text
//! identity/identity.age    passphrase-encrypted Ed25519 seed (ASCII-armored age)
//! identity/public.key      public key, lowercase hex and a newline
//! config.toml              UserConfig
//! policy/trust.toml        TrustPolicy
//! policy/limits.toml       LimitsPolicy
//! policy/automation.toml   AutomationPolicy
//! secrets/NAME.age         one age-encrypted file per secret
//! ```
//!
//! Directories are created with mode 0700; secret files are written with mode 0600.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fsutil;
use crate::Error;

/// The environment variable that names the config directory.
pub const CONFIG_DIR_ENV: &str = "UNIVRS_CONFIG_DIR";

/// Which rule chose the config directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigDirSource {
    /// Given explicitly (the `--config-dir` flag).
    Explicit,
    /// The `UNIVRS_CONFIG_DIR` environment variable.
    Env,
    /// `$XDG_CONFIG_HOME/univrs`.
    XdgConfigHome,
    /// `$HOME/.config/univrs`.
    Home,
}

impl fmt::Display for ConfigDirSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Explicit => "--config-dir",
            Self::Env => CONFIG_DIR_ENV,
            Self::XdgConfigHome => "XDG_CONFIG_HOME",
            Self::Home => "HOME",
        })
    }
}

/// A user's config directory and the paths of the files in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigDir {
    root: PathBuf,
    source: ConfigDirSource,
}

impl ConfigDir {
    /// A config directory at exactly `root` (as if given with `--config-dir`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            source: ConfigDirSource::Explicit,
        }
    }

    /// Resolves the directory from `explicit` and the process environment (see the
    /// module docs for the order).
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        Self::resolve_with(explicit, |name| std::env::var_os(name))
    }

    /// Like [`ConfigDir::resolve`], reading environment variables through `env`
    /// (for tests and embedders).
    pub fn resolve_with(
        explicit: Option<&Path>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let (root, source) = if let Some(path) = explicit {
            (path.to_path_buf(), ConfigDirSource::Explicit)
        } else if let Some(path) = var(CONFIG_DIR_ENV) {
            (path, ConfigDirSource::Env)
        } else if let Some(xdg) = var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
            (xdg.join("univrs"), ConfigDirSource::XdgConfigHome)
        } else if let Some(home) = var("HOME") {
            (home.join(".config").join("univrs"), ConfigDirSource::Home)
        } else {
            return Err(Error::NoConfigDir);
        };
        Ok(Self { root, source })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Which rule chose it.
    pub fn source(&self) -> ConfigDirSource {
        self.source
    }

    /// `identity/`.
    pub fn identity_dir(&self) -> PathBuf {
        self.root.join("identity")
    }

    /// `identity/identity.age`: the encrypted private key.
    pub fn identity_file(&self) -> PathBuf {
        self.identity_dir().join("identity.age")
    }

    /// `identity/public.key`.
    pub fn public_key_file(&self) -> PathBuf {
        self.identity_dir().join("public.key")
    }

    /// `config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join(crate::config::CONFIG_FILE)
    }

    /// `policy/`.
    pub fn policy_dir(&self) -> PathBuf {
        self.root.join("policy")
    }

    /// `policy/trust.toml`.
    pub fn trust_file(&self) -> PathBuf {
        self.root.join(crate::policy::TRUST_FILE)
    }

    /// `policy/limits.toml`.
    pub fn limits_file(&self) -> PathBuf {
        self.root.join(crate::policy::LIMITS_FILE)
    }

    /// `policy/automation.toml`.
    pub fn automation_file(&self) -> PathBuf {
        self.root.join(crate::policy::AUTOMATION_FILE)
    }

    /// `secrets/`.
    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join("secrets")
    }

    /// Creates the directory and its `identity/`, `policy/` and `secrets/` folders
    /// (mode 0700) where missing. Existing `identity/` and `secrets/` folders are
    /// tightened to 0700.
    pub fn ensure(&self) -> Result<()> {
        fsutil::ensure_private_dir(&self.root, false)?;
        fsutil::ensure_private_dir(&self.identity_dir(), true)?;
        fsutil::ensure_private_dir(&self.policy_dir(), false)?;
        fsutil::ensure_private_dir(&self.secrets_dir(), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn resolution_order() {
        let all = env(&[
            ("UNIVRS_CONFIG_DIR", "/env/dir"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ]);
        let d = ConfigDir::resolve_with(Some(Path::new("/flag")), &all).unwrap();
        assert_eq!(
            (d.root(), d.source()),
            (Path::new("/flag"), ConfigDirSource::Explicit)
        );
        let d = ConfigDir::resolve_with(None, &all).unwrap();
        assert_eq!(
            (d.root(), d.source()),
            (Path::new("/env/dir"), ConfigDirSource::Env)
        );
        let d = ConfigDir::resolve_with(None, env(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/h")]))
            .unwrap();
        assert_eq!(d.root(), Path::new("/xdg/univrs"));
        let d = ConfigDir::resolve_with(
            None,
            env(&[
                ("UNIVRS_CONFIG_DIR", ""),
                ("XDG_CONFIG_HOME", "rel"),
                ("HOME", "/h"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (d.root(), d.source()),
            (Path::new("/h/.config/univrs"), ConfigDirSource::Home)
        );
        assert!(matches!(
            ConfigDir::resolve_with(None, env(&[])),
            Err(Error::NoConfigDir)
        ));
    }

    #[test]
    fn layout() {
        let d = ConfigDir::new("/c");
        assert_eq!(d.identity_file(), Path::new("/c/identity/identity.age"));
        assert_eq!(d.public_key_file(), Path::new("/c/identity/public.key"));
        assert_eq!(d.config_file(), Path::new("/c/config.toml"));
        assert_eq!(d.trust_file(), Path::new("/c/policy/trust.toml"));
        assert_eq!(d.limits_file(), Path::new("/c/policy/limits.toml"));
        assert_eq!(d.automation_file(), Path::new("/c/policy/automation.toml"));
        assert_eq!(d.secrets_dir(), Path::new("/c/secrets"));
    }

    #[test]
    fn ensure_makes_private_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let d = ConfigDir::new(tmp.path().join("univrs"));
        d.ensure().unwrap();
        d.ensure().unwrap();
        for p in [
            d.root().to_path_buf(),
            d.identity_dir(),
            d.policy_dir(),
            d.secrets_dir(),
        ] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", p.display());
        }
    }
}
