//! The gossip key file (`--gossip-key-file`): one base64 key per line, the
//! first primary. It is read at start (before anything binds) and again on
//! every SIGHUP, so keys rotate without a restart: add the new key as a
//! second line everywhere, move it first everywhere, then delete the old
//! line, sending SIGHUP after each step. A file readable by group or others
//! is refused. Key material never reaches logs or errors: only key ids
//! (`KeyId`, 4 bytes of a hash) do.

use orchestrator_shared_types::error::chain;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cluster_manager::gossip::keyring::parse_key_file;
use cluster_manager::{GossipKey, Keyring};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zeroize::Zeroizing;

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be opened or read.
    #[error("reading the gossip key file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read the file.
    #[error(
        "the gossip key file {} is readable by group or others (mode {mode:03o}): run `chmod 600 {}`",
        path.display(), path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file's contents are not gossip keys.
    #[error("the gossip key file {}", path.display())]
    Keys {
        /// The file.
        path: PathBuf,
        /// What is wrong (never quoting a key).
        #[source]
        source: cluster_manager::gossip::KeyringError,
    },
}

/// Reads the keys of `path`, refusing a file that group or others may read.
pub fn load(path: &Path) -> Result<Vec<GossipKey>, KeyFileError> {
    let read = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read)?;
    // The mode of the file we read, not of whatever the path names later.
    let mode = file.metadata().map_err(read)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(read)?;
    parse_key_file(&text).map_err(|source| KeyFileError::Keys {
        path: path.to_owned(),
        source,
    })
}

/// Reads `path` into a new keyring.
pub fn keyring(path: &Path) -> Result<Keyring, KeyFileError> {
    let keys = load(path)?;
    Keyring::new(&keys).map_err(|source| KeyFileError::Keys {
        path: path.to_owned(),
        source,
    })
}

/// Re-reads `path` into `keyring`; logs what changed (key ids only), or why
/// the file was not taken (the keyring is then unchanged).
pub fn reload(path: &Path, keyring: &Keyring) {
    let change = load(path).and_then(|keys| {
        keyring.replace(&keys).map_err(|source| KeyFileError::Keys {
            path: path.to_owned(),
            source,
        })
    });
    match change {
        Ok(c) if c.is_empty() => {
            info!(file = %path.display(), "gossip key file re-read: no change")
        }
        Ok(c) => info!(file = %path.display(),
            added = ?c.added, removed = ?c.removed, new_primary = ?c.new_primary,
            primary = %keyring.primary(), "gossip keyring reloaded"),
        Err(e) => warn!(error = %chain(&e),
            "gossip key file not reloaded; the current keys stay in use"),
    }
}

/// Re-reads `path` into `keyring` on every SIGHUP until `cancel`.
pub async fn reload_on_sighup(path: PathBuf, keyring: Arc<Keyring>, cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot watch SIGHUP: the gossip key file is read at start only");
            return;
        }
    };
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            got = hup.recv() => {
                if got.is_none() {
                    return;
                }
                reload(&path, &keyring);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("gossip.keys");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_private_file_loads_and_a_shared_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = GossipKey::generate();
        let k2 = GossipKey::generate();
        let text = format!("{}\n{}\n", *k1.to_base64(), *k2.to_base64());
        let path = write(dir.path(), &text, 0o600);
        let ring = keyring(&path).unwrap();
        assert_eq!(ring.key_ids(), vec![k1.id(), k2.id()]);

        let path = write(dir.path(), &text, 0o640);
        let err = keyring(&path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("chmod 600"), "{msg}");
        assert!(msg.contains("640"), "{msg}");
        assert!(!msg.contains(k1.to_base64().as_str()), "{msg}");
    }

    #[test]
    fn errors_never_quote_a_key() {
        let dir = tempfile::tempdir().unwrap();
        // A truncated key (16 bytes): the error names the line, not the key.
        let secret = "c2VjcmV0c2VjcmV0c2VjcmV0";
        let path = write(dir.path(), &format!("{secret}\n"), 0o600);
        let err = keyring(&path).unwrap_err();
        let chain = chain(&err);
        assert!(chain.contains("line 1"), "{chain}");
        assert!(!chain.contains(secret), "{chain}");
        assert!(matches!(
            keyring(&dir.path().join("missing")),
            Err(KeyFileError::Read { .. })
        ));
    }

    #[test]
    fn reload_applies_a_good_file_and_keeps_the_keys_on_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let old = GossipKey::generate();
        let new = GossipKey::generate();
        let path = write(dir.path(), &format!("{}\n", *old.to_base64()), 0o600);
        let ring = keyring(&path).unwrap();
        write(
            dir.path(),
            &format!("{}\n{}\n", *new.to_base64(), *old.to_base64()),
            0o600,
        );
        reload(&path, &ring);
        assert_eq!(ring.key_ids(), vec![new.id(), old.id()]);
        write(dir.path(), "# emptied by mistake\n", 0o600);
        reload(&path, &ring);
        assert_eq!(ring.key_ids(), vec![new.id(), old.id()], "kept");
        write(dir.path(), &format!("{}\n", *new.to_base64()), 0o644);
        reload(&path, &ring);
        assert_eq!(ring.key_ids(), vec![new.id(), old.id()], "kept");
    }
}
