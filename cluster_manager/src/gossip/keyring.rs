//! The gossip [`Keyring`] and the sealed packet format.
//!
//! Every gossip datagram is sealed with XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`, the AEAD `age` already brings into the build):
//!
//! ```text
//! version (1 byte, = 1) | key id (4) | nonce (24, random) | ciphertext | tag (16)
//! ```
//!
//! The associated data is the version, the key id and the cluster id, so a
//! packet opens only under the key and in the cluster it was sealed for. The
//! 24-byte nonce is drawn at random for every packet: at that length random
//! nonces do not collide in any realistic number of packets (unlike the
//! 12-byte nonce of plain ChaCha20-Poly1305). Replays are not detected here:
//! chitchat's messages are idempotent (a replayed digest or delta changes
//! nothing that a newer one has not already superseded).
//!
//! A key id is the first 4 bytes of SHA-256 over a domain tag and the key: it
//! names a key in logs and headers without revealing it.
//!
//! The keyring seals with its primary key and opens with any installed key,
//! so a key rotates without a restart: install the new key on every node,
//! make it primary everywhere, then remove the old one.

use std::fmt;
use std::sync::{PoisonError, RwLock};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::transport::DropReason;

/// Length of a gossip key in bytes.
pub const KEY_LEN: usize = 32;
/// Version byte of the sealed packet format.
pub const SEAL_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// Bytes a sealed packet adds to the plaintext.
pub const SEAL_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// The short public name of a gossip key (4 bytes of a hash of it), shown as
/// 8 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Errors of building or changing a [`Keyring`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyringError {
    /// A key is not base64 (the key itself is never quoted).
    #[error("gossip key on line {line} is not valid base64")]
    NotBase64 {
        /// 1-based line of the key file (or position in the list).
        line: usize,
    },
    /// A key does not decode to 32 bytes.
    #[error("gossip key on line {line} is {len} bytes, not {KEY_LEN}")]
    BadLength {
        /// 1-based line of the key file (or position in the list).
        line: usize,
        /// Decoded length.
        len: usize,
    },
    /// The keyring would hold no key.
    #[error("the gossip keyring holds no key")]
    Empty,
    /// No installed key has this id.
    #[error("no gossip key {0} is installed")]
    UnknownKey(KeyId),
    /// The primary key cannot be removed.
    #[error("gossip key {0} is the primary key: make another key primary before removing it")]
    RemovingPrimary(KeyId),
    /// Two different keys with the same id (practically impossible).
    #[error("two gossip keys share the id {0}")]
    DuplicateId(KeyId),
}

/// One 32-byte gossip key. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct GossipKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl GossipKey {
    /// A fresh random key (from the operating system's generator).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Self { bytes }
    }

    /// The key of 32 raw bytes.
    pub fn from_bytes(raw: [u8; KEY_LEN]) -> Self {
        Self {
            bytes: Zeroizing::new(raw),
        }
    }

    /// Parses standard base64 (surrounding white space ignored); `line`
    /// only labels errors.
    pub fn from_base64(text: &str, line: usize) -> Result<Self, KeyringError> {
        let decoded = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| KeyringError::NotBase64 { line })?,
        );
        let raw: [u8; KEY_LEN] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| KeyringError::BadLength {
                    line,
                    len: decoded.len(),
                })?;
        Ok(Self::from_bytes(raw))
    }

    /// The key as standard base64, the form of key files (a secret: never log it).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes.as_ref()))
    }

    /// The key's public name.
    pub fn id(&self) -> KeyId {
        let mut h = Sha256::new();
        h.update(b"univrs gossip key id v1\0");
        h.update(self.bytes.as_ref());
        let digest = h.finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        KeyId(id)
    }
}

impl fmt::Debug for GossipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GossipKey")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// Parses a key file: one base64 key per line, the first primary; blank
/// lines and lines starting with `#` are skipped.
pub fn parse_key_file(text: &str) -> Result<Vec<GossipKey>, KeyringError> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(GossipKey::from_base64(line, i + 1)?);
    }
    if keys.is_empty() {
        return Err(KeyringError::Empty);
    }
    Ok(keys)
}

/// chitchat's magic number (45139, little-endian) opens every plain packet.
const CHITCHAT_MAGIC: [u8; 2] = 45_139u16.to_le_bytes();

struct Installed {
    id: KeyId,
    cipher: XChaCha20Poly1305,
}

struct Keys {
    /// Installed keys; the first is the primary.
    keys: Vec<Installed>,
}

/// What [`Keyring::replace`] changed, by key id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyringChange {
    /// Keys newly installed.
    pub added: Vec<KeyId>,
    /// Keys no longer installed.
    pub removed: Vec<KeyId>,
    /// The new primary, if it changed.
    pub new_primary: Option<KeyId>,
}

impl KeyringChange {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.new_primary.is_none()
    }
}

/// The gossip keys of a node: one primary that seals, every installed key
/// opens. Shared (`Arc`) between the gossip transport and whoever rotates
/// keys; changes apply to the next packet. `Debug` lists key ids only.
pub struct Keyring {
    inner: RwLock<Keys>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary())
            .field("keys", &self.key_ids())
            .finish()
    }
}

fn install(key: &GossipKey) -> Installed {
    Installed {
        id: key.id(),
        cipher: XChaCha20Poly1305::new(key.bytes.as_ref().into()),
    }
}

