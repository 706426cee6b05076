//! The tests' search of a disk for a value, byte by byte (shared by the
//! test trees of `container_runtime`, `orchestrator_daemon` and `ui_cli`
//! with `#[path]`): a secret must be in no file a test can read.

use std::path::{Path, PathBuf};

/// Files under `roots` holding `needle`, not descending into tmpfs mounts
/// (where a running container's secrets live), which are listed apart.
pub fn holding(roots: &[&Path], needle: &[u8]) -> (Vec<String>, Vec<String>) {
    let tmpfs = |p: &Path| {
        nix::sys::statfs::statfs(p)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
    };
    let (mut found, mut skipped) = (Vec::new(), Vec::new());
    let mut stack: Vec<PathBuf> = roots.iter().map(|p| p.to_path_buf()).collect();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            // A root on tmpfs (a test's own temporary directory) is searched.
            if tmpfs(&path) && !roots.contains(&path.as_path()) {
                skipped.push(path.display().to_string());
                continue;
            }
            for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                stack.push(entry.path());
            }
        } else if meta.is_file() {
            if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    (found, skipped)
}
