//! Links the daemon binary with packed relative relocations (`DT_RELR`).
//!
//! A position-independent executable carries one relocation per pointer in
//! its read-only data (vtables, string tables): 53,272 of them, 1.3 MB of
//! `.rela.dyn` that the dynamic loader reads at every start, so all of it
//! was resident in an idle daemon. Packed, the table is a few kilobytes and
//! the binary stays position-independent (ASLR unchanged). Linking needs
//! lld 15 (rustc's bundled rust-lld, its default linker on x86_64 Linux) or
//! GNU ld 2.38; running needs glibc 2.36 (the binary asks for
//! `GLIBC_ABI_DT_RELR`; without it the daemon needed 2.34), which Debian
//! bookworm, the project's build and runtime image, has. Only this
//! package's binaries are linked so; libraries and tests are unchanged. On
//! a build host whose glibc is older than 2.36 (or unknown) the binary is
//! linked as before, so it still runs where it was built.
//!
//! It also hands the linker `startup.order`, the mangled names of the
//! functions an idle daemon has run, so that they sit together at the start
//! of `.text` and an idle daemon keeps 5 MiB of code resident instead of 9
//! (BENCHMARKS.md, "Daemon resident memory"). `scripts/startup-order`
//! regenerates the file. Only rust-lld takes it; with another linker the
//! binary is linked in the default order.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && host_glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if linker_is_rust_lld() {
        let order = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
            .join("startup.order");
        if order.is_file() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                order.display()
            );
            // Names the build no longer has (code changed since the file was
            // made) are skipped without a word; `scripts/startup-order`
            // regenerates the file.
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        }
        println!("cargo:rerun-if-changed=startup.order");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// Whether the binary is linked by rustc's bundled `rust-lld`: its default
/// on x86_64 Linux since Rust 1.90, unless the build names another linker.
/// Only lld takes `--symbol-ordering-file`.
fn linker_is_rust_lld() -> bool {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" {
        return false;
    }
    if std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some() {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "fuse-ld"].iter().any(|f| flags.contains(f)) {
        return false;
    }
    // `rustc 1.95.0 (59807616e 2026-04-14)`
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.split_whitespace().nth(1) else {
        return false;
    };
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 90)
}

/// Whether the build host's glibc (`getconf GNU_LIBC_VERSION`, e.g.
/// `glibc 2.36`) is at least `major.minor`.
fn host_glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.split_whitespace().nth(1) else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}
