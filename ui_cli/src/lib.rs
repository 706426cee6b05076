//! The `ui` command-line interface (SPEC §16).
//!
//! Empty for now: the API issue fills it with the `ui` binary that signs every
//! request it sends to a daemon.
