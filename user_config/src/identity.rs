//! The user's Ed25519 identity and its passphrase-encrypted storage.
//!
//! `identity/identity.age` holds the 32-byte Ed25519 seed encrypted with age's
//! passphrase (scrypt) recipient, ASCII-armored. `identity/public.key` holds the
//! public key as lowercase hex and a newline, so the key can be shown without the
//! passphrase. The seed is never written in plaintext: it is encrypted in memory and
//! only the ciphertext reaches the disk, atomically and with mode 0600.

use std::fmt;
use std::io::{Read, Write};
use std::iter;

use age::secrecy::{ExposeSecret, SecretString};
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::PublicKey;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{io_err, Error, Result};
use crate::fsutil::{self, PRIVATE_FILE, PUBLIC_FILE};
use crate::paths::ConfigDir;

/// Domain-separation string for the secret store's X25519 key (see `secrets`).
const SECRETS_KEY_DOMAIN: &[u8] = b"univrs/user_config/secrets/age-x25519/v1";

/// A user's Ed25519 key pair. Its private half is zeroized on drop and never printed.
#[derive(Clone)]
pub struct Identity {
    signing_key: SigningKey,
}

impl Identity {
    /// A fresh key pair from the operating system's random number generator.
    pub fn generate() -> Self {
        Self {
            signing_key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The key pair whose private key is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing_key: SigningKey::from_bytes(seed),
        }
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing_key.verifying_key().to_bytes())
    }

    /// The signing key, for signing requests and attestations.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// The age X25519 identity that encrypts this user's secrets: SHA-256 of a
    /// domain-separation string and the Ed25519 seed, as an `AGE-SECRET-KEY-1…` key.
    pub(crate) fn secrets_key(&self) -> Result<age::x25519::Identity> {
        let seed = Zeroizing::new(self.signing_key.to_bytes());
        let mut hasher = Sha256::new();
        hasher.update(SECRETS_KEY_DOMAIN);
        hasher.update(seed.as_slice());
        let derived = Zeroizing::new(<[u8; 32]>::from(hasher.finalize()));
        let problem = |p: String| Error::CorruptIdentity {
            what: "the derived secrets key".to_owned(),
            problem: p,
        };
        let hrp = bech32::Hrp::parse("age-secret-key-").map_err(|e| problem(e.to_string()))?;
        let encoded = Zeroizing::new(
            bech32::encode::<bech32::Bech32>(hrp, derived.as_slice())
                .map_err(|e| problem(e.to_string()))?
                .to_uppercase(),
        );
        encoded
            .parse::<age::x25519::Identity>()
            .map_err(|e| problem(e.to_owned()))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// Reads and writes the identity files of a [`ConfigDir`].
#[derive(Clone, Debug)]
pub struct IdentityStore {
    dir: ConfigDir,
    work_factor: Option<u8>,
}

impl IdentityStore {
    /// The identity store of `dir`.
    pub fn new(dir: &ConfigDir) -> Self {
        Self {
            dir: dir.clone(),
            work_factor: None,
        }
    }

    /// Encrypts with scrypt work factor `N = 2^log_n` instead of age's default (the
    /// factor that takes about one second on this machine). Lower factors are for
    /// tests only: they make a stolen identity file cheap to brute-force.
    pub fn with_work_factor(mut self, log_n: u8) -> Result<Self> {
        if !(1..=30).contains(&log_n) {
            return Err(Error::InvalidWorkFactor(log_n));
        }
        self.work_factor = Some(log_n);
        Ok(self)
    }

    /// Whether `identity/identity.age` exists.
    pub fn exists(&self) -> bool {
        self.dir.identity_file().exists()
    }

    /// Generates a new identity and stores it under `passphrase`. Refuses to
    /// overwrite an existing identity ([`Error::IdentityExists`]).
    pub fn create(&self, passphrase: &SecretString) -> Result<Identity> {
        self.refuse_overwrite()?;
        let identity = Identity::generate();
        self.save(&identity, passphrase, false)?;
        Ok(identity)
    }

    /// Stores `identity` under `passphrase`, replacing an existing one only when
    /// `overwrite` is set (key rotation, passphrase change).
    pub fn save(
        &self,
        identity: &Identity,
        passphrase: &SecretString,
        overwrite: bool,
    ) -> Result<()> {
        if !overwrite {
            self.refuse_overwrite()?;
        }
        if passphrase.expose_secret().is_empty() {
            return Err(Error::EmptyPassphrase);
        }
        let armored = self.encrypt_seed(identity, passphrase)?;
        self.write_files(&armored, &identity.public_key())
    }

    /// Decrypts the stored identity. A wrong passphrase gives
    /// [`Error::WrongPassphrase`]; a missing file [`Error::NoIdentity`]. Checks that
    /// `public.key` matches, and rewrites it if it is missing.
    pub fn load(&self, passphrase: &SecretString) -> Result<Identity> {
        let path = self.dir.identity_file();
        let text = fsutil::read_optional(&path)?
            .ok_or_else(|| Error::NoIdentity { path: path.clone() })?;
        let identity = decrypt_seed(&text, passphrase, &path.display().to_string())?;
        let pub_path = self.dir.public_key_file();
        let expected = identity.public_key().to_hex();
        match fsutil::read_optional(&pub_path)? {
            Some(found) if found.trim() == expected => {}
            Some(found) => {
                return Err(Error::PublicKeyMismatch {
                    path: pub_path,
                    expected,
                    found: found.trim().to_owned(),
                })
            }
            None => {
                fsutil::write_atomic(&pub_path, format!("{expected}\n").as_bytes(), PUBLIC_FILE)?
            }
        }
        Ok(identity)
    }

    /// The public key from `identity/public.key`, without the passphrase.
    pub fn public_key(&self) -> Result<PublicKey> {
        let path = self.dir.public_key_file();
        let Some(text) = fsutil::read_optional(&path)? else {
            if self.exists() {
                return Err(Error::CorruptIdentity {
                    what: path.display().to_string(),
                    problem: "the file is missing; unlocking the identity rewrites it".to_owned(),
                });
            }
            return Err(Error::NoIdentity {
                path: self.dir.identity_file(),
            });
        };
        text.trim()
            .parse()
            .map_err(
                |e: orchestrator_shared_types::ids::IdParseError| Error::CorruptIdentity {
                    what: path.display().to_string(),
                    problem: e.to_string(),
                },
            )
    }

    /// The stored, still-encrypted identity file (ASCII-armored age), for backup or
    /// moving to another machine.
    pub fn export_armored(&self) -> Result<String> {
        let path = self.dir.identity_file();
        fsutil::read_optional(&path)?.ok_or(Error::NoIdentity { path })
    }

    /// Stores an identity exported by [`IdentityStore::export_armored`] after checking
    /// that `passphrase` decrypts it to a valid seed. Refuses to overwrite an existing
    /// identity unless `force`.
    pub fn import_armored(
        &self,
        text: &str,
        passphrase: &SecretString,
        force: bool,
    ) -> Result<Identity> {
        if !force {
            self.refuse_overwrite()?;
        }
        let identity = decrypt_seed(text, passphrase, "the imported identity")?;
        let mut normalised = text.trim().to_owned();
        normalised.push('\n');
        self.write_files(&normalised, &identity.public_key())?;
        Ok(identity)
    }

    fn refuse_overwrite(&self) -> Result<()> {
        if self.exists() {
            return Err(Error::IdentityExists {
                path: self.dir.identity_file(),
            });
        }
        Ok(())
    }

    fn encrypt_seed(&self, identity: &Identity, passphrase: &SecretString) -> Result<String> {
        let mut recipient =
            age::scrypt::Recipient::new(SecretString::from(passphrase.expose_secret().to_owned()));
        if let Some(log_n) = self.work_factor {
            recipient.set_work_factor(log_n);
        }
        let seed = Zeroizing::new(identity.signing_key.to_bytes());
        let enc_err = |source| Error::Encrypt {
            what: "the identity".to_owned(),
            source: Box::new(source),
        };
        let encryptor =
            age::Encryptor::with_recipients(iter::once(&recipient as &dyn age::Recipient))
                .map_err(enc_err)?;
        let mut out = Vec::new();
        let armor =
            age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
                .map_err(|e| enc_err(e.into()))?;
        let mut writer = encryptor
            .wrap_output(armor)
            .map_err(|e| enc_err(e.into()))?;
        writer
            .write_all(seed.as_slice())
            .map_err(|e| enc_err(e.into()))?;
        writer
            .finish()
            .and_then(|armor| armor.finish())
            .map_err(|e| enc_err(e.into()))?;
        String::from_utf8(out).map_err(|e| Error::CorruptIdentity {
            what: "the armored identity".to_owned(),
            problem: e.to_string(),
        })
    }

    fn write_files(&self, armored: &str, public_key: &PublicKey) -> Result<()> {
        self.dir.ensure()?;
        // public.key first: a crash between the writes leaves no identity.age, so
        // `exists()` stays false and the next `create` rewrites both.
        fsutil::write_atomic(
            &self.dir.public_key_file(),
            format!("{}\n", public_key.to_hex()).as_bytes(),
            PUBLIC_FILE,
        )?;
        fsutil::write_atomic(&self.dir.identity_file(), armored.as_bytes(), PRIVATE_FILE)
    }
}

/// Decrypts an armored, passphrase-encrypted seed. `what` names it in errors.
fn decrypt_seed(text: &str, passphrase: &SecretString, what: &str) -> Result<Identity> {
    let corrupt = |problem: String| Error::CorruptIdentity {
        what: what.to_owned(),
        problem,
    };
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(text.as_bytes()))
        .map_err(|e| corrupt(e.to_string()))?;
    if !decryptor.is_scrypt() {
        return Err(corrupt("it is not encrypted with a passphrase".to_owned()));
    }
    let identity =
        age::scrypt::Identity::new(SecretString::from(passphrase.expose_secret().to_owned()));
    let mut reader = decryptor
        .decrypt(iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                Error::WrongPassphrase { path: what.into() }
            }
            source => Error::Decrypt {
                path: what.into(),
                source: Box::new(source),
            },
        })?;
    let mut seed = Zeroizing::new(Vec::with_capacity(32));
    reader
        .read_to_end(&mut seed)
        .map_err(io_err("decrypting", what))?;
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(seed.as_slice().try_into().map_err(|_| {
        corrupt(format!(
            "expected a 32-byte seed, found {} bytes",
            seed.len()
        ))
    })?);
    Ok(Identity::from_seed(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_private_key() {
        let id = Identity::generate();
        let shown = format!("{id:?}");
        assert!(!shown.contains(&hex::encode(id.signing_key().to_bytes())));
        assert!(shown.contains(&id.public_key().short()));
    }

    #[test]
    fn secrets_key_is_deterministic_and_distinct() {
        let a = Identity::from_seed(&[7; 32]);
        let b = Identity::from_seed(&[8; 32]);
        let ka = a.secrets_key().unwrap().to_public().to_string();
        assert_eq!(ka, a.secrets_key().unwrap().to_public().to_string());
        assert_ne!(ka, b.secrets_key().unwrap().to_public().to_string());
    }

    #[test]
    fn work_factor_is_checked() {
        let dir = ConfigDir::new("/nonexistent");
        assert!(matches!(
            IdentityStore::new(&dir).with_work_factor(0),
            Err(Error::InvalidWorkFactor(0))
        ));
        assert!(IdentityStore::new(&dir).with_work_factor(31).is_err());
    }
}
