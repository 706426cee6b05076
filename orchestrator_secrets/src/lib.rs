//! A user's secrets, sealed on the user's machine with [age] to the Ed25519
//! keys of the nodes the user trusts (and to the user's own key), and opened
//! by a node just before it starts a container (SPEC §15, §18).
//!
//! **Why age's `ssh-ed25519` recipients.** Every node's identity is an
//! Ed25519 key (its node id), and so is every user's. age's `ssh-ed25519`
//! recipient type takes such a key as it is: no second key to distribute, to
//! publish by gossip, or to trust. The ciphertext names each recipient only
//! by a 4-byte tag of its key, and anyone without one of the private keys
//! learns nothing of the value, including the control plane that stores it.
//!
//! - [`seal`]: encrypts a value to a list of keys (ASCII-armored).
//! - [`KeyIdentity`]: opens a sealed value with a node's or user's key.
//! - [`check_sealed`]: what a server checks of a sealed value it only
//!   stores (size, and that it is an age file), without opening it.
//!
//! Values are held in [`Zeroizing`] buffers once opened.
//!
//! [age]: https://age-encryption.org/v1

use std::io::{Read, Write};
use std::iter;

use ed25519_dalek::SigningKey;
use orchestrator_shared_types::PublicKey;
use zeroize::Zeroizing;

/// Largest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
/// Largest sealed (armored) value a server stores: the value plus one
/// stanza per recipient, base64-armored.
pub const MAX_SEALED_BYTES: usize = 256 * 1024;
/// Most recipients of one sealed value.
pub const MAX_RECIPIENTS: usize = 1024;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The value is larger than [`MAX_SECRET_BYTES`].
    #[error("the secret is {0} bytes, more than {MAX_SECRET_BYTES}")]
    TooLarge(usize),
    /// The sealed value is larger than [`MAX_SEALED_BYTES`].
    #[error("the sealed secret is more than {MAX_SEALED_BYTES} bytes")]
    SealedTooLarge,
    /// No recipient, or more than [`MAX_RECIPIENTS`].
    #[error("a secret needs 1 to {MAX_RECIPIENTS} recipients, not {0}")]
    Recipients(usize),
    /// The sealed value is not an armored age file.
    #[error("the sealed secret is not an age file: {0}")]
    NotAge(String),
    /// This key is not one of the recipients (or the value was altered).
    #[error("this key cannot open the secret: it was not sealed to it, or it was altered")]
    NotARecipient,
    /// Encryption failed.
    #[error("sealing the secret: {0}")]
    Seal(String),
}

/// The SSH wire form of an Ed25519 public key: `string "ssh-ed25519"`,
/// `string KEY`.
fn ssh_blob(key: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(51);
    for part in [&b"ssh-ed25519"[..], &key[..]] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    blob
}

/// The age recipient of `key`: the OpenSSH public key line of it.
fn recipient(key: &PublicKey) -> Result<age::ssh::Recipient, SecretError> {
    use base64::Engine as _;
    let line = format!(
        "ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(ssh_blob(&key.0))
    );
    line.parse()
        .map_err(|e| SecretError::Seal(format!("the key {key} is not an Ed25519 recipient: {e:?}")))
}

/// Seals `value` to each of `recipients` (Ed25519 public keys: nodes' ids,
/// the user's own key), ASCII-armored.
pub fn seal(value: &[u8], recipients: &[PublicKey]) -> Result<String, SecretError> {
    if value.len() > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge(value.len()));
    }
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        return Err(SecretError::Recipients(recipients.len()));
    }
    let recipients = recipients
        .iter()
        .map(recipient)
        .collect::<Result<Vec<_>, _>>()?;
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| SecretError::Seal(e.to_string()))?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(|e| SecretError::Seal(e.to_string()))?;
    let mut writer = encryptor
        .wrap_output(armor)
        .map_err(|e| SecretError::Seal(e.to_string()))?;
    writer
        .write_all(value)
        .and_then(|()| writer.finish())
        .and_then(|armor| armor.finish())
        .map_err(|e| SecretError::Seal(e.to_string()))?;
    String::from_utf8(out).map_err(|e| SecretError::Seal(e.to_string()))
}

/// `key` as an unencrypted OpenSSH private key (`openssh-key-v1`, cipher
/// and KDF `none`): the form age reads an `ssh-ed25519` identity from. It
/// exists only in memory, in a buffer wiped when dropped.
fn openssh_private_key(key: &SigningKey) -> Zeroizing<String> {
    use base64::Engine as _;
    fn string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let public = key.verifying_key().to_bytes();
    let blob = ssh_blob(&public);
    // The private section: two equal check words, the key, a comment, padding.
    let mut private = Zeroizing::new(Vec::with_capacity(160));
    private.extend_from_slice(&[0x75, 0x6e, 0x69, 0x76, 0x75, 0x6e, 0x69, 0x76]);
    string(&mut private, b"ssh-ed25519");
    string(&mut private, &public);
    let mut pair = Zeroizing::new([0u8; 64]);
    pair[..32].copy_from_slice(&key.to_bytes());
    pair[32..].copy_from_slice(&public);
    string(&mut private, &pair[..]);
    string(&mut private, b"");
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut body = Zeroizing::new(Vec::with_capacity(320));
    body.extend_from_slice(b"openssh-key-v1\0");
    string(&mut body, b"none");
    string(&mut body, b"none");
    string(&mut body, b"");
    body.extend_from_slice(&1u32.to_be_bytes());
    string(&mut body, &blob);
    string(&mut body, &private);
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&body[..]));
    let mut pem = Zeroizing::new(String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    for line in encoded.as_bytes().chunks(70) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    pem
}

/// A decryptor over `sealed`, after the size check.
fn decryptor(
    sealed: &str,
) -> Result<age::Decryptor<age::armor::ArmoredReader<std::io::BufReader<&[u8]>>>, SecretError> {
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(SecretError::SealedTooLarge);
    }
    age::Decryptor::new(age::armor::ArmoredReader::new(sealed.as_bytes()))
        .map_err(|e| SecretError::NotAge(e.to_string()))
}

/// Checks what a server that only stores `sealed` can: its size, and that
/// it is an armored age file sealed to public keys (not to a passphrase).
pub fn check_sealed(sealed: &str) -> Result<(), SecretError> {
    let d = decryptor(sealed)?;
    if d.is_scrypt() {
        return Err(SecretError::NotAge(
            "it is sealed to a passphrase, not to nodes' keys".to_owned(),
        ));
    }
    Ok(())
}

/// An Ed25519 key (a node's, or a user's) able to open what was sealed to it.
pub struct KeyIdentity(age::ssh::Identity);

impl KeyIdentity {
    /// The identity of `key`.
    pub fn new(key: &SigningKey) -> Result<Self, SecretError> {
        let pem = openssh_private_key(key);
        age::ssh::Identity::from_buffer(pem.as_bytes(), None)
            .map(Self)
            .map_err(|e| SecretError::Seal(format!("reading an Ed25519 key as age's: {e}")))
    }

    /// Opens `sealed`; fails unless it was sealed to this key and is intact.
    pub fn open(&self, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let d = decryptor(sealed)?;
        let mut reader = d
            .decrypt(iter::once(&self.0 as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => {
                    SecretError::NotARecipient
                }
                other => SecretError::NotAge(other.to_string()),
            })?;
        let mut value = Zeroizing::new(Vec::new());
        reader
            .by_ref()
            .take(MAX_SECRET_BYTES as u64 + 1)
            .read_to_end(&mut value)
            .map_err(|_| SecretError::NotARecipient)?;
        if value.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLarge(value.len()));
        }
        Ok(value)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
