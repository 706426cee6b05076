//! A container's secrets on the node (SPEC §15, §18): opened with the node's
//! own key just before the process starts, and never written to the node's
//! disk.
//!
//! - **`secret_env`**: the values are held in memory ([`Zeroizing`]) by the
//!   container's executor, which the container's init — a fork of the daemon
//!   (see `worker`) — inherits; it sets them after the bundle's environment,
//!   just before `exec`. The bundle's `config.json` never holds them.
//! - **`secret_files`**: written to a tmpfs mounted for the container alone
//!   (`<container dir>/secrets`, mode 0700, `nosuid,nodev,noexec`), each
//!   file 0400 and owned by the container's user, and bound read-only at its
//!   path in the container. The tmpfs is unmounted, its memory freed, when
//!   the container is removed ([`unmount`]).
//!
//! Errors name the secret and the reason, never a value.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use container_runtime_interface::{secret_error, ContainerSpec, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use orchestrator_secrets::KeyIdentity;
use zeroize::Zeroizing;

use super::spec::VolumeBind;

/// The node's key, opening the secrets sealed to it.
#[derive(Clone)]
pub struct SecretKey(Arc<KeyIdentity>);

impl SecretKey {
    /// The opener of `key` (the node's signing key).
    pub fn new(key: &ed25519_dalek::SigningKey) -> std::result::Result<Self, String> {
        KeyIdentity::new(key)
            .map(|k| Self(Arc::new(k)))
            .map_err(|e| e.to_string())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A container's secrets, opened.
#[derive(Default)]
pub(super) struct Opened {
    /// `NAME=VALUE` pairs of `secret_env`: the name and the value, each
    /// NUL-terminated, for `setenv`.
    pub env: Vec<(Vec<u8>, Zeroizing<Vec<u8>>)>,
    /// `secret_files`: path in the container and content.
    pub files: Vec<(String, Zeroizing<Vec<u8>>)>,
}

/// Opens the secrets `spec` names with `key`.
pub(super) fn open(key: Option<&SecretKey>, spec: &ContainerSpec) -> Result<Opened> {
    let sealed = spec.sealed_secrets()?;
    if sealed.is_empty() {
        return Ok(Opened::default());
    }
    let Some(key) = key else {
        let name = sealed.keys().next().copied().unwrap_or_default();
        return Err(secret_error(
            spec,
            name,
            "this node has no key to open secrets with",
        ));
    };
    let mut values = std::collections::BTreeMap::new();
    for (name, text) in sealed {
        let value = key.0.open(text).map_err(|e| {
            secret_error(
                spec,
                name,
                format!("this node cannot open it ({e}); the owner can run `ui secret rewrap`"),
            )
        })?;
        values.insert(name, value);
    }
    let mut out = Opened::default();
    for s in &spec.config.secret_env {
        let value = &values[s.secret.as_str()];
        if value.contains(&0) || std::str::from_utf8(value).is_err() {
            return Err(secret_error(
                spec,
                &s.secret,
                format!(
                    "it cannot be the variable {}: it is not UTF-8 text without NUL bytes \
                     (use secret_files)",
                    s.name
                ),
            ));
        }
        let mut name = s.name.clone().into_bytes();
        name.push(0);
        let mut v = Zeroizing::new(Vec::with_capacity(value.len() + 1));
        v.extend_from_slice(value);
        v.push(0);
        out.env.push((name, v));
    }
    for f in &spec.config.secret_files {
        let value = &values[f.secret.as_str()];
        out.files
            .push((f.path.clone(), Zeroizing::new(value.to_vec())));
    }
    Ok(out)
}

fn secrets_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("secrets")
}

/// Whether `path` is on a tmpfs.
pub(super) fn on_tmpfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

/// Mounts the container's secrets tmpfs in `container_dir`, writes `files`
/// to it owned by `uid:gid`, and returns their binds (on a blocking thread).
pub(super) fn write_files(
    container_dir: &Path,
    files: &[(String, Zeroizing<Vec<u8>>)],
    uid: u32,
    gid: u32,
) -> std::result::Result<Vec<VolumeBind>, String> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let dir = secrets_dir(container_dir);
    orchestrator_shared_types::private_fs::create_dir_all(&dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // Room for each file, rounded up to pages, and 64 KiB to spare.
    let size: usize = files
        .iter()
        .map(|(_, v)| v.len().div_ceil(4096) * 4096 + 4096)
        .sum();
    let options = format!("mode=0700,size={}", size + (64 << 10));
    mount(
        Some("tmpfs"),
        &dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(options.as_str()),
    )
    .map_err(|e| format!("mounting the secrets tmpfs at {}: {e}", dir.display()))?;
    if !on_tmpfs(&dir) {
        return Err(format!(
            "{} is not a tmpfs after mounting one",
            dir.display()
        ));
    }
    let mut binds = Vec::with_capacity(files.len());
    for (i, (path, value)) in files.iter().enumerate() {
        let source = dir.join(i.to_string());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&source)
            .map_err(|e| format!("creating {}: {e}", source.display()))?;
        file.write_all(value)
            .map_err(|e| format!("writing the secret file for {path}: {e}"))?;
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
            .map_err(|e| format!("giving the secret file for {path} to {uid}:{gid}: {e}"))?;
        binds.push(VolumeBind {
            source,
            destination: path.clone(),
            read_only: true,
        });
    }
    Ok(binds)
}

/// Unmounts the container's secrets tmpfs, if it has one: its files are
/// gone with it.
pub(super) fn unmount(container_dir: &Path) -> std::io::Result<()> {
    match umount2(&secrets_dir(container_dir), MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point; ENOENT: no such directory.
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)),
    }
}
