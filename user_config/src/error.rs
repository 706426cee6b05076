//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading or writing a user's files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No config directory was given and none could be derived from the environment.
    #[error(
        "cannot find the config directory: pass --config-dir, or set UNIVRS_CONFIG_DIR, \
         XDG_CONFIG_HOME or HOME"
    )]
    NoConfigDir,

    /// A file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "reading".
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// `create` or `import` would overwrite an existing identity.
    #[error("an identity already exists at {}; refusing to overwrite it", path.display())]
    IdentityExists {
        /// The existing identity file.
        path: PathBuf,
    },

    /// There is no identity file yet.
    #[error("no identity at {}: create one first (ui init)", path.display())]
    NoIdentity {
        /// Where the identity file was expected.
        path: PathBuf,
    },

    /// The passphrase does not decrypt the identity.
    #[error("wrong passphrase for the identity at {}", path.display())]
    WrongPassphrase {
        /// The identity file.
        path: PathBuf,
    },

    /// An identity file (or imported text) is not a passphrase-encrypted 32-byte seed.
    #[error("{what} is not a univrs identity: {problem}")]
    CorruptIdentity {
        /// The file, or "the imported identity".
        what: String,
        /// What is wrong with it.
        problem: String,
    },

    /// `public.key` disagrees with the key derived from the decrypted identity.
    #[error(
        "{} holds public key {found} but the identity's public key is {expected}",
        path.display()
    )]
    PublicKeyMismatch {
        /// The `public.key` file.
        path: PathBuf,
        /// The key derived from the private key.
        expected: String,
        /// The text found in the file.
        found: String,
    },

    /// age refused to decrypt a file for a reason other than a wrong key.
    #[error("decrypting {}: {source}", path.display())]
    Decrypt {
        /// The encrypted file (or "-" for text given by the caller).
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<age::DecryptError>,
    },

    /// age failed to encrypt.
    #[error("encrypting {what}: {source}")]
    Encrypt {
        /// What was being encrypted.
        what: String,
        /// The cause.
        #[source]
        source: Box<age::EncryptError>,
    },

    /// A passphrase is empty where a new one is being set.
    #[error("the passphrase is empty: choose a non-empty passphrase")]
    EmptyPassphrase,

    /// The two entries of a new passphrase differ.
    #[error("the passphrases do not match")]
    PassphraseMismatch,

    /// No passphrase could be obtained without a terminal.
    #[error(
        "no passphrase: standard input is not a terminal and UNIVRS_PASSPHRASE is not set; \
         set UNIVRS_PASSPHRASE to the identity's passphrase"
    )]
    NoPassphrase,

    /// Reading a passphrase from the terminal failed.
    #[error("reading the passphrase from the terminal: {source}")]
    PassphrasePrompt {
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// An scrypt work factor outside the range age accepts.
    #[error("scrypt work factor {0} is outside 1..=30")]
    InvalidWorkFactor(u8),

    /// A config or policy file is malformed or holds an invalid value.
    #[error("{}", located(file, *line, field.as_deref(), problem))]
    Invalid {
        /// The file relative to the config directory, e.g. `policy/trust.toml`.
        file: String,
        /// The 1-based line of the offending key or value, when known.
        line: Option<usize>,
        /// The offending field, e.g. `min_reputation` or `trusted_operators[1]`.
        field: Option<String>,
        /// What is wrong.
        problem: String,
    },

    /// A value given through a setter (not read from a file) is invalid.
    #[error("{field}: {problem}")]
    InvalidValue {
        /// The field being set.
        field: String,
        /// What is wrong.
        problem: String,
    },

    /// A setting name that does not exist, e.g. in `LimitsPolicy::set`.
    #[error("unknown setting {key:?}: expected one of {expected}")]
    UnknownSetting {
        /// The name given.
        key: String,
        /// The accepted names, comma-separated.
        expected: &'static str,
    },

    /// A request would go past a limit of `policy/limits.toml`.
    #[error("policy/limits.toml: {limit} = {allowed}: {problem}")]
    LimitExceeded {
        /// The limit, e.g. `max_replicas`.
        limit: &'static str,
        /// Its value in the file.
        allowed: String,
        /// What the request would do.
        problem: String,
    },

    /// Serialising a config or policy file failed.
    #[error("serialising {file}: {source}")]
    Serialize {
        /// The file relative to the config directory.
        file: String,
        /// The cause.
        #[source]
        source: toml::ser::Error,
    },

    /// A secret name outside `[A-Za-z0-9_.-]{1,128}` (or `.`/`..`).
    #[error(
        "{name:?} is not a valid secret name: use 1 to 128 of A-Z a-z 0-9 _ . - (not . or ..)"
    )]
    InvalidSecretName {
        /// The name given.
        name: String,
    },

    /// `get` or `delete` of a secret that does not exist.
    #[error("no secret named {name:?}")]
    NoSuchSecret {
        /// The name given.
        name: String,
    },

    /// A secret file that this identity cannot decrypt.
    #[error(
        "secret {name:?} cannot be decrypted with this identity (was it stored under another \
         identity?)"
    )]
    SecretKeyMismatch {
        /// The secret's name.
        name: String,
    },
}

/// `file:line: field: problem`, leaving out the parts that are unknown.
fn located(file: &str, line: Option<usize>, field: Option<&str>, problem: &str) -> String {
    let mut out = file.to_owned();
    if let Some(line) = line {
        out.push_str(&format!(":{line}"));
    }
    out.push_str(": ");
    if let Some(field) = field {
        out.push_str(field);
        out.push_str(": ");
    }
    out.push_str(problem);
    out
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for [`Error::Io`].
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
