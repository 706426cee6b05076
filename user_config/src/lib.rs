//! A user's identity, policy files, secrets and configuration (SPEC §15).
//!
//! Empty for now: the API issue fills it with the age-encrypted Ed25519
//! identity, `config.toml`, `policy/{trust,limits,automation}.toml` and the
//! secret store under XDG paths.
