//! Data at rest (SPEC §18): the runtime's directories are 0700 and the
//! files it writes 0600, so that only the daemon's user reaches a
//! container's bundle (`config.json` holds its environment), its record,
//! its logs, or the image store.
//!
//! What the containers see keeps its own modes: an image's unpacked root
//! filesystem, a container's `rootfs/`, `upper/` and `work/` (the overlay's
//! root takes the mode of `upper/`, so a container running as another user
//! must be able to enter it), and `resolv.conf`, bind-mounted into a bridged
//! container for whatever user it runs as. The private directories above
//! them are what keep other users of the node out: nothing in an image can
//! be run from outside.
//!
//! At start, [`prepare`] makes private the directories, and the files of the
//! containers, that an older version left 0755 and 0644, and logs each.

use std::io;
use std::path::Path;

use orchestrator_shared_types::private_fs;
use tracing::warn;

use super::logs;

/// The files of a container directory that only the daemon reads.
const CONTAINER_FILES: [&str; 2] = ["record.json", "config.json"];

/// Creates `dirs` (0700) or makes them private, then does the same for
/// each container directory under `containers` and its files.
pub(super) fn prepare(dirs: &[&Path], containers: &Path) -> io::Result<()> {
    for d in dirs {
        private_fs::create_dir_all(d)?;
        tighten_logged(d)?;
    }
    for entry in std::fs::read_dir(containers)? {
        let dir = entry?.path();
        if !dir.is_dir() {
            continue;
        }
        tighten_logged(&dir)?;
        let logs = logs::files(&dir);
        for f in CONTAINER_FILES.iter().map(|f| dir.join(f)).chain(logs) {
            tighten_logged(&f)?;
        }
    }
    Ok(())
}

/// [`private_fs::tighten`], logging a change.
pub(super) fn tighten_logged(path: &Path) -> io::Result<()> {
    if let Some(mode) = private_fs::tighten(path)? {
        warn!(
            path = %path.display(),
            was = %format!("{mode:04o}"),
            "data at rest: group and others could reach this; now only the daemon's user can"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    fn set(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    }

    #[test]
    fn an_older_runtime_directory_is_made_private_but_what_containers_see_is_not() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("runtime");
        let containers = data.join("containers");
        let c = containers.join("u-1");
        for d in [&data, &containers, &c, &c.join("upper"), &c.join("rootfs")] {
            std::fs::create_dir_all(d).expect("mkdir");
            set(d, 0o755);
        }
        for (f, m) in [
            ("config.json", 0o644),
            ("record.json", 0o644),
            ("stdout.log", 0o640),
            ("stderr.log.1", 0o640),
            ("resolv.conf", 0o644),
            ("rootfs/etc-passwd", 0o644),
        ] {
            std::fs::write(c.join(f), b"").expect("write");
            set(&c.join(f), m);
        }
        let images = data.join("images");
        prepare(&[&data, &containers, &images], &containers).expect("prepare");
        for d in [&data, &containers, &c, &images] {
            assert_eq!(mode(d), 0o700, "{}", d.display());
        }
        for f in ["config.json", "record.json", "stdout.log", "stderr.log.1"] {
            assert_eq!(mode(&c.join(f)), 0o600, "{f}");
        }
        // The container's own: its root, what is mounted into it.
        for (p, m) in [
            ("upper", 0o755),
            ("rootfs", 0o755),
            ("resolv.conf", 0o644),
            ("rootfs/etc-passwd", 0o644),
        ] {
            assert_eq!(mode(&c.join(p)), m, "{p}");
        }
    }
}
