//! The database's files at rest: the database and SQLite's files beside it
//! (`-wal`, `-shm`, `-journal`) are private to the daemon's user, mode 0600.

use std::path::{Path, PathBuf};

use orchestrator_shared_types::private_fs;

/// The files SQLite keeps beside the database `path`.
const SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Keeps the database and SQLite's files beside it private to this
/// process's user (mode 0600): files an older version left readable by
/// group or others are made private (and logged), and a new database is
/// created 0600 before SQLite opens it, which gives the `-wal` and `-shm`
/// files SQLite creates later the same mode.
pub(super) fn make_private(path: &Path) -> std::io::Result<()> {
    let sidecars = SIDECARS.map(|s| {
        let mut p = path.as_os_str().to_owned();
        p.push(s);
        PathBuf::from(p)
    });
    for p in std::iter::once(path).chain(sidecars.iter().map(PathBuf::as_path)) {
        if let Some(mode) = private_fs::tighten(p)? {
            tracing::warn!(path = %p.display(), was = %format!("{mode:04o}"),
                "state store: group and others could read this file; now only its owner can");
        }
    }
    // Created if absent (SQLite takes an empty file for an empty database).
    private_fs::open_append(path).map(drop)
}
