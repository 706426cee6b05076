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
//! package's binaries are linked so; libraries and tests are unchanged.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
