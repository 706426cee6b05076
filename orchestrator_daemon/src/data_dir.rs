//! The data directory at rest: it and everything the daemon puts in it
//! belong to the daemon's user alone — directories 0700, files 0600 (SPEC
//! §18; the modes are set where each part is written, through
//! `orchestrator_shared_types::private_fs`).
//!
//! A data directory made by an older daemon has 0755 directories and 0644
//! files. At start [`prepare`] makes the directory itself 0700, which alone
//! puts everything below out of reach of other users, and takes the group
//! and other bits off the files the daemon keeps at its top; each change is
//! logged. The container runtime does the same for its own directories
//! (`runtime/`). Unpacked images keep the modes inside their root
//! filesystems: the private directories above them are what keep other users
//! out (nothing in them can be run from outside).
//!
//! The gossip key file is not among them: a key file readable by others is
//! refused, not repaired ([`crate::gossip_keys`]), since its key may have
//! leaked.

use std::path::Path;

use orchestrator_shared_types::private_fs;
use tracing::warn;

use crate::cluster_identity::IDENTITY_FILE;
use crate::error::{Error, Result};
use crate::node_key::NODE_KEY_FILE;
use crate::run::{DATABASE_FILE, TERM_FILE};

/// SQLite's files beside the database (`state.db-wal`, …).
const DATABASE_SIDECARS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The files at the top of the data directory that [`prepare`] makes private.
fn known_files() -> Vec<String> {
    let mut files: Vec<String> = [
        NODE_KEY_FILE,
        IDENTITY_FILE,
        TERM_FILE,
        orchestrator_audit::AUDIT_FILE,
        DATABASE_FILE,
    ]
    .map(str::to_owned)
    .into();
    files.extend(DATABASE_SIDECARS.map(|s| format!("{DATABASE_FILE}{s}")));
    files
}

/// Creates the data directory `dir` (0700, with its missing parents), or
/// makes an existing one and its known files private, logging what changed.
pub fn prepare(dir: &Path) -> Result<()> {
    let failed = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| Error::DataDir { what, path, source }
    };
    if !dir.exists() {
        return private_fs::create_dir_all(dir).map_err(failed("creating data directory", dir));
    }
    let mut paths = vec![dir.to_owned()];
    paths.extend(known_files().iter().map(|f| dir.join(f)));
    for path in paths {
        let before =
            private_fs::tighten(&path).map_err(failed("making private (chmod go-rwx)", &path))?;
        if let Some(mode) = before {
            warn!(
                path = %path.display(),
                was = %format!("{mode:04o}"),
                now = %format!("{:04o}", mode & !0o077),
                "data at rest: group and others could reach this; now only the daemon's user can"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_data_directory_is_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/data");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn an_older_data_directory_is_made_private_and_other_files_are_left() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        set(&dir, 0o755);
        for f in [NODE_KEY_FILE, "state.db-wal", "notes.txt", "gossip.keys"] {
            std::fs::write(dir.join(f), b"").unwrap();
            set(&dir.join(f), 0o644);
        }
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(NODE_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.join("state.db-wal")), 0o600);
        // Not ours to change: out of reach behind the directory anyway, and
        // a readable key file is refused where it is read.
        assert_eq!(mode(&dir.join("notes.txt")), 0o644);
        assert_eq!(mode(&dir.join("gossip.keys")), 0o644);
    }
}
