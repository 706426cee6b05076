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
    match cli.command {
        Some(cli::Command::NodeId) => return print_node_id(cli.settings.data_dir, file),
        Some(cli::Command::JoinToken {
            ttl,
            role,
            api_addr,
        }) => {
            let mut settings = cli.settings.over(file);
            settings.api_addr = api_addr.or(settings.api_addr);
            return print_join_token(settings, &ttl, &role);
        }
        Some(cli::Command::Migrate {
            from,
            to,
            etcd_prefix,
            cluster_id,
        }) => return migrate(&from, &to, etcd_prefix.as_deref(), cluster_id),
        None => {}
    }
    // The whole configuration is checked before anything is opened or bound.
    let config = DaemonConfig::resolve(cli.settings, file)?;
    let format = match config.log_format {
        LogFormat::Text => observability::logging::LogFormat::Text,
        LogFormat::Json => observability::logging::LogFormat::Json,
    };
    observability::logging::init_tracing(format).context("setting up logging")?;
    // Blocking threads are kept rather than ended after 10 s idle: a thread
    // starting or ending while the container runtime forks can hang the
    // fork's child (container_runtime's `youki::worker`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(std::time::Duration::from_secs(24 * 3600))
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

/// `orchestrator_daemon migrate`: copies a stopped SQLite control plane
/// into etcd and checks the copy (`orchestrator_daemon::migrate`).
#[cfg(feature = "etcd")]
fn migrate(
    from: &str,
    to: &str,
    prefix: Option<&str>,
    cluster_id: Option<String>,
) -> anyhow::Result<()> {
    use orchestrator_daemon::migrate::{self, MigrateConfig};
    let config = MigrateConfig::parse(from, to, prefix, cluster_id)?;
    eprintln!(
        "copying {} into etcd {} under {}",
        config.database.display(),
        config.endpoints.join(","),
        config.prefix
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(migrate::run(&config))?;
    print!("{report}");
    report.check()?;
    println!("verified");
    eprintln!(
        "the cluster id in etcd is {}, the audience requests must now be signed for (GET \
         /api/v1/info); start the control planes with --store etcd --etcd-endpoints {} \
         --etcd-prefix {}, and do not start the old daemon again",
        report.ledger_id,
        config.endpoints.join(","),
        config.prefix
    );
    eprintln!(
        "warning: the credit ledger's authority key (the old node key) is now in etcd under \
         {}/: etcd must be reachable by the control planes only",
        config.prefix
    );
    Ok(())
}

/// `orchestrator_daemon migrate` in a build without etcd.
#[cfg(not(feature = "etcd"))]
fn migrate(_: &str, _: &str, _: Option<&str>, _: Option<String>) -> anyhow::Result<()> {
    anyhow::bail!(
        "migrate: this orchestrator_daemon was built without etcd support; build it with \
         `cargo build --release -p orchestrator_daemon --features etcd` (needs protoc: Debian's \
         protobuf-compiler)"
    )
}

/// `orchestrator_daemon join-token`: asks the control plane running on this
/// machine (its API address from the same settings) for a join token,
/// signing with the node key of its data directory.
fn print_join_token(settings: Settings, ttl: &str, role: &str) -> anyhow::Result<()> {
    let ttl = orchestrator_daemon::duration::parse(ttl).context("--ttl")?;
    let role = role
        .parse::<orchestrator_shared_types::admission::JoinRole>()
        .map_err(anyhow::Error::msg)
        .context("--role")?;
    let dir = settings
        .data_dir
        .clone()
        .or_else(default_data_dir)
        .context("no data directory: pass --data-dir (HOME is not set)")?;
    // Read only: the data directory may be mounted read-only here.
    let Some(key) = node_key::load(&dir)? else {
        anyhow::bail!(
            "no node key in {}: run join-token on the control plane's machine, with its --data-dir",
            dir.display()
        );
    };
    let api = settings
        .api_addr
        .clone()
        .unwrap_or_else(|| orchestrator_daemon::config::DEFAULT_API_ADDR.to_owned());
    let addr: std::net::SocketAddr = api
        .parse()
        .with_context(|| format!("api address {api:?}"))?;
    // A daemon listening everywhere is reached on loopback.
    let host = if addr.ip().is_unspecified() {
        std::net::SocketAddr::new([127, 0, 0, 1].into(), addr.port())
    } else {
        addr
    };
    let client = orchestrator_api::client::ApiClient::new(&format!("http://{host}"), Some(key))
        .context("building the API client")?;
    let issued = client
        .issue_join_token(&orchestrator_api::JoinTokenRequest {
            ttl_seconds: Some(ttl.as_secs()),
            role: Some(role),
        })
        .with_context(|| format!("asking the daemon at {host} for a join token (is it running?)"))?
        .data;
    eprintln!(
        "join token {} for a {}, valid until {} (keep it secret: it admits a node and carries \
         the gossip key)",
        issued.id,
        issued.role.as_str(),
        issued.expires_at
    );
    println!("{}", issued.token);
    Ok(())
}
