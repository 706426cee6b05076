//! Each container's writable root filesystem over its image's shared,
//! read-only rootfs: an overlayfs mount (image rootfs as `lowerdir`, the
//! container's own `upper`/`work`) where the kernel allows it, else a full
//! copy of the image rootfs. Which one is used is decided once, by a probe
//! mount, and logged.

use std::io;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// How writable layers are made on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerMode {
    /// overlayfs: instant, shares the image's files.
    Overlay,
    /// A copy of the image rootfs per container.
    Copy,
}

impl std::fmt::Display for LayerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayerMode::Overlay => "overlayfs",
            LayerMode::Copy => "copy",
        })
    }
}

fn overlay_mount(lower: &Path, upper: &Path, work: &Path, target: &Path) -> io::Result<()> {
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    if [lower, upper, work]
        .iter()
        .any(|p| p.to_string_lossy().contains(','))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "overlay paths must not contain ','",
        ));
    }
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(io::Error::from)
}

/// Tries an overlay mount under `scratch` and says which mode works.
pub fn probe(scratch: &Path) -> LayerMode {
    let dir = scratch.join(format!("overlay-probe-{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        overlay_mount(
            &dir.join("lower"),
            &dir.join("upper"),
            &dir.join("work"),
            &dir.join("merged"),
        )?;
        umount2(&dir.join("merged"), MntFlags::MNT_DETACH).map_err(io::Error::from)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => LayerMode::Overlay,
        Err(e) => {
            tracing::warn!(error = %e, "overlayfs is not available here: each container gets a copy of its image's rootfs");
            LayerMode::Copy
        }
    }
}

/// Makes `container_dir/rootfs`, the container's writable view of `image_rootfs`.
pub fn prepare(mode: LayerMode, image_rootfs: &Path, container_dir: &Path) -> io::Result<()> {
    let target = container_dir.join("rootfs");
    std::fs::create_dir_all(&target)?;
    match mode {
        LayerMode::Overlay => {
            let upper = container_dir.join("upper");
            let work = container_dir.join("work");
            std::fs::create_dir_all(&upper)?;
            std::fs::create_dir_all(&work)?;
            overlay_mount(image_rootfs, &upper, &work, &target)
        }
        LayerMode::Copy => copy_tree(image_rootfs, &target),
    }
}

/// Unmounts (if mounted) and deletes everything under `container_dir`.
pub fn teardown(container_dir: &Path) -> io::Result<()> {
    let target = container_dir.join("rootfs");
    match umount2(&target, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (copy mode, or already unmounted).
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(io::Error::from(e)),
    }
    super::secrets::unmount(container_dir)?;
    match std::fs::remove_dir_all(container_dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Copies `from` into the existing directory `to`: files, directories and
/// symlinks with their modes and owners; other special files are skipped.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
            lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else {
            tracing::debug!(path = %src.display(), "skipping a special file while copying a rootfs");
        }
    }
    Ok(())
}
