//! The secret store: one age-encrypted file per secret in `secrets/NAME.age`.
//!
//! # Key management
//!
//! Secrets are encrypted to an age X25519 key **derived from the user's Ed25519
//! seed**: SHA-256 of the domain-separation string
//! `univrs/user_config/secrets/age-x25519/v1` followed by the seed, used as an
//! `AGE-SECRET-KEY-1…` identity. That key is never stored anywhere: it exists only in
//! memory while an [`Identity`] is loaded, and the identity itself is on disk only
//! encrypted under the user's passphrase (scrypt). So a copy of the config directory
//! is worthless without the passphrase, and no decryption key sits next to the
//! secrets.
//!
//! Why not encrypt each secret with the passphrase directly: every scrypt operation
//! costs about a second by design, so listing, reading or writing many secrets would
//! take seconds each, and the passphrase would be needed even to add a secret. With
//! the derived key one scrypt operation (unlocking the identity) serves a whole
//! session, and X25519 encryption is fast. The domain separation keeps the derived
//! key independent of the signing key's other uses.
//!
//! Consequence: rotating the identity changes the key. Use [`SecretStore::rekey`]
//! to re-encrypt every secret under the new identity before discarding the old one.
//!
//! Plaintext never touches the disk: values are encrypted in memory and only the
//! ciphertext is written, atomically, with mode 0600.

use std::fs;
use std::io;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::error::{io_err, Error, Result};
use crate::fsutil::{self, PRIVATE_FILE};
use crate::identity::Identity;
use crate::paths::ConfigDir;

const SUFFIX: &str = ".age";
const MAX_NAME_LEN: usize = 128;

/// Checks a secret name: 1 to 128 of `A-Z a-z 0-9 _ . -`, and not `.` or `..`.
pub fn validate_secret_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSecretName {
            name: name.to_owned(),
        })
    }
}

/// The secrets of one user, encrypted to a key derived from their identity.
pub struct SecretStore {
    dir: PathBuf,
    key: age::x25519::Identity,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SecretStore {
    /// The secret store of `dir`, using `identity`'s derived key.
    pub fn open(dir: &ConfigDir, identity: &Identity) -> Result<Self> {
        Ok(Self {
            dir: dir.secrets_dir(),
            key: identity.secrets_key()?,
        })
    }

    /// The names of the stored secrets, sorted, without needing the identity.
    pub fn names(dir: &ConfigDir) -> Result<Vec<String>> {
        list_dir(&dir.secrets_dir())
    }

    /// Encrypts `value` and stores it as `name`, replacing any previous value.
    pub fn put(&self, name: &str, value: &[u8]) -> Result<()> {
        validate_secret_name(name)?;
        let recipient = self.key.to_public();
        let ciphertext = age::encrypt(&recipient, value).map_err(|source| Error::Encrypt {
            what: format!("secret {name:?}"),
            source: Box::new(source),
        })?;
        fsutil::ensure_private_dir(&self.dir, true)?;
        fsutil::write_atomic(&self.path(name), &ciphertext, PRIVATE_FILE)
    }

    /// Decrypts secret `name`. The caller should zeroize the value when done.
    pub fn get(&self, name: &str) -> Result<Vec<u8>> {
        validate_secret_name(name)?;
        let path = self.path(name);
        let ciphertext = match fs::read(&path) {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoSuchSecret {
                    name: name.to_owned(),
                })
            }
            Err(e) => return Err(io_err("reading", path)(e)),
        };
        age::decrypt(&self.key, &ciphertext).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Error::SecretKeyMismatch {
                name: name.to_owned(),
            },
            source => Error::Decrypt {
                path,
                source: Box::new(source),
            },
        })
    }

    /// The names of the stored secrets, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        list_dir(&self.dir)
    }

    /// Removes secret `name` ([`Error::NoSuchSecret`] if absent).
    pub fn delete(&self, name: &str) -> Result<()> {
        validate_secret_name(name)?;
        let path = self.path(name);
        fs::remove_file(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::NoSuchSecret {
                    name: name.to_owned(),
                }
            } else {
                io_err("removing", path)(e)
            }
        })
    }

    /// Re-encrypts every secret for `new_identity` (after an identity rotation) and
    /// returns the store opened with it. All secrets are decrypted first, so a
    /// secret this store cannot read stops the rekey before anything is rewritten;
    /// a write failure midway leaves some secrets under each key, and running
    /// `rekey` again from the old store finishes only the ones it can still read.
    pub fn rekey(&self, new_identity: &Identity) -> Result<SecretStore> {
        let names = self.list()?;
        let mut values = Vec::with_capacity(names.len());
        for name in names {
            let value = Zeroizing::new(self.get(&name)?);
            values.push((name, value));
        }
        let new = SecretStore {
            dir: self.dir.clone(),
            key: new_identity.secrets_key()?,
        };
        for (name, value) in &values {
            new.put(name, value)?;
        }
        Ok(new)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{SUFFIX}"))
    }
}

fn list_dir(dir: &std::path::Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("listing", dir))?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
            continue;
        };
        if validate_secret_name(name).is_ok() && entry.path().is_file() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            "a",
            "API_KEY",
            "db.password",
            "x-1",
            &"n".repeat(128),
            "...",
        ] {
            assert!(validate_secret_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "é",
            &"n".repeat(129),
            "a\0",
        ] {
            assert!(
                matches!(
                    validate_secret_name(bad),
                    Err(Error::InvalidSecretName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
