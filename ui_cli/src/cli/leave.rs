//! `ui export`, `ui import` and `ui forget`: the right to leave.

use std::path::PathBuf;

use clap::Args;

/// `ui export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write the archive (JSON, mode 0600).
    pub file: PathBuf,
}

/// `ui import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// An archive written by `ui export`.
    pub file: PathBuf,
}

/// `ui forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Really remove everything you have on the cluster (without it, `ui
    /// forget` only says what it would remove).
    #[arg(long)]
    pub yes: bool,
}
