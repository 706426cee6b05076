//! `ui secret set|list|rm|rewrap`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `ui secret ...`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Seal a value (from standard input, or --from-file) on this machine to
    /// the nodes your trust policy allows and to your own key, and store the
    /// ciphertext on the cluster.
    Set(SecretSetArgs),
    /// List your secrets and the nodes each is sealed to.
    List,
    /// Delete a secret (refused while a workload of yours names it).
    Rm {
        /// The secret's name.
        name: String,
    },
    /// Seal your secrets again, for the nodes your trust policy allows now
    /// (after `ui policy trust`, a new node, or `ui policy deny`).
    Rewrap {
        /// Only these secrets (all of them when none is given).
        names: Vec<String>,
    },
}

/// `ui secret set`.
#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// The secret's name (a-z, 0-9 and '-', at most 63).
    pub name: String,
    /// Read the value from this file instead of standard input.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}
