//! Identity storage: round trip, wrong passphrase, export/import, no plaintext key.
//!
//! age's scrypt costs about a second per operation at its default work factor, so
//! these tests use `with_work_factor(10)`; one test keeps the default to prove it.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a failed unwrap is a test failure

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;
use user_config::{
    ConfigDir, Error, ExposeSecret, Identity, IdentityStore, SecretStore, SecretString, UserConfig,
};

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn store(dir: &ConfigDir) -> IdentityStore {
    IdentityStore::new(dir).with_work_factor(10).unwrap()
}

fn all_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Fails if any file under `root` holds `secret` raw, as hex or as base64.
fn assert_nowhere(root: &Path, secret: &[u8]) {
    let b64 = [
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    ];
    let needles: Vec<Vec<u8>> = [
        secret.to_vec(),
        hex::encode(secret).into_bytes(),
        hex::encode_upper(secret).into_bytes(),
    ]
    .into_iter()
    .chain(b64.into_iter().map(String::into_bytes))
    .collect();
    let files = all_files(root);
    assert!(!files.is_empty());
    for file in files {
        let bytes = fs::read(&file).unwrap();
        for needle in &needles {
            assert!(
                !contains(&bytes, needle),
                "{} contains the secret ({})",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[test]
fn create_then_load_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path().join("univrs"));
    let ids = store(&dir);
    assert!(!ids.exists());
    let created = ids.create(&pw("correct horse")).unwrap();
    assert!(ids.exists());
    let loaded = ids.load(&pw("correct horse")).unwrap();
    assert_eq!(loaded.public_key(), created.public_key());
    assert_eq!(
        loaded.signing_key().to_bytes(),
        created.signing_key().to_bytes()
    );
    assert_eq!(ids.public_key().unwrap(), created.public_key());
    assert_eq!(
        fs::read_to_string(dir.public_key_file()).unwrap(),
        format!("{}\n", created.public_key().to_hex())
    );
    let armored = fs::read_to_string(dir.identity_file()).unwrap();
    assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));

    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.identity_file()), 0o600);
    assert_eq!(mode(&dir.identity_dir()), 0o700);
    assert_eq!(mode(dir.root()), 0o700);

    // Refuses to overwrite.
    let err = ids.create(&pw("other")).unwrap_err();
    assert!(matches!(err, Error::IdentityExists { .. }), "{err}");
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(
        ids.load(&pw("correct horse")).unwrap().public_key(),
        created.public_key()
    );
}

#[test]
fn wrong_passphrase_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path());
    let ids = store(&dir);
    ids.create(&pw("right")).unwrap();
    let err = ids.load(&pw("wrong")).unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");
    assert!(err.to_string().starts_with("wrong passphrase"), "{err}");
}

#[test]
fn missing_identity_and_empty_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path());
    let ids = store(&dir);
    assert!(matches!(ids.load(&pw("x")), Err(Error::NoIdentity { .. })));
    assert!(matches!(
        ids.export_armored(),
        Err(Error::NoIdentity { .. })
    ));
    assert!(matches!(ids.create(&pw("")), Err(Error::EmptyPassphrase)));
    assert!(!ids.exists());
}

#[test]
fn tampered_public_key_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path());
    let ids = store(&dir);
    ids.create(&pw("p")).unwrap();
    fs::write(dir.public_key_file(), format!("{}\n", "ab".repeat(32))).unwrap();
    assert!(matches!(
        ids.load(&pw("p")),
        Err(Error::PublicKeyMismatch { .. })
    ));
}

#[test]
fn export_then_import_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ConfigDir::new(tmp.path().join("a"));
    let b = ConfigDir::new(tmp.path().join("b"));
    let original = store(&a).create(&pw("pass")).unwrap();
    let exported = store(&a).export_armored().unwrap();
    assert!(exported.contains("BEGIN AGE ENCRYPTED FILE"));

    // A wrong passphrase is refused and writes nothing.
    let err = store(&b)
        .import_armored(&exported, &pw("nope"), false)
        .unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");
    assert!(!store(&b).exists());
    // Garbage is refused.
    assert!(matches!(
        store(&b).import_armored("not age", &pw("pass"), false),
        Err(Error::CorruptIdentity { .. })
    ));

    let imported = store(&b)
        .import_armored(&exported, &pw("pass"), false)
        .unwrap();
    assert_eq!(imported.public_key(), original.public_key());
    assert_eq!(store(&b).public_key().unwrap(), original.public_key());
    let loaded = store(&b).load(&pw("pass")).unwrap();
    assert_eq!(
        loaded.signing_key().to_bytes(),
        original.signing_key().to_bytes()
    );

    // An existing identity is kept unless forced.
    let other = ConfigDir::new(tmp.path().join("c"));
    let replaced = store(&other).create(&pw("pass")).unwrap();
    let err = store(&other)
        .import_armored(&exported, &pw("pass"), false)
        .unwrap_err();
    assert!(matches!(err, Error::IdentityExists { .. }), "{err:?}");
    assert_eq!(store(&other).public_key().unwrap(), replaced.public_key());
    store(&other)
        .import_armored(&exported, &pw("pass"), true)
        .unwrap();
    assert_eq!(store(&other).public_key().unwrap(), original.public_key());
}

#[test]
fn no_plaintext_key_or_secret_anywhere_under_the_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path().join("univrs"));
    let identity = store(&dir).create(&pw("pp")).unwrap();
    UserConfig::default().save(&dir).unwrap();
    let secrets = SecretStore::open(&dir, &identity).unwrap();
    let value = b"s3cr3t-database-password-0123456789";
    secrets.put("db", value).unwrap();
    assert_eq!(secrets.get("db").unwrap(), value);

    let seed = identity.signing_key().to_bytes();
    assert_nowhere(dir.root(), &seed);
    assert_nowhere(dir.root(), value);
    // Sanity check of the scanner itself: the public key *is* on disk.
    let public = identity.public_key();
    let found = all_files(dir.root())
        .iter()
        .any(|f| contains(&fs::read(f).unwrap(), public.to_hex().as_bytes()));
    assert!(found);
}

#[test]
fn rotation_with_rekeyed_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path());
    let ids = store(&dir);
    let old = ids.create(&pw("p")).unwrap();
    let secrets = SecretStore::open(&dir, &old).unwrap();
    secrets.put("a", b"alpha").unwrap();
    secrets.put("b", b"beta").unwrap();

    let new = Identity::generate();
    let rekeyed = secrets.rekey(&new).unwrap();
    ids.save(&new, &pw("p2"), true).unwrap();
    assert_eq!(ids.load(&pw("p2")).unwrap().public_key(), new.public_key());
    assert_eq!(rekeyed.get("a").unwrap(), b"alpha");
    assert_eq!(rekeyed.get("b").unwrap(), b"beta");
    assert!(matches!(
        secrets.get("a"),
        Err(Error::SecretKeyMismatch { .. })
    ));
}

#[test]
fn default_work_factor_round_trip() {
    // The one test paying age's default scrypt cost (~1 s per operation).
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path());
    let ids = IdentityStore::new(&dir);
    let created = ids.create(&pw("slow")).unwrap();
    let loaded = ids.load(&pw("slow")).unwrap();
    assert_eq!(loaded.public_key(), created.public_key());
    assert_eq!(pw("x").expose_secret(), "x");
}
