//! `ui dashboard`: the web dashboard, served by `ui` on loopback (SPEC §2,
//! §16), the way `kubectl proxy` and `nomad ui` do it. The user's key never
//! leaves this process: the page talks only to this server, which makes
//! every call to the daemon as a request signed with the user's identity
//! (the same [`ApiClient`] as every other command), and subscribes to the
//! daemon's event WebSocket with a signed upgrade.
//!
//! - [`guard`]: who may use the page: loopback only, a random per-run token
//!   (in the URL printed, then an `HttpOnly`, `SameSite=Strict` cookie), and
//!   `Host` and `Origin` checked on every request, so that another local user
//!   or a web page in the same browser cannot drive it.
//! - [`views`]: the pages, rendered on the server with [maud]. Why maud: it
//!   escapes every value by default (workload names, node labels, log lines
//!   and reasons come from other users and strangers' nodes), is checked at
//!   compile time, and needs no template files or build step; the assets (one
//!   stylesheet, one small script) are embedded in the binary with
//!   `include_str!`. Nothing is fetched at run time, no CDN, no npm.
//! - [`live`]: live updates. The server relays the daemon's events (and a
//!   1-second check of approvals, which send no event) to the page's own
//!   WebSocket as "changed"; the page then fetches the fragment of the view
//!   it shows and swaps it in. Logs follow over server-sent events.
//!
//! [maud]: https://maud.lambda.xyz

mod actions;
mod guard;
mod live;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::routing::{get, post};
use axum::Router;

use crate::cli::DashboardArgs;
use crate::client::ApiClient;
use crate::commands::Context;

/// What every handler shares.
pub(crate) struct Dash {
    /// Signs every call to the daemon with the user's key.
    pub client: Arc<ApiClient>,
    /// The per-run secret of the page.
    pub token: String,
    /// The loopback port the page is served on.
    pub port: u16,
    /// "Something changed": to every open page.
    pub changed: tokio::sync::broadcast::Sender<live::Change>,
    /// Running instances and CPU in use, sampled over the last hour.
    pub samples: std::sync::Mutex<live::Samples>,
    /// Whether the daemon's event stream is connected.
    pub upstream: std::sync::atomic::AtomicBool,
    /// The user's config directory (for the agent tokens they signed).
    pub config_dir: Option<user_config::paths::ConfigDir>,
}

pub(crate) type State = Arc<Dash>;

/// The dashboard's routes over `dash`.
pub(crate) fn router(dash: State) -> Router {
    Router::new()
        .route("/", get(views::overview))
        .route("/workloads", get(views::workloads))
        .route("/workloads/{name}", get(views::workload))
        .route("/workloads/{name}/logs", get(views::logs))
        .route("/workloads/{name}/logs/stream", get(live::log_stream))
        .route("/workloads/{name}/scale", post(actions::scale))
        .route("/workloads/{name}/delete", post(actions::delete))
        .route("/nodes", get(views::nodes))
        .route("/nodes/{id}/{action}", post(actions::node))
        .route("/agents", get(views::agents))
        .route("/approvals/{id}/{verdict}", post(actions::approval))
        .route("/credits", get(views::credits))
        .route("/live", get(live::socket))
        .route("/assets/app.css", get(views::css))
        .route("/assets/app.js", get(views::js))
        .fallback(views::not_found)
        .layer(axum::middleware::from_fn_with_state(
            dash.clone(),
            guard::check,
        ))
        .with_state(dash)
}

/// Runs `ui dashboard`.
pub fn run(ctx: &Context, args: &DashboardArgs) -> anyhow::Result<()> {
    let client = Arc::new(ctx.client()?);
    let config_dir = ctx.config_dir().ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the dashboard's runtime")?;
    runtime.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let port = listener.local_addr()?.port();
        let (changed, _) = tokio::sync::broadcast::channel(64);
        let dash = Arc::new(Dash {
            client,
            token: guard::new_token(),
            port,
            changed,
            samples: std::sync::Mutex::new(live::Samples::default()),
            upstream: std::sync::atomic::AtomicBool::new(false),
            config_dir,
        });
        let url = format!("http://127.0.0.1:{port}/?token={}", dash.token);
        println!("dashboard of {} on {url}", dash.client.server());
        println!("(only this URL opens it; stop with Ctrl-C)");
        if !args.no_open {
            open_browser(&url);
        }
        live::spawn(dash.clone());
        axum::serve(listener, router(dash))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving the dashboard")
    })
}

/// Asks the desktop to open `url`; says so when it cannot.
fn open_browser(url: &str) {
    let opened = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if opened.is_err() {
        eprintln!("could not open a browser (xdg-open); open the URL above yourself");
    }
}
