//! This node's gossip keys as the control plane changes them
//! (`POST /agent/v1/gossip-keys`, and the control plane's own keys during a
//! rotation): the key file is the truth. A change reads the file, applies
//! itself, writes the file back atomically (mode 0600, synced, renamed over
//! it), and only then replaces the keyring gossip uses, so a node never
//! acknowledges, or seals with, a key that a restart would not find. A
//! SIGHUP reload reads the same file ([`crate::gossip_keys`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use cluster_manager::{GossipKey, Keyring};
use node_agent::gossip_keys::{GossipKeyChange, GossipKeyIds, GossipKeyStore, KeyChangeError};
use orchestrator_shared_types::error::chain;
use zeroize::Zeroizing;

/// A node's key file and the keyring its gossip uses.
#[derive(Clone)]
pub struct KeyFileStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    keyring: Arc<Keyring>,
    /// One change at a time (each reads, then writes the file).
    lock: Mutex<()>,
}

impl std::fmt::Debug for KeyFileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileStore")
            .field("path", &self.inner.path)
            .field("keyring", &self.inner.keyring)
            .finish()
    }
}

fn storage(e: impl std::error::Error) -> KeyChangeError {
    KeyChangeError::Storage(chain(&e))
}

fn ids(keys: &[GossipKey]) -> GossipKeyIds {
    GossipKeyIds {
        primary: keys.first().map(|k| k.id().to_string()).unwrap_or_default(),
        keys: keys.iter().map(|k| k.id().to_string()).collect(),
    }
}

fn position(keys: &[GossipKey], key_id: &str) -> Option<usize> {
    keys.iter().position(|k| k.id().to_string() == key_id)
}

/// Applies `change` to `keys` (the first primary).
fn change_keys(keys: &mut Vec<GossipKey>, change: &GossipKeyChange) -> Result<(), KeyChangeError> {
    match change {
        GossipKeyChange::Install { key } => {
            let key = GossipKey::from_base64(key, 1).map_err(|_| {
                KeyChangeError::Refused("the key to install is not a 32-byte base64 key".into())
            })?;
            if !keys.iter().any(|k| k.id() == key.id()) {
                keys.push(key);
            }
        }
        GossipKeyChange::Use { key_id } => {
            let at = position(keys, key_id).ok_or_else(|| {
                KeyChangeError::Refused(format!("no gossip key {key_id} is installed"))
            })?;
            let key = keys.remove(at);
            keys.insert(0, key);
        }
        GossipKeyChange::Remove { key_id } => match position(keys, key_id) {
            None => {}
            Some(0) => {
                return Err(KeyChangeError::Refused(format!(
                    "gossip key {key_id} is the primary key: use another key first"
                )))
            }
            Some(at) => {
                keys.remove(at);
            }
        },
    }
    Ok(())
}

impl KeyFileStore {
    /// The keys of `path`, used by `keyring` (which holds them already).
    pub fn new(path: PathBuf, keyring: Arc<Keyring>) -> Self {
        Self {
            inner: Arc::new(Inner {
                path,
                keyring,
                lock: Mutex::new(()),
            }),
        }
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The keys as the file has them now, by id.
    pub async fn current(&self) -> Result<GossipKeyIds, KeyChangeError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            crate::gossip_keys::load(&inner.path)
                .map(|k| ids(&k))
                .map_err(storage)
        })
        .await
        .map_err(storage)?
    }
}

impl Inner {
    fn apply(&self, change: &GossipKeyChange) -> Result<GossipKeyIds, KeyChangeError> {
        let _one = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut keys = crate::gossip_keys::load(&self.path).map_err(storage)?;
        change_keys(&mut keys, change)?;
        let mut text = Zeroizing::new(String::from(
            "# gossip keys, one base64 key a line, the first seals (changed by the control plane)\n",
        ));
        for k in &keys {
            text.push_str(&k.to_base64());
            text.push('\n');
        }
        crate::cluster_identity::write_private(&self.path, text.as_bytes())
            .map_err(|e| KeyChangeError::Storage(e.to_string()))?;
        self.keyring.replace(&keys).map_err(storage)?;
        Ok(ids(&keys))
    }
}

#[async_trait]
impl GossipKeyStore for KeyFileStore {
    async fn apply(&self, change: &GossipKeyChange) -> Result<GossipKeyIds, KeyChangeError> {
        let inner = Arc::clone(&self.inner);
        let change = change.clone();
        tokio::task::spawn_blocking(move || inner.apply(&change))
            .await
            .map_err(storage)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn store(dir: &Path, keys: &[&GossipKey]) -> KeyFileStore {
        let path = dir.join("gossip.keys");
        let text: String = keys
            .iter()
            .map(|k| format!("{}\n", *k.to_base64()))
            .collect();
        crate::cluster_identity::write_private(&path, text.as_bytes()).unwrap();
        let ring = crate::gossip_keys::keyring(&path).unwrap();
        KeyFileStore::new(path, Arc::new(ring))
    }

    #[tokio::test]
    async fn a_rotation_is_written_before_it_is_used_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (GossipKey::generate(), GossipKey::generate());
        let s = store(dir.path(), &[&old]);
        let install = GossipKeyChange::Install {
            key: new.to_base64().to_string(),
        };
        let after = s.apply(&install).await.unwrap();
        assert_eq!(after.primary, old.id().to_string());
        assert_eq!(s.inner.keyring.key_ids(), vec![old.id(), new.id()]);
        assert_eq!(s.apply(&install).await.unwrap(), after, "idempotent");
        let use_new = GossipKeyChange::Use {
            key_id: new.id().to_string(),
        };
        s.apply(&use_new).await.unwrap();
        let drop_old = GossipKeyChange::Remove {
            key_id: old.id().to_string(),
        };
        let done = s.apply(&drop_old).await.unwrap();
        assert_eq!(done.keys, vec![new.id().to_string()]);
        assert_eq!(s.inner.keyring.key_ids(), vec![new.id()]);
        assert_eq!(s.apply(&drop_old).await.unwrap(), done, "idempotent");
        // What a restart reads: the file, private.
        let reread = crate::gossip_keys::keyring(s.path()).unwrap();
        assert_eq!(reread.key_ids(), vec![new.id()]);
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(s.current().await.unwrap(), done);
    }

    #[tokio::test]
    async fn impossible_changes_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (GossipKey::generate(), GossipKey::generate());
        let s = store(dir.path(), &[&a]);
        let before = std::fs::read(s.path()).unwrap();
        let secret = "c2VjcmV0c2VjcmV0";
        for change in [
            GossipKeyChange::Install { key: secret.into() },
            GossipKeyChange::Use {
                key_id: b.id().to_string(),
            },
            GossipKeyChange::Remove {
                key_id: a.id().to_string(),
            },
        ] {
            let err = s.apply(&change).await.unwrap_err();
            assert!(matches!(err, KeyChangeError::Refused(_)), "{err}");
            assert!(!err.to_string().contains(secret), "{err}");
        }
        assert_eq!(std::fs::read(s.path()).unwrap(), before);
        assert_eq!(s.inner.keyring.key_ids(), vec![a.id()]);
    }
}
