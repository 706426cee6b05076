//! The secret store, with an identity that never touches the disk (no scrypt cost).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use user_config::{ConfigDir, Error, Identity, SecretStore};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn put_get_list_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path().join("u"));
    let store = SecretStore::open(&dir, &Identity::generate()).unwrap();
    assert!(store.list().unwrap().is_empty());

    store.put("db.password", b"hunter2-hunter2").unwrap();
    store.put("API_KEY", b"k-123456789").unwrap();
    store.put("empty", b"").unwrap();
    assert_eq!(store.get("db.password").unwrap(), b"hunter2-hunter2");
    assert_eq!(store.get("empty").unwrap(), b"");
    assert_eq!(store.list().unwrap(), ["API_KEY", "db.password", "empty"]);
    assert_eq!(SecretStore::names(&dir).unwrap(), store.list().unwrap());

    store.put("API_KEY", b"k-rotated").unwrap();
    assert_eq!(store.get("API_KEY").unwrap(), b"k-rotated");

    let file = dir.secrets_dir().join("API_KEY.age");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(dir.secrets_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    store.delete("API_KEY").unwrap();
    assert!(matches!(
        store.get("API_KEY"),
        Err(Error::NoSuchSecret { .. })
    ));
    assert!(matches!(
        store.delete("API_KEY"),
        Err(Error::NoSuchSecret { .. })
    ));
    assert_eq!(store.list().unwrap(), ["db.password", "empty"]);
}

#[test]
fn plaintext_never_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path());
    let store = SecretStore::open(&dir, &Identity::generate()).unwrap();
    let value = b"plaintext-that-must-not-appear-on-disk";
    store.put("s", value).unwrap();
    for entry in fs::read_dir(dir.secrets_dir()).unwrap() {
        let bytes = fs::read(entry.unwrap().path()).unwrap();
        assert!(!contains(&bytes, value));
        assert!(!contains(&bytes, hex::encode(value).as_bytes()));
    }
    assert_eq!(store.get("s").unwrap(), value);
}

#[test]
fn another_identity_cannot_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path());
    SecretStore::open(&dir, &Identity::generate())
        .unwrap()
        .put("x", b"v")
        .unwrap();
    let other = SecretStore::open(&dir, &Identity::generate()).unwrap();
    let err = other.get("x").unwrap_err();
    assert!(matches!(err, Error::SecretKeyMismatch { .. }), "{err:?}");
}

#[test]
fn same_seed_reads_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path());
    let seed = [42u8; 32];
    SecretStore::open(&dir, &Identity::from_seed(&seed))
        .unwrap()
        .put("x", b"v")
        .unwrap();
    let again = SecretStore::open(&dir, &Identity::from_seed(&seed)).unwrap();
    assert_eq!(again.get("x").unwrap(), b"v");
}

#[test]
fn bad_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ConfigDir::new(tmp.path());
    let store = SecretStore::open(&dir, &Identity::generate()).unwrap();
    let long = "a".repeat(129);
    for bad in [
        "",
        "a/b",
        "../escape",
        "..",
        ".",
        "sp ace",
        "ünï",
        long.as_str(),
    ] {
        let err = store.put(bad, b"v").unwrap_err();
        assert!(
            matches!(err, Error::InvalidSecretName { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(matches!(
            store.get(bad),
            Err(Error::InvalidSecretName { .. })
        ));
        assert!(matches!(
            store.delete(bad),
            Err(Error::InvalidSecretName { .. })
        ));
    }
    assert!(!tmp.path().join("escape.age").exists());
    store.put(&"a".repeat(128), b"v").unwrap();
}
