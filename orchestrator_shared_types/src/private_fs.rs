//! Data at rest on a node: what a daemon writes under its data directory is
//! its user's alone — directories 0700, files 0600 (SPEC §18).
//!
//! The modes are given explicitly where a path is made, never through the
//! process umask: a umask would also reach libcontainer and the containers'
//! own files, which keep the modes their images give them.
//!
//! - [`create_dir_all`]: a directory and its missing parents, each 0700.
//! - [`create`] and [`open_append`]: a file opened for writing, created 0600.
//! - [`write_atomic`]: a whole file replaced atomically and durably, 0600.
//! - [`tighten`]: group and other bits taken off an existing path (what an
//!   older daemon made 0755 or 0644).
//!
//! Unix only, like the node side of the orchestrator.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Mode of the directories a daemon makes.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files a daemon writes.
pub const FILE_MODE: u32 = 0o600;
/// The bits that let group and others in.
const OTHERS: u32 = 0o077;

/// Creates `path` and its missing parents, each new one with mode 0700
/// (existing ones keep theirs: see [`tighten`]).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Opens `path` for writing, truncated, with mode exactly 0600 (also when
/// it existed with another).
pub fn create(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    // A leftover file keeps its mode through `open`: set it.
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Opens `path` for appending, creating it 0600; an existing file readable
/// by group or others loses those bits.
pub fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & OTHERS != 0 {
        file.set_permissions(Permissions::from_mode(mode & 0o7777 & !OTHERS))?;
    }
    Ok(file)
}

/// Takes the group and other bits off `path` (following a symlink, as
/// `chmod` does). Returns its permission bits before, if they changed;
/// `None` when it was private already or does not exist.
pub fn tighten(path: &Path) -> io::Result<Option<u32>> {
    let mode = match fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if mode & OTHERS == 0 {
        return Ok(None);
    }
    fs::set_permissions(path, Permissions::from_mode(mode & !OTHERS))?;
    Ok(Some(mode))
}

/// Why [`write_atomic`] failed: what it was doing, and to which path.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}{}", path.display(), left_behind_note(left_behind.as_deref()))]
pub struct WriteError {
    /// What was being done (`creating`, `syncing`, …).
    pub what: &'static str,
    /// The path it was done to.
    pub path: PathBuf,
    /// The temporary file, when it could not be removed after the failure.
    pub left_behind: Option<PathBuf>,
    /// Why.
    #[source]
    pub source: io::Error,
}

fn left_behind_note(tmp: Option<&Path>) -> String {
    tmp.map(|t| format!(" (the temporary file {} is left behind)", t.display()))
        .unwrap_or_default()
}

impl From<WriteError> for io::Error {
    fn from(e: WriteError) -> Self {
        io::Error::new(e.source.kind(), e)
    }
}

/// Writes `bytes` as the file `path`, mode 0600: a temporary file beside it
/// (`.<name>.tmp`, 0600 from its creation), fsync, rename over `path`, fsync
/// of the directory. A reader sees the old or the new file, never a mix,
/// and a restart finds the new one. One writer per path at a time: the
/// temporary name is fixed, so a leftover of a crash is simply reused.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let failed = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| WriteError {
            what,
            path,
            left_behind: None,
            source,
        }
    };
    let result = (|| {
        let mut file = create(&tmp).map_err(failed("creating", &tmp))?;
        file.write_all(bytes).map_err(failed("writing", &tmp))?;
        file.sync_all().map_err(failed("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(failed("renaming a temporary file to", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(failed("syncing the directory", dir))
    })();
    result.map_err(|mut e| {
        match fs::remove_file(&tmp) {
            Err(r) if r.kind() != io::ErrorKind::NotFound => e.left_behind = Some(tmp),
            _ => {}
        }
        e
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_directories_are_0700_and_files_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let deep = root.join("a/b/c");
        create_dir_all(&deep).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&root.join(d)), 0o700, "{d}");
        }
        create(&deep.join("f")).unwrap();
        drop(open_append(&deep.join("g")).unwrap());
        write_atomic(&deep.join("h"), b"one").unwrap();
        for f in ["f", "g", "h"] {
            assert_eq!(mode(&deep.join(f)), 0o600, "{f}");
        }
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_nothing_beside_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let p = root.join("state.json");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, Permissions::from_mode(0o644)).unwrap();
        // A leftover of a crash, readable by all: reused, and private.
        fs::write(root.join(".state.json.tmp"), b"junk").unwrap();
        fs::set_permissions(root.join(".state.json.tmp"), Permissions::from_mode(0o666)).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(fs::read_dir(root).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_atomic_write_names_the_step_and_removes_its_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let p = root.join("taken");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("x"), b"x").unwrap();
        let e = write_atomic(&p, b"new").unwrap_err();
        assert_eq!(e.what, "renaming a temporary file to", "{e}");
        assert!(e.left_behind.is_none(), "{e}");
        assert!(!root.join(".taken.tmp").exists());
        let io: io::Error = e.into();
        assert!(io.to_string().contains("taken"), "{io}");
    }

    #[test]
    fn tighten_takes_off_group_and_other_bits_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let (d, f, ok) = (root.join("d"), root.join("f"), root.join("ok"));
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        fs::write(&f, b"").unwrap();
        fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        fs::write(&ok, b"").unwrap();
        fs::set_permissions(&ok, Permissions::from_mode(0o400)).unwrap();
        assert_eq!(tighten(&d).unwrap(), Some(0o755));
        assert_eq!(tighten(&f).unwrap(), Some(0o644));
        assert_eq!(tighten(&ok).unwrap(), None);
        assert_eq!(tighten(&root.join("absent")).unwrap(), None);
        assert_eq!((mode(&d), mode(&f), mode(&ok)), (0o700, 0o600, 0o400));
        fs::set_permissions(&f, Permissions::from_mode(0o640)).unwrap();
        drop(open_append(&f).unwrap());
        assert_eq!(mode(&f), 0o600, "appending tightens too");
    }
}
