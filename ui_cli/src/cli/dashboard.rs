//! `ui dashboard`.

use clap::Args;

/// `ui dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// The loopback port to serve on (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Print the URL without opening a browser.
    #[arg(long)]
    pub no_open: bool,
}
