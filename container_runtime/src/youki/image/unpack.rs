//! Unpacking: layers (tar, gzip or not) applied bottom first into a staging
//! directory with their whiteouts, every path kept inside the rootfs, the
//! result renamed into place only once complete.

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tracing::debug;

use super::{remove_any, remove_quietly, ImageError};

const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Symlinks followed while resolving one path inside a rootfs (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Why a rootfs could not be built.
#[derive(Debug)]
pub(super) enum UnpackError {
    /// An uncompressed layer does not match the config's `diff_ids` (hex values).
    DiffId { expected: String, actual: String },
    /// Anything else, described.
    Failed(String),
}

impl UnpackError {
    pub(super) fn into_image_error(self, image: &str) -> ImageError {
        match self {
            Self::DiffId { expected, actual } => ImageError::DigestMismatch {
                image: image.to_owned(),
                expected: format!("sha256:{expected}"),
                actual: format!("sha256:{actual}"),
            },
            Self::Failed(reason) => ImageError::Unpack {
                image: image.to_owned(),
                reason,
            },
        }
    }
}

fn failed(doing: impl std::fmt::Display) -> impl FnOnce(io::Error) -> UnpackError {
    move |e| UnpackError::Failed(format!("{doing}: {e}"))
}

/// Unpacks `layers` (bottom first) into `staging`, then renames it to
/// `target`. Returns the rootfs size in bytes. `staging` is removed on failure.
pub(super) fn unpack_rootfs(
    layers: &[PathBuf],
    diff_ids: &[String],
    staging: &Path,
    target: &Path,
) -> Result<u64, UnpackError> {
    let preserve_owner = nix::unistd::geteuid().is_root();
    let result = (|| {
        fs::create_dir(staging).map_err(failed(format_args!("creating {}", staging.display())))?;
        for (i, layer) in layers.iter().enumerate() {
            let file = fs::File::open(layer)
                .map_err(failed(format_args!("opening {}", layer.display())))?;
            let diff_id = unpack_layer(file, staging, preserve_owner).map_err(|e| match e {
                UnpackError::Failed(m) => UnpackError::Failed(format!("layer {i}: {m}")),
                other => other,
            })?;
            if let Some(expected) = diff_ids.get(i).filter(|e| **e != diff_id) {
                return Err(UnpackError::DiffId {
                    expected: expected.clone(),
                    actual: diff_id,
                });
            }
        }
        match fs::rename(staging, target) {
            Ok(()) => {}
            // The same config was unpacked concurrently for another reference.
            Err(_) if target.is_dir() => remove_quietly(staging),
            Err(e) => {
                return Err(failed(format_args!("renaming into {}", target.display()))(
                    e,
                ))
            }
        }
        tree_size(target).map_err(failed(format_args!("measuring {}", target.display())))
    })();
    if result.is_err() && staging.exists() {
        remove_quietly(staging);
    }
    result
}

/// Applies one layer (tar, gzip or not) on top of `root`. Returns the hex
/// sha256 of the uncompressed tar (its diff id).
fn unpack_layer(
    reader: impl Read,
    root: &Path,
    preserve_owner: bool,
) -> Result<String, UnpackError> {
    let mut buffered = BufReader::new(reader);
    let head = buffered.fill_buf().map_err(failed("reading layer"))?;
    if head.starts_with(ZSTD_MAGIC) {
        return Err(UnpackError::Failed(
            "zstd-compressed layers are not supported".into(),
        ));
    }
    let decompressed: Box<dyn Read> = if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut hashing = HashingReader {
        inner: decompressed,
        hasher: Sha256::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(preserve_owner);
        archive.set_preserve_mtime(true);
        archive.set_overwrite(true);
        let mut written = HashSet::new();
        for entry in archive.entries().map_err(failed("reading tar"))? {
            let mut entry = entry.map_err(failed("reading tar entry"))?;
            apply_entry(&mut entry, root, preserve_owner, &mut written)?;
        }
    }
    // The tar reader may stop before the end-of-archive padding.
    io::copy(&mut hashing, &mut io::sink()).map_err(failed("reading layer"))?;
    Ok(hex::encode(hashing.hasher.finalize()))
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Applies one tar entry. `written` holds the paths (and their ancestors)
/// this layer created, which its whiteouts must not hide.
fn apply_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    root: &Path,
    preserve_owner: bool,
    written: &mut HashSet<PathBuf>,
) -> Result<(), UnpackError> {
    let raw = entry
        .path()
        .map_err(failed("reading entry path"))?
        .into_owned();
    let Some(rel) = clean_relative(&raw)? else {
        return Ok(()); // the archive's root directory itself
    };
    let (Some(name), parent_rel) = (rel.file_name(), rel.parent().unwrap_or(Path::new(""))) else {
        return Ok(());
    };
    let name = name.to_owned();
    let parent = resolve_in_root(root, parent_rel)
        .map_err(failed(format_args!("resolving {}", raw.display())))?;
    let what = || format_args!("unpacking {}", raw.display()).to_string();

    if name.as_bytes() == OPAQUE_WHITEOUT {
        if parent.is_dir() {
            clear_lower(&parent, parent_rel, written).map_err(failed(what()))?;
        }
        return Ok(());
    }
    if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
        let hidden = OsStr::from_bytes(hidden);
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(UnpackError::Failed(format!(
                "invalid whiteout {}",
                raw.display()
            )));
        }
        if !written.contains(&parent_rel.join(hidden)) {
            remove_any(&parent.join(hidden)).map_err(failed(what()))?;
        }
        return Ok(());
    }

    let kind = entry.header().entry_type();
    let dst = parent.join(&name);
    fs::create_dir_all(&parent).map_err(failed(what()))?;
    if kind.is_dir() {
        if fs::symlink_metadata(&dst).is_ok_and(|m| !m.is_dir()) {
            remove_any(&dst).map_err(failed(what()))?;
        }
        entry.unpack(&dst).map_err(failed(what()))?;
    } else if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
        remove_any(&dst).map_err(failed(what()))?;
        entry.unpack(&dst).map_err(failed(what()))?;
    } else if kind.is_symlink() {
        let target = entry
            .link_name()
            .map_err(failed(what()))?
            .ok_or_else(|| UnpackError::Failed(format!("symlink {} has no target", raw.display())))?
            .into_owned();
        remove_any(&dst).map_err(failed(what()))?;
        std::os::unix::fs::symlink(&target, &dst).map_err(failed(what()))?;
        if preserve_owner {
            let header = entry.header();
            let uid = header.uid().ok().and_then(|u| u32::try_from(u).ok());
            let gid = header.gid().ok().and_then(|g| u32::try_from(g).ok());
            std::os::unix::fs::lchown(&dst, uid, gid).map_err(failed(what()))?;
        }
    } else if kind.is_hard_link() {
        let link = entry
            .link_name()
            .map_err(failed(what()))?
            .ok_or_else(|| {
                UnpackError::Failed(format!("hard link {} has no target", raw.display()))
            })?
            .into_owned();
        let Some(link_rel) = clean_relative(&link)? else {
            return Err(UnpackError::Failed(format!(
                "hard link {} to the root",
                raw.display()
            )));
        };
        let src = resolve_in_root(root, link_rel.parent().unwrap_or(Path::new("")))
            .map_err(failed(what()))?
            .join(link_rel.file_name().unwrap_or_default());
        if src != dst {
            remove_any(&dst).map_err(failed(what()))?;
            fs::hard_link(&src, &dst).map_err(failed(format_args!(
                "linking {} to {}",
                raw.display(),
                link.display()
            )))?;
        }
    } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
        debug!(path = %raw.display(), "skipping device node or fifo");
        return Ok(());
    } else {
        debug!(path = %raw.display(), kind = ?kind, "skipping tar entry of unsupported type");
        return Ok(());
    }
    for ancestor in rel.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        written.insert(ancestor.to_path_buf());
    }
    Ok(())
}

