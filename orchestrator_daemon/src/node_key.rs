//! The node's Ed25519 key: generated on first start, kept in the data
//! directory (mode 0600), and the source of the node's id.

use std::path::Path;

use ed25519_dalek::SigningKey;
use orchestrator_shared_types::{private_fs, NodeId};

use crate::error::{Error, Result};

/// File name of the key inside the data directory.
pub const NODE_KEY_FILE: &str = "node.key";

/// The key at `dir/node.key`; `None` if there is none (nothing is created).
pub fn load(dir: &Path) -> Result<Option<SigningKey>> {
    let path = dir.join(NODE_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| Error::BadNodeKey {
                path: path.clone(),
                len: b.len(),
            })?;
            Ok(Some(SigningKey::from_bytes(&seed)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::DataDir {
            what: "reading node key",
            path,
            source,
        }),
    }
}

/// Loads the key at `dir/node.key`, creating it if absent.
pub fn load_or_create(dir: &Path) -> Result<SigningKey> {
    let path = dir.join(NODE_KEY_FILE);
    match load(dir)? {
        Some(key) => Ok(key),
        None => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let seed = zeroize::Zeroizing::new(key.to_bytes());
            private_fs::write_atomic(&path, seed.as_slice()).map_err(|e| Error::DataDir {
                what: "writing node key",
                path: path.clone(),
                source: e.into(),
            })?;
            Ok(key)
        }
    }
}

/// Creates the data directory `dir` if needed (mode 0700; an existing one
/// is made private: [`crate::data_dir::prepare`]), then loads or creates its
/// key ([`load_or_create`]).
pub fn open(dir: &Path) -> Result<SigningKey> {
    crate::data_dir::prepare(dir)?;
    load_or_create(dir)
}

/// The node id of `key`.
pub fn node_id(key: &SigningKey) -> NodeId {
    NodeId(key.verifying_key().to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn the_key_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(node_id(&a), node_id(&b));
        let mode = std::fs::metadata(dir.path().join(NODE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn load_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        assert!(!dir.path().join(NODE_KEY_FILE).exists());
        let key = load_or_create(dir.path()).unwrap();
        let loaded = load(dir.path()).unwrap().expect("the key made");
        assert_eq!(node_id(&loaded), node_id(&key));
    }

    #[test]
    fn open_creates_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        let key = open(&data).unwrap();
        assert_eq!(node_id(&load_or_create(&data).unwrap()), node_id(&key));
    }

    #[test]
    fn a_damaged_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NODE_KEY_FILE), b"short").unwrap();
        let e = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("expected a 32-byte key"), "{e}");
    }
}
