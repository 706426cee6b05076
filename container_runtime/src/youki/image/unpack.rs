//! Unpacking: layers (tar, gzip or not) applied bottom first into a staging
//! directory with their whiteouts, every path kept inside the rootfs, the
//! result renamed into place only once complete. Every decompressed byte and
//! every entry is counted against an [`UnpackBudget`] as it is read, so a
//! gzip bomb stops at the cap, not at a full disk.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tracing::debug;

use super::limits::{names, LimitHit, QuotaHit, Reservation};
use super::{remove_any, remove_quietly, ImageError};

const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Symlinks followed while resolving one path inside a rootfs (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;
/// Store quota reserved at a time while unpacking.
const RESERVE_STEP: u64 = 1 << 20;

/// What unpacking an image may use.
pub(super) struct UnpackBudget {
    /// Bytes one layer may decompress to.
    pub(super) max_layer_bytes: u64,
    /// Entries one layer may hold.
    pub(super) max_layer_entries: u64,
    /// Bytes all layers together may decompress to.
    pub(super) max_image_bytes: u64,
    /// Store quota, reserved step by step before bytes are written.
    pub(super) reservation: Reservation,
    /// Bytes decompressed so far, all layers together.
    pub(super) unpacked: u64,
}

/// Why a rootfs could not be built.
#[derive(Debug)]
pub(super) enum UnpackError {
    /// An uncompressed layer does not match the config's `diff_ids` (hex values).
    DiffId { expected: String, actual: String },
    /// A limit was reached.
    Limit(LimitHit),
    /// The store quota was reached.
    Quota(QuotaHit),
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
            Self::Limit(hit) => ImageError::LimitExceeded {
                image: image.to_owned(),
                hit,
            },
            Self::Quota(hit) => ImageError::QuotaExceeded {
                image: image.to_owned(),
                hit,
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
/// `target`, within `budget`. Returns the rootfs size in bytes. `staging` is
/// removed on failure.
pub(super) fn unpack_rootfs(
    layers: &[PathBuf],
    diff_ids: &[String],
    staging: &Path,
    target: &Path,
    budget: &mut UnpackBudget,
) -> Result<u64, UnpackError> {
    let preserve_owner = nix::unistd::geteuid().is_root();
    let result = (|| {
        fs::create_dir(staging).map_err(failed(format_args!("creating {}", staging.display())))?;
        for (i, layer) in layers.iter().enumerate() {
            let file = fs::File::open(layer)
                .map_err(failed(format_args!("opening {}", layer.display())))?;
            let meter = RefCell::new(Meter {
                budget: &mut *budget,
                layer: i,
                layer_bytes: 0,
                entries: 0,
                hit: None,
            });
            let diff_id =
                unpack_layer(file, staging, preserve_owner, &meter).map_err(|e| match e {
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
    meter: &RefCell<Meter<'_>>,
) -> Result<String, UnpackError> {
    let result = unpack_layer_metered(reader, root, preserve_owner, meter);
    // A limit surfaces from inside the tar reader as an I/O error; report it as itself.
    match meter.borrow_mut().hit.take() {
        Some(hit) => Err(hit),
        None => result,
    }
}

fn unpack_layer_metered(
    reader: impl Read,
    root: &Path,
    preserve_owner: bool,
    meter: &RefCell<Meter<'_>>,
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
        meter,
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
            {
                let mut m = meter.borrow_mut();
                m.entry().map_err(|_| limit_failure())?;
                // A sparse file takes its full size once unpacked, not its size in the tar.
                let header = entry.header();
                if header.entry_type().is_gnu_sparse() {
                    let real = header.size().map_err(failed("reading sparse entry size"))?;
                    m.add(real.saturating_sub(entry.size()))
                        .map_err(|_| limit_failure())?;
                }
            }
            apply_entry(&mut entry, root, preserve_owner, &mut written)?;
        }
    }
    // The tar reader may stop before the end-of-archive padding.
    io::copy(&mut hashing, &mut io::sink()).map_err(failed("reading layer"))?;
    Ok(hex::encode(hashing.hasher.finalize()))
}

/// The meter's refusal is kept in [`Meter::hit`]; this only stops the caller.
fn limit_failure() -> UnpackError {
    UnpackError::Failed("unpacking limit reached".into())
}

/// Counts one layer's decompressed bytes and entries against the budget.
struct Meter<'a> {
    budget: &'a mut UnpackBudget,
    layer: usize,
    layer_bytes: u64,
    entries: u64,
    /// The first limit reached, reported instead of the error it caused.
    hit: Option<UnpackError>,
}

impl Meter<'_> {
    fn refuse(&mut self, hit: UnpackError) -> io::Error {
        let message = match &hit {
            UnpackError::Limit(h) => h.to_string(),
            UnpackError::Quota(q) => q.to_string(),
            _ => String::new(),
        };
        self.hit.get_or_insert(hit);
        io::Error::other(message)
    }

    /// Counts `n` more decompressed bytes, reserving store quota ahead of them.
    fn add(&mut self, n: u64) -> io::Result<()> {
        self.layer_bytes = self.layer_bytes.saturating_add(n);
        self.budget.unpacked = self.budget.unpacked.saturating_add(n);
        if self.layer_bytes > self.budget.max_layer_bytes {
            let hit = LimitHit {
                limit: names::LAYER_UNPACKED,
                max: self.budget.max_layer_bytes,
                unit: "bytes",
                what: format!(
                    "layer {} decompressed (at least {} bytes)",
                    self.layer, self.layer_bytes
                ),
            };
            return Err(self.refuse(UnpackError::Limit(hit)));
        }
        if self.budget.unpacked > self.budget.max_image_bytes {
            let hit = LimitHit {
                limit: names::IMAGE,
                max: self.budget.max_image_bytes,
                unit: "bytes",
                what: format!(
                    "the image's layers decompressed (at least {} bytes, beside its blobs)",
                    self.budget.unpacked
                ),
            };
            return Err(self.refuse(UnpackError::Limit(hit)));
        }
        let held = self.budget.reservation.held();
        if self.budget.unpacked > held {
            // Ahead by a step where the quota allows it, else just what is needed.
            let short = self.budget.unpacked - held;
            if self
                .budget
                .reservation
                .reserve(short.max(RESERVE_STEP))
                .is_err()
            {
                if let Err(q) = self.budget.reservation.reserve(short) {
                    return Err(self.refuse(UnpackError::Quota(q)));
                }
            }
        }
        Ok(())
    }

    fn entry(&mut self) -> io::Result<()> {
        self.entries += 1;
        if self.entries > self.budget.max_layer_entries {
            let hit = LimitHit {
                limit: names::LAYER_ENTRIES,
                max: self.budget.max_layer_entries,
                unit: "entries",
                what: format!("layer {} (at least {} entries)", self.layer, self.entries),
            };
            return Err(self.refuse(UnpackError::Limit(hit)));
        }
        Ok(())
    }
}

/// Hashes (for the diff id) and meters what it reads.
struct HashingReader<'m, 'b, R> {
    inner: R,
    hasher: Sha256,
    meter: &'m RefCell<Meter<'b>>,
}

impl<R: Read> Read for HashingReader<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.borrow_mut().add(n as u64)?;
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