fn build(keys: &[GossipKey]) -> Result<Keys, KeyringError> {
    if keys.is_empty() {
        return Err(KeyringError::Empty);
    }
    let mut out: Vec<Installed> = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let id = key.id();
        match keys[..i].iter().find(|k| k.id() == id) {
            // The same key listed twice: keep one.
            Some(k) if k.bytes.as_ref() == key.bytes.as_ref() => {}
            Some(_) => return Err(KeyringError::DuplicateId(id)),
            None => out.push(install(key)),
        }
    }
    Ok(Keys { keys: out })
}

fn aad(version: u8, id: KeyId, cluster_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + KEY_ID_LEN + cluster_id.len());
    aad.push(version);
    aad.extend_from_slice(&id.0);
    aad.extend_from_slice(cluster_id.as_bytes());
    aad
}

impl Keyring {
    /// A keyring of `keys`, the first primary. Fails if `keys` is empty.
    pub fn new(keys: &[GossipKey]) -> Result<Self, KeyringError> {
        Ok(Self {
            inner: RwLock::new(build(keys)?),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        // Every change replaces the key list in one assignment, so a
        // poisoned lock still holds a whole keyring.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of the key that seals.
    pub fn primary(&self) -> KeyId {
        // A keyring is never empty: every change checks it.
        self.read().keys.first().map_or(KeyId([0; 4]), |k| k.id)
    }

    /// The ids of every installed key, the primary first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.read().keys.iter().map(|k| k.id).collect()
    }

    /// Installs `key` to open packets (not to seal); nothing if installed.
    pub fn install(&self, key: &GossipKey) -> Result<(), KeyringError> {
        let id = key.id();
        let mut keys = self.write();
        if keys.keys.iter().any(|k| k.id == id) {
            return Ok(());
        }
        keys.keys.push(install(key));
        Ok(())
    }

    /// Makes the installed key `id` the one that seals.
    pub fn set_primary(&self, id: KeyId) -> Result<(), KeyringError> {
        let mut keys = self.write();
        let at = keys
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or(KeyringError::UnknownKey(id))?;
        let k = keys.keys.remove(at);
        keys.keys.insert(0, k);
        Ok(())
    }

    /// Removes the key `id`; packets sealed with it are dropped from now on.
    /// The primary cannot be removed.
    pub fn remove(&self, id: KeyId) -> Result<(), KeyringError> {
        let mut keys = self.write();
        let at = keys
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or(KeyringError::UnknownKey(id))?;
        if at == 0 {
            return Err(KeyringError::RemovingPrimary(id));
        }
        keys.keys.remove(at);
        Ok(())
    }

    /// Replaces every key by `keys` (the first primary), as after re-reading
    /// a key file, and says what changed. On error nothing changes.
    pub fn replace(&self, keys: &[GossipKey]) -> Result<KeyringChange, KeyringError> {
        let new = build(keys)?;
        let mut current = self.write();
        let old: Vec<KeyId> = current.keys.iter().map(|k| k.id).collect();
        let now: Vec<KeyId> = new.keys.iter().map(|k| k.id).collect();
        let change = KeyringChange {
            added: now.iter().filter(|id| !old.contains(id)).copied().collect(),
            removed: old.iter().filter(|id| !now.contains(id)).copied().collect(),
            new_primary: (old.first() != now.first()).then(|| now[0]),
        };
        *current = new;
        Ok(change)
    }

    /// Seals `plain` for `cluster_id` with the primary key.
    pub fn seal(&self, cluster_id: &str, plain: &[u8]) -> Vec<u8> {
        let keys = self.read();
        let Some(primary) = keys.keys.first() else {
            return Vec::new();
        };
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(SEAL_VERSION, primary.id, cluster_id);
        let mut out = Vec::with_capacity(plain.len() + SEAL_OVERHEAD);
        out.push(SEAL_VERSION);
        out.extend_from_slice(&primary.id.0);
        out.extend_from_slice(&nonce);
        // Encryption cannot fail for a message under the AEAD's length limit
        // (2^38 bytes); a datagram is at most 64 KiB.
        if let Ok(ct) = primary.cipher.encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad,
            },
        ) {
            out.extend_from_slice(&ct);
        }
        out
    }

    /// Opens a packet sealed by [`seal`](Self::seal) for `cluster_id`.
    pub fn open(&self, cluster_id: &str, packet: &[u8]) -> Result<Vec<u8>, DropReason> {
        if packet.starts_with(&CHITCHAT_MAGIC) {
            return Err(DropReason::Unsealed);
        }
        if packet.len() < SEAL_OVERHEAD {
            return Err(DropReason::Truncated);
        }
        if packet[0] != SEAL_VERSION {
            return Err(DropReason::BadVersion);
        }
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&packet[1..1 + KEY_ID_LEN]);
        let id = KeyId(id);
        let keys = self.read();
        let key = keys
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(DropReason::UnknownKey)?;
        let nonce = XNonce::from_slice(&packet[1 + KEY_ID_LEN..HEADER_LEN]);
        key.cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &packet[HEADER_LEN..],
                    aad: &aad(SEAL_VERSION, id, cluster_id),
                },
            )
            .map_err(|_| DropReason::AuthFailed)
    }
}

#[cfg(test)]
#[path = "keyring_tests.rs"]
mod tests;
