//! Builds the components a [`DaemonConfig`] names and runs them until a signal.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cluster_manager::mock::MockClusterManager;
use container_runtime::mock::MockRuntime;
use container_runtime::youki::{RegistryCredentials, YoukiConfig, YoukiRuntime};
use container_runtime_interface::ContainerRuntime;
use orchestrator_shared_types::{Node, NodeStatus, PublicKey};
use scheduler_interface::simple::{ScoringStrategy, SimpleScheduler, SimpleSchedulerConfig};
use state_store_interface::memory::InMemoryStore;
use state_store_interface::sqlite::SqliteStore;
use state_store_interface::StateStore;
use std::net::SocketAddr;

use observability::events::EventHub;
use observability::health::Health;
use observability::metrics::Metrics;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::config::{DaemonConfig, RuntimeKind, Scoring, StoreKind};
use super::node_key;
use crate::api::Orchestrator;
use crate::error::{Error, Result};
use crate::reconciler::Deps;
use crate::rest::{self, AppState};

/// Events buffered per subscriber before it is told it lagged.
const EVENT_HUB_CAPACITY: usize = 1024;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "state.db";

/// Opens the data directory and builds every component `config` names.
pub async fn build_deps(config: &DaemonConfig) -> Result<Deps> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        Error::Config(format!(
            "creating data directory {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let key = node_key::load_or_create(&config.data_dir)?;
    let id = node_key::node_id(&key);
    let local = Node {
        id,
        address: "127.0.0.1".into(),
        status: NodeStatus::Ready,
        unschedulable: false,
        labels: config.labels.clone(),
        taints: Vec::new(),
        resources_capacity: config.node_capacity,
        resources_allocatable: config.node_allocatable,
        operator: PublicKey(id.0),
        joined_at: Utc::now(),
    };
    let store: Arc<dyn StateStore> = match config.store {
        StoreKind::Sqlite => Arc::new(SqliteStore::open(config.data_dir.join(DATABASE_FILE))?),
        StoreKind::Memory => {
            warn!("state store: memory — everything is lost when the daemon stops");
            Arc::new(InMemoryStore::new())
        }
    };
    let runtime: Arc<dyn ContainerRuntime> = match config.runtime {
        RuntimeKind::Mock => {
            warn!("container runtime: mock — containers are simulated, nothing runs");
            Arc::new(MockRuntime::new())
        }
        RuntimeKind::Youki => Arc::new(youki_runtime(config).await?),
    };
    let strategy = match config.scoring {
        Scoring::Spread => ScoringStrategy::Spread,
        Scoring::Binpack => ScoringStrategy::BinPack,
    };
    let scheduler = Arc::new(SimpleScheduler::new(SimpleSchedulerConfig {
        strategy,
        ..SimpleSchedulerConfig::default()
    }));
    info!(node = %id, data_dir = %config.data_dir.display(), "node identity loaded");
    let metrics = Arc::new(
        Metrics::new().map_err(|e| Error::Config(format!("creating the metrics registry: {e}")))?,
    );
    Ok(Deps {
        store,
        runtime,
        cluster: Arc::new(MockClusterManager::new(local)),
        scheduler,
        metrics,
        events: EventHub::new(EVENT_HUB_CAPACITY),
    })
}

/// Opens the youki runtime, or says what the host lacks. Never falls back.
async fn youki_runtime(config: &DaemonConfig) -> Result<YoukiRuntime> {
    let s = &config.runtime_settings;
    let mut cfg = YoukiConfig::new(config.data_dir.join("runtime"));
    cfg.insecure_registries = s.insecure_registries.clone();
    cfg.pull_policy = s.pull_policy;
    cfg.image_cache_bytes = s.image_cache_bytes;
    cfg.credentials = s
        .registry_auth
        .iter()
        .map(|(host, a)| {
            (
                host.clone(),
                RegistryCredentials {
                    username: a.username.clone(),
                    password: a.password.clone(),
                },
            )
        })
        .collect();
    let runtime = YoukiRuntime::new(cfg).await.map_err(|why| {
        Error::Config(format!(
            "the youki container runtime cannot start: {why}. Run the daemon as root on a host \
             with cgroups mounted, or pass --runtime mock for simulated containers (tests and \
             demos; nothing runs)"
        ))
    })?;
    info!(
        writable_layers = %runtime.layer_mode(),
        cgroups = ?runtime.cgroup_layout(),
        "container runtime: youki"
    );
    Ok(runtime)
}

/// A running daemon.
pub struct Daemon {
    /// The orchestrator (library API).
    pub orchestrator: Arc<Orchestrator>,
    /// Where the REST API listens.
    pub api_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

const COMPONENTS: [&str; 4] = ["store", "reconciler", "runtime", "cluster"];

impl Daemon {
    /// Builds and starts everything `config` names; the API port is bound
    /// before the reconciler starts, so a taken port fails fast.
    pub async fn start(config: &DaemonConfig) -> Result<Self> {
        let deps = build_deps(config).await?;
        let listener = TcpListener::bind(config.api_addr)
            .await
            .map_err(|e| Error::Config(format!("binding the API to {}: {e}", config.api_addr)))?;
        let api_addr = listener
            .local_addr()
            .map_err(|e| Error::Config(format!("reading the API's address: {e}")))?;
        let health = Arc::new(Health::new());
        for c in COMPONENTS {
            health.set_starting(c);
        }
        let cancel = CancellationToken::new();
        let orchestrator = Arc::new(
            Orchestrator::start(config.reconciler.clone(), deps, cancel.child_token()).await?,
        );
        for c in COMPONENTS {
            health.set_ok(c);
        }
        health.set_ready(true);
        let tasks = TaskTracker::new();
        let state = AppState::new(
            Arc::clone(&orchestrator),
            config.auth.clone(),
            Arc::clone(&health),
        );
        let router = rest::router(state);
        let api_cancel = cancel.child_token();
        tasks.spawn(async move {
            if let Err(e) = rest::serve(listener, router, api_cancel).await {
                error!(error = %e, "the REST API stopped");
            }
        });
        tasks.spawn(rest::refresh_gauges(
            Arc::clone(&orchestrator),
            Duration::from_secs(1),
            cancel.child_token(),
        ));
        tasks.spawn(watch_health(
            Arc::clone(&orchestrator),
            health,
            cancel.child_token(),
        ));
        tasks.close();
        Ok(Self {
            orchestrator,
            api_addr,
            cancel,
            tasks,
        })
    }

    /// Stops everything, letting in-flight work finish.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.tasks.wait().await;
        match Arc::try_unwrap(self.orchestrator) {
            Ok(o) => o.shutdown().await,
            Err(_) => warn!("orchestrator still shared at shutdown; not waiting for it"),
        }
    }
}

/// Checks the store every few seconds and reports it in `/health`.
async fn watch_health(orch: Arc<Orchestrator>, health: Arc<Health>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {
                match orch.deps().store.health_check().await {
                    Ok(()) => health.set_ok("store"),
                    Err(e) => health.set_failing("store", e.to_string()),
                }
                if orch.is_finished() {
                    health.set_failing("reconciler", "the reconcile loop has stopped");
                }
            }
        }
    }
}

/// How long shutdown may take before the daemon exits anyway.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Starts the daemon, waits for SIGINT or SIGTERM, and shuts down gracefully;
/// a second signal exits at once.
pub async fn run_until_signal(config: DaemonConfig) -> anyhow::Result<()> {
    use anyhow::Context;
    let daemon = Daemon::start(&config)
        .await
        .context("starting the daemon")?;
    info!(runtime = ?config.runtime, store = ?config.store, "orchestrator_daemon running");
    let signal = wait_for_signal()
        .await
        .context("installing signal handlers")?;
    info!(signal, "shutting down (send it again to exit at once)");
    let stop = daemon.stop();
    tokio::select! {
        () = stop => info!("stopped cleanly"),
        second = wait_for_signal() => {
            warn!(signal = ?second.ok(), "second signal: exiting at once");
            std::process::exit(130);
        }
        () = tokio::time::sleep(SHUTDOWN_TIMEOUT) => {
            warn!("shutdown took longer than {SHUTDOWN_TIMEOUT:?}; exiting");
        }
    }
    Ok(())
}
