//! `ui volume list|rm`.

use clap::{Args, Subcommand};

/// `ui volume ...`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Your volumes: where each lives, its size, which workloads mount it.
    #[command(alias = "ls")]
    List,
    /// Wipe a volume (its data is overwritten, then removed); refused while
    /// one of your workloads mounts it.
    #[command(alias = "delete")]
    Rm(VolumeRmArgs),
}

/// `ui volume rm`.
#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// The volume's name.
    pub name: String,
}
