//! Private directories and atomic, durable file writes.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::RngCore;

use crate::error::{io_err, Result};

/// Mode of files that hold secrets (or anything else we write).
pub(crate) const PRIVATE_FILE: u32 = 0o600;
/// Mode of world-readable files (the public key).
pub(crate) const PUBLIC_FILE: u32 = 0o644;

/// Creates `dir` (and missing parents) with mode 0700. With `tighten`, an existing
/// directory that is accessible to others is set to 0700.
pub(crate) fn ensure_private_dir(dir: &Path, tighten: bool) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) => {
            if tighten && meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(dir, Permissions::from_mode(0o700))
                    .map_err(io_err("setting mode 0700 on", dir))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err("creating directory", dir)),
        Err(e) => Err(io_err("reading metadata of", dir)(e)),
    }
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory
/// (created with `mode`, never readable by others meanwhile), fsync, rename over
/// `path`, fsync of the directory. A reader sees the old or the new file, never a
/// mix. The temporary name never ends in `.age`, so secret listings ignore it.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{:016x}", rand::rngs::OsRng.next_u64()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err("creating", &tmp))?;
        // The umask may have cleared bits of `mode`; set it exactly.
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(io_err("setting the mode of", &tmp))?;
        file.write_all(contents).map_err(io_err("writing", &tmp))?;
        file.sync_all().map_err(io_err("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("renaming a temporary file to", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing directory", dir))
    })();
    if result.is_err() {
        // Best effort: the write already failed and that error is what the caller
        // needs; a leftover temporary file holds no plaintext secret.
        if let Err(e) = fs::remove_file(&tmp) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %tmp.display(), error = %e, "could not remove temporary file");
            }
        }
    }
    result
}

/// Reads a file, `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f.age");
        write_atomic(&p, b"one", PRIVATE_FILE).unwrap();
        write_atomic(&p, b"two", PRIVATE_FILE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