/// `path` relative to the rootfs, without `.` or leading `/`; `None` for the
/// root itself. `..` is refused: no entry may point outside the rootfs.
fn clean_relative(path: &Path) -> Result<Option<PathBuf>, UnpackError> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(UnpackError::Failed(format!(
                    "refusing tar entry {} containing `..`",
                    path.display()
                )))
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Resolves `rel` under `root` as if `root` were `/`: symlinks (absolute or
/// with `..`) are followed but can never lead outside `root`.
pub(super) fn resolve_in_root(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    enum Part {
        Up,
        Name(OsString),
    }
    fn parts(path: &Path) -> impl Iterator<Item = Part> + '_ {
        path.components().filter_map(|c| match c {
            Component::Normal(n) => Some(Part::Name(n.to_owned())),
            Component::ParentDir => Some(Part::Up),
            _ => None,
        })
    }
    let mut resolved = PathBuf::new();
    let mut pending: VecDeque<Part> = parts(rel).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        let name = match part {
            Part::Up => {
                resolved.pop();
                continue;
            }
            Part::Name(name) => name,
        };
        let candidate = root.join(&resolved).join(&name);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("too many symlinks resolving {}", rel.display()),
                    ));
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for part in parts(&target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(part);
                }
            }
            _ => resolved.push(name),
        }
    }
    Ok(root.join(resolved))
}

/// Removes what lower layers left in `dir`, keeping what this layer wrote.
fn clear_lower(dir: &Path, dir_rel: &Path, written: &HashSet<PathBuf>) -> io::Result<()> {
    for child in fs::read_dir(dir)? {
        let child = child?;
        let rel = dir_rel.join(child.file_name());
        if !written.contains(&rel) {
            remove_any(&child.path())?;
        } else if child.file_type()?.is_dir() {
            clear_lower(&child.path(), &rel, written)?;
        }
    }
    Ok(())
}

/// Bytes of regular files under `root`, hard links counted once.
fn tree_size(root: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.is_file() && (meta.nlink() <= 1 || seen.insert((meta.dev(), meta.ino())))
            {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
