//! Unit tests of unpacking: layers built in memory.

use super::*;
use crate::youki::image::test_support::{sha_hex, TestDir};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Mode(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, io::empty()).unwrap();
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Mode(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Hardlink(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A budget of `layer_bytes` per layer, `entries` per layer, `image_bytes`
/// per image, against a store with `quota` bytes and nothing cached.
fn budget(layer_bytes: u64, entries: u64, image_bytes: u64, quota: u64) -> UnpackBudget {
    let state = std::sync::Arc::new(std::sync::Mutex::new(crate::youki::image::State::default()));
    UnpackBudget {
        max_layer_bytes: layer_bytes,
        max_layer_entries: entries,
        max_image_bytes: image_bytes,
        reservation: Reservation::new(state, quota),
        unpacked: 0,
    }
}

fn roomy() -> UnpackBudget {
    budget(1 << 30, 1000, 1 << 30, 1 << 30)
}

/// Writes `layers` as blobs and unpacks them; returns the rootfs path.
fn unpack(dir: &TestDir, layers: &[Vec<u8>]) -> Result<PathBuf, UnpackError> {
    unpack_within(dir, layers, &mut roomy())
}

fn unpack_within(
    dir: &TestDir,
    layers: &[Vec<u8>],
    budget: &mut UnpackBudget,
) -> Result<PathBuf, UnpackError> {
    let paths: Vec<PathBuf> = layers
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let p = dir.path().join(format!("layer{i}"));
            fs::write(&p, data).unwrap();
            p
        })
        .collect();
    let target = dir.path().join("rootfs");
    unpack_rootfs(&paths, &[], &dir.path().join("staging"), &target, budget)?;
    Ok(target)
}

#[test]
fn whiteouts_delete_and_opaque_dirs_hide_lower_layers() {
    let dir = TestDir::new("whiteout");
    let lower = tar_of(&[
        E::Dir("etc"),
        E::File("etc/a", b"a"),
        E::File("etc/b", b"b"),
        E::Dir("d"),
        E::File("d/x", b"x"),
        E::Dir("d/sub"),
        E::File("d/sub/z", b"z"),
        E::Dir("gone"),
        E::File("gone/f", b"f"),
    ]);
    let upper = tar_of(&[
        E::File("etc/.wh.a", b""),
        E::File(".wh.gone", b""),
        E::Dir("d"),
        E::File("d/.wh..wh..opq", b""),
        E::File("d/new", b"new"),
        E::File("top", b"top"),
    ]);
    let rootfs = unpack(&dir, &[lower, gzip(&upper)]).unwrap();
    assert!(!rootfs.join("etc/a").exists());
    assert_eq!(fs::read(rootfs.join("etc/b")).unwrap(), b"b");
    assert!(!rootfs.join("gone").exists());
    assert!(!rootfs.join("d/x").exists());
    assert!(!rootfs.join("d/sub").exists());
    assert_eq!(fs::read(rootfs.join("d/new")).unwrap(), b"new");
    assert_eq!(fs::read(rootfs.join("top")).unwrap(), b"top");
    // Whiteout markers themselves are never extracted.
    assert!(!rootfs.join("etc/.wh.a").exists());
    assert!(!rootfs.join("d/.wh..wh..opq").exists());
    assert!(!dir.path().join("staging").exists());
}

#[test]
fn opaque_marker_keeps_entries_of_its_own_layer() {
    let dir = TestDir::new("opaque-order");
    let lower = tar_of(&[
        E::Dir("d"),
        E::File("d/old", b"old"),
        E::Dir("d/k"),
        E::File("d/k/old", b"o"),
    ]);
    // This layer's entries come before the marker in the archive.
    let upper = tar_of(&[
        E::Dir("d"),
        E::File("d/keep", b"keep"),
        E::File("d/k/mine", b"mine"),
        E::File("d/.wh..wh..opq", b""),
        E::File("d/.wh.keep", b""),
    ]);
    let rootfs = unpack(&dir, &[lower, upper]).unwrap();
    assert_eq!(fs::read(rootfs.join("d/keep")).unwrap(), b"keep");
    assert_eq!(fs::read(rootfs.join("d/k/mine")).unwrap(), b"mine");
    assert!(!rootfs.join("d/old").exists());
    assert!(!rootfs.join("d/k/old").exists());
}

