//! Volumes on this node (SPEC §9): each an ext4 file system in an image file
//! of its size, so that the kernel enforces the size (a write past it fails
//! with `ENOSPC`, "No space left on device"):
//!
//! ```text
//! volumes/<owner hex>/<name>.img   the image, its blocks allocated up front
//! volumes/<owner hex>/<name>/      where it is mounted (loop device), 0700
//! ```
//!
//! A volume is made (`fallocate`, `mkfs.ext4`) by the first container that
//! mounts it and mounted on the node (`mount -o loop`, whose loop device is
//! freed by the unmount); each container binds that mount at its
//! `mount_path`. A mount a restart of the node lost is made again on the
//! next use. Deleting a volume unmounts it, overwrites the image with zeros,
//! syncs and unlinks it. The tools are Debian's e2fsprogs and util-linux,
//! run as commands.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use container_runtime_interface::{Result, RuntimeError, VolumeAttachment, VolumeRef};
use orchestrator_shared_types::private_fs;
use tracing::info;

use super::entry::lock;
use super::YoukiRuntime;

/// The volumes of one node, under one directory.
pub(super) struct Volumes {
    root: PathBuf,
    /// One change (make, mount, wipe) at a time.
    changes: tokio::sync::Mutex<()>,
}

fn volume_error(v: &VolumeRef, reason: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Volume {
        volume: v.to_string(),
        reason: reason.to_string(),
    }
}

/// Runs `program` with `args`; its stderr is the error.
fn run(program: &str, args: &[&str]) -> std::result::Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program}: {e} (is it installed?)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {} ({})",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        ))
    }
}

/// Whether something is mounted at `dir` (its device differs from its parent's).
fn is_mounted(dir: &Path) -> bool {
    let (Ok(d), Some(Ok(p))) = (dir.metadata(), dir.parent().map(Path::metadata)) else {
        return false;
    };
    d.dev() != p.dev()
}

/// Makes the image of `size` bytes at `img` with an ext4 file system whose
/// root belongs to `uid:gid`, through a temporary file so that a crash
/// leaves no half-made image.
fn make_image(img: &Path, size: u64, uid: u32, gid: u32) -> std::result::Result<(), String> {
    let tmp = img.with_extension("img.new");
    let file = private_fs::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let len = i64::try_from(size).map_err(|_| format!("{size} bytes is too large"))?;
    nix::fcntl::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, len)
        .map_err(|e| format!("allocating {size} bytes for {}: {e}", tmp.display()))?;
    drop(file);
    let tmp_s = tmp.to_string_lossy();
    let owner = format!("root_owner={uid}:{gid}");
    run("mkfs.ext4", &["-q", "-F", "-m", "0", "-E", &owner, &tmp_s])?;
    std::fs::rename(&tmp, img).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

/// Overwrites `img` with zeros, syncs it, and unlinks it.
fn wipe_image(img: &Path) -> std::result::Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .map_err(|e| format!("opening {}: {e}", img.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("reading {}: {e}", img.display()))?
        .len();
    let zeros = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])
            .map_err(|e| format!("overwriting {}: {e}", img.display()))?;
        left -= n as u64;
    }
    file.sync_all()
        .map_err(|e| format!("syncing {}: {e}", img.display()))?;
    drop(file);
    std::fs::remove_file(img).map_err(|e| format!("removing {}: {e}", img.display()))
}

impl Volumes {
    /// Volumes under `root` (made private by the runtime).
    pub(super) fn new(root: PathBuf) -> Self {
        Self {
            root,
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// The image file and the mount point of `v`.
    pub(super) fn paths(&self, v: &VolumeRef) -> (PathBuf, PathBuf) {
        let dir = self.root.join(v.owner.to_hex());
        (dir.join(format!("{}.img", v.name)), dir.join(&v.name))
    }

    /// Makes `a`'s volume if it is new (its root owned by `uid:gid`) and
    /// mounts it on the node if it is not; returns where it is mounted.
    pub(super) async fn ensure(&self, a: &VolumeAttachment, uid: u32, gid: u32) -> Result<PathBuf> {
        let v = &a.volume;
        if !orchestrator_shared_types::validation::is_dns_label(&v.name) {
            return Err(volume_error(v, "not a volume name"));
        }
        let _one = self.changes.lock().await;
        let (img, mnt) = self.paths(v);
        let size = a.size_bytes;
        let made = tokio::task::spawn_blocking(move || -> std::result::Result<bool, String> {
            let dir = img.parent().unwrap_or(Path::new("/"));
            private_fs::create_dir_all(dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let new = !img.exists();
            if new {
                make_image(&img, size, uid, gid)?;
            }
            private_fs::create_dir_all(&mnt)
                .map_err(|e| format!("creating {}: {e}", mnt.display()))?;
            if !is_mounted(&mnt) {
                let (img_s, mnt_s) = (img.to_string_lossy(), mnt.to_string_lossy());
                run(
                    "mount",
                    &["-t", "ext4", "-o", "loop,nodev,nosuid", &img_s, &mnt_s],
                )?;
            }
            Ok(new)
        })
        .await
        .map_err(|e| volume_error(v, e))?
        .map_err(|e| volume_error(v, e))?;
        if made {
            info!(volume = %v, size = a.size_bytes, "volume made");
        }
        Ok(self.paths(v).1)
    }

    /// Unmounts `v`, overwrites its image with zeros and removes it.
    async fn wipe(&self, v: &VolumeRef) -> Result<()> {
        let (img, mnt) = self.paths(v);
        tokio::task::spawn_blocking(move || -> std::result::Result<(), String> {
            if is_mounted(&mnt) {
                run("umount", &[&mnt.to_string_lossy()])?;
            }
            if img.exists() {
                wipe_image(&img)?;
            }
            for leftover in [img.with_extension("img.new")] {
                if leftover.exists() {
                    std::fs::remove_file(&leftover)
                        .map_err(|e| format!("removing {}: {e}", leftover.display()))?;
                }
            }
            match std::fs::remove_dir(&mnt) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("removing {}: {e}", mnt.display())),
            }
        })
        .await
        .map_err(|e| volume_error(v, e))?
        .map_err(|e| volume_error(v, e))
    }
}

impl YoukiRuntime {
    /// The image file of volume `v` on this node (whether or not it exists).
    pub fn volume_image(&self, v: &VolumeRef) -> PathBuf {
        self.inner.volumes.paths(v).0
    }

    /// Wipes `v` unless a container of this runtime mounts it.
    pub(super) async fn wipe_volume(&self, v: &VolumeRef) -> Result<()> {
        let _one = self.inner.volumes.changes.lock().await;
        let users = lock(&self.inner.containers)
            .values()
            .filter(|e| lock(&e.record).volumes.iter().any(|a| a.volume == *v))
            .count();
        if users > 0 {
            return Err(RuntimeError::VolumeInUse {
                volume: v.to_string(),
                containers: users,
            });
        }
        self.inner.volumes.wipe(v).await?;
        info!(volume = %v, "volume wiped");
        Ok(())
    }
}
