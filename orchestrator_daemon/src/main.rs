//! `orchestrator_daemon`: the node daemon of the Univrs orchestrator.

mod cli;

use anyhow::Context;
use clap::Parser;
use orchestrator_daemon::config::default_data_dir;
use orchestrator_daemon::{node_key, DaemonConfig, LogFormat, Settings, Shutdown};

/// Bounds glibc's malloc arenas before any thread starts. By default glibc
/// gives busy threads arenas of their own (up to 8 per core) and returns
/// little of them; with the async runtime's and SQLite's threads that doubled
/// the daemon's resident memory under load (98 MB against 52 MB with two
/// arenas, for 10,000 instances; BENCHMARKS.md).
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called once,
    // before any other thread exists, and M_ARENA_MAX takes any positive int.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orchestrator_daemon: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let file = match &cli.config {
        Some(path) => Settings::load(path)?,
        None => Settings::default(),
    };
    if let Some(cli::Command::NodeId) = cli.command {
        return print_node_id(cli.settings.data_dir, file);
    }
    // The whole configuration is checked before anything is opened or bound.
    let config = DaemonConfig::resolve(cli.settings, file)?;
    let format = match config.log_format {
        LogFormat::Text => observability::logging::LogFormat::Text,
        LogFormat::Json => observability::logging::LogFormat::Json,
    };
    observability::logging::init_tracing(format).context("setting up logging")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match runtime.block_on(orchestrator_daemon::run_until_signal(config))? {
        Shutdown::Clean | Shutdown::TimedOut => Ok(()),
        // A second signal: exit now, without waiting for in-flight work (or
        // for the runtime's blocking threads, which dropping it would do).
        Shutdown::Forced => std::process::exit(130),
    }
}

/// `orchestrator_daemon node-id`: the node id of the data directory the
/// daemon would use, its key created as the daemon creates it if missing.
fn print_node_id(data_dir: Option<std::path::PathBuf>, file: Settings) -> anyhow::Result<()> {
    let dir = data_dir
        .or(file.data_dir)
        .or_else(default_data_dir)
        .context("no data directory: pass --data-dir (HOME is not set)")?;
    let key = node_key::open(&dir)?;
    println!("{}", node_key::node_id(&key));
    Ok(())
}