#[test]
fn a_layer_replaces_files_dirs_and_symlinks_of_lower_layers() {
    let dir = TestDir::new("replace");
    let lower = tar_of(&[
        E::Dir("a"),
        E::File("a/f", b"1"),
        E::File("b", b"2"),
        E::Symlink("c", "b"),
    ]);
    let upper = tar_of(&[
        E::File("a", b"now a file"),
        E::Dir("b"),
        E::File("c", b"plain"),
    ]);
    let rootfs = unpack(&dir, &[lower, upper]).unwrap();
    assert_eq!(fs::read(rootfs.join("a")).unwrap(), b"now a file");
    assert!(rootfs.join("b").is_dir());
    assert!(!fs::symlink_metadata(rootfs.join("c"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(rootfs.join("c")).unwrap(), b"plain");
}

#[test]
fn symlinks_hardlinks_and_modes_are_preserved() {
    let dir = TestDir::new("links");
    let layer = tar_of(&[
        E::Dir("bin"),
        E::Mode("bin/busybox", b"#!elf", 0o4755),
        E::Hardlink("bin/sh", "bin/busybox"),
        E::Symlink("bin/ls", "busybox"),
        E::Symlink("abs", "/bin/busybox"),
    ]);
    let rootfs = unpack(&dir, &[layer]).unwrap();
    let bb = fs::metadata(rootfs.join("bin/busybox")).unwrap();
    assert_eq!(bb.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(fs::metadata(rootfs.join("bin/sh")).unwrap().ino(), bb.ino());
    assert_eq!(
        fs::read_link(rootfs.join("bin/ls")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(rootfs.join("abs")).unwrap(),
        Path::new("/bin/busybox")
    );
    // Hard links count once.
    assert_eq!(tree_size(&rootfs).unwrap(), 5);
}

#[test]
fn entries_with_parent_dir_components_are_refused_and_nothing_is_kept() {
    let dir = TestDir::new("dotdot");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..7].copy_from_slice(b"../evil");
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(4);
    h.set_cksum();
    b.append(&h, &b"evil"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let err = unpack(&dir, &[layer]).unwrap_err();
    assert!(
        matches!(&err, UnpackError::Failed(m) if m.contains("..")),
        "{err:?}"
    );
    assert!(!dir.path().join("evil").exists());
    assert!(!dir.path().join("rootfs").exists());
    assert!(!dir.path().join("staging").exists());
}

#[test]
fn symlinks_cannot_redirect_writes_outside_the_rootfs() {
    let dir = TestDir::new("escape");
    let outside = TestDir::new("outside");
    let outside_path = outside.path().to_str().unwrap().to_owned();
    let lower = tar_of(&[
        E::Symlink("abs", &outside_path),
        E::Symlink("rel", "../../../../../.."),
    ]);
    let upper = tar_of(&[
        E::File("abs/f", b"1"),
        E::File("rel/g", b"2"),
        E::File(".wh.x", b""),
    ]);
    let rootfs = unpack(&dir, &[lower, upper]).unwrap();
    assert!(!outside.path().join("f").exists());
    assert_eq!(
        fs::read(rootfs.join(outside_path.trim_start_matches('/')).join("f")).unwrap(),
        b"1"
    );
    assert_eq!(fs::read(rootfs.join("g")).unwrap(), b"2");
}

#[test]
fn a_layer_not_matching_its_diff_id_is_a_digest_mismatch() {
    let dir = TestDir::new("diffid");
    let layer = tar_of(&[E::File("f", b"1")]);
    let good = sha_hex(&layer);
    let blob = dir.path().join("layer");
    fs::write(&blob, gzip(&layer)).unwrap();
    let staging = dir.path().join("staging");
    let ok = dir.path().join("ok");
    unpack_rootfs(
        std::slice::from_ref(&blob),
        &[good],
        &staging,
        &ok,
        &mut roomy(),
    )
    .unwrap();
    let bad = "0".repeat(64);
    let err = unpack_rootfs(
        &[blob],
        std::slice::from_ref(&bad),
        &staging,
        &dir.path().join("bad"),
        &mut roomy(),
    )
    .unwrap_err();
    let err = err.into_image_error("img");
    assert!(
        matches!(&err, ImageError::DigestMismatch { expected, .. } if *expected == format!("sha256:{bad}")),
        "{err}"
    );
    assert!(!dir.path().join("bad").exists() && !staging.exists());
}

#[test]
fn zstd_layers_are_refused() {
    let dir = TestDir::new("zstd");
    let err = unpack(&dir, &[vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0]]).unwrap_err();
    assert!(
        matches!(&err, UnpackError::Failed(m) if m.contains("zstd")),
        "{err:?}"
    );
}

/// A layer holding one file of `size` zero bytes, gzipped: a small gzip bomb.
fn zeros_layer(size: u64) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    {
        let mut b = tar::Builder::new(&mut enc);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(size);
        b.append_data(&mut h, "zeros", io::repeat(0).take(size))
            .unwrap();
        b.finish().unwrap();
    }
    enc.finish().unwrap()
}

#[test]
fn decompression_stops_at_the_layer_cap_and_leaves_nothing() {
    let dir = TestDir::new("bomb");
    let bomb = zeros_layer(8 << 20);
    assert!(
        bomb.len() < 64 << 10,
        "a bomb: {} bytes compressed",
        bomb.len()
    );
    let err =
        unpack_within(&dir, &[bomb], &mut budget(1 << 20, 1000, 1 << 30, 1 << 30)).unwrap_err();
    match &err {
        UnpackError::Limit(hit) => {
            assert_eq!(hit.limit, names::LAYER_UNPACKED);
            assert_eq!(hit.max, 1 << 20);
            assert!(hit.to_string().contains("layer 0"), "{hit}");
        }
        other => panic!("expected the layer cap, got {other:?}"),
    }
    assert!(!dir.path().join("staging").exists() && !dir.path().join("rootfs").exists());
}

#[test]
fn the_image_cap_counts_every_layer() {
    let dir = TestDir::new("image-cap");
    let layer = zeros_layer(600 << 10);
    let err = unpack_within(
        &dir,
        &[layer.clone(), layer],
        &mut budget(1 << 20, 1000, 1 << 20, 1 << 30),
    )
    .unwrap_err();
    assert!(
        matches!(&err, UnpackError::Limit(hit) if hit.limit == names::IMAGE),
        "{err:?}"
    );
}

#[test]
fn entries_per_layer_are_capped() {
    let dir = TestDir::new("entries");
    let names_: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let entries: Vec<E<'_>> = names_.iter().map(|n| E::File(n, b"x")).collect();
    let err = unpack_within(
        &dir,
        &[tar_of(&entries)],
        &mut budget(1 << 20, 10, 1 << 20, 1 << 30),
    )
    .unwrap_err();
    match &err {
        UnpackError::Limit(hit) => {
            assert_eq!(
                (hit.limit, hit.max, hit.unit),
                (names::LAYER_ENTRIES, 10, "entries")
            );
        }
        other => panic!("expected the entries cap, got {other:?}"),
    }
    assert!(!dir.path().join("staging").exists());
}

#[test]
fn unpacking_reserves_the_store_quota_and_stops_at_it() {
    let dir = TestDir::new("quota");
    let mut b = budget(1 << 30, 1000, 1 << 30, 3 << 20);
    let err = unpack_within(&dir, &[zeros_layer(8 << 20)], &mut b).unwrap_err();
    match &err {
        UnpackError::Quota(q) => {
            assert_eq!(q.quota, 3 << 20);
            assert!(q.to_string().contains(names::STORE_QUOTA), "{q}");
        }
        other => panic!("expected the store quota, got {other:?}"),
    }
    assert!(b.reservation.held() <= 3 << 20);
    drop(b);

    let mut b = budget(1 << 30, 1000, 1 << 30, 3 << 20);
    unpack_within(&dir, &[tar_of(&[E::File("small", b"1")])], &mut b).unwrap();
    assert!(b.reservation.held() >= b.unpacked);
}
