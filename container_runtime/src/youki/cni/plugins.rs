//! Finding the CNI plugins.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{CniError, Result};

/// Where Debian's `containernetworking-plugins` installs the plugins.
pub const DEFAULT_BIN_DIR: &str = "/usr/lib/cni";

/// The plugins bridge networking runs.
pub const REQUIRED_PLUGINS: [&str; 5] = ["bridge", "host-local", "portmap", "firewall", "loopback"];

/// The path of `plugin` in `bin_dir`, if it is an executable file there.
pub fn find_plugin(bin_dir: &Path, plugin: &str) -> Option<PathBuf> {
    // A plugin type is a file name, never a path.
    if plugin.is_empty() || plugin.contains('/') || plugin == "." || plugin == ".." {
        return None;
    }
    let path = bin_dir.join(plugin);
    let meta = std::fs::metadata(&path).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(path)
}

/// Checks that every plugin of [`REQUIRED_PLUGINS`] is in `bin_dir`; the
/// error names those missing. For the daemon to call at start-up.
pub fn check_plugins(bin_dir: &Path) -> Result<()> {
    let missing: Vec<String> = REQUIRED_PLUGINS
        .iter()
        .filter(|p| find_plugin(bin_dir, p).is_none())
        .map(|p| (*p).to_owned())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CniError::PluginsMissing {
            dir: bin_dir.to_owned(),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_dir_misses_every_plugin_and_names_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = check_plugins(dir.path()).expect_err("nothing is there");
        let msg = err.to_string();
        for p in REQUIRED_PLUGINS {
            assert!(msg.contains(p), "{msg} names {p}");
        }
    }

    #[test]
    fn a_non_executable_file_is_not_a_plugin() {
        let dir = tempfile::tempdir().expect("tempdir");
        for p in REQUIRED_PLUGINS {
            let path = dir.path().join(p);
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            let mode = if p == "firewall" { 0o644 } else { 0o755 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        match check_plugins(dir.path()) {
            Err(CniError::PluginsMissing { missing, .. }) => assert_eq!(missing, ["firewall"]),
            other => panic!("expected firewall missing, got {other:?}"),
        }
        assert!(find_plugin(dir.path(), "../bridge").is_none());
    }
}
