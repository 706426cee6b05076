//! Which router a control plane on etcd serves: its own routes plus the
//! forwarding to the leader while it follows, the full API while it leads.

use std::sync::{Arc, RwLock};

use axum::extract::Request;
use axum::Router;
use orchestrator_rest::network::Leader;
use orchestrator_shared_types::NodeId;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::warn;

use crate::config::DaemonConfig;

/// The router served, swapped when the daemon starts or stops leading.
pub(super) type Current = Arc<RwLock<Router>>;

/// The leader as the election names it, kept current.
pub(super) fn follow_leader(
    mut raw: watch::Receiver<Option<Vec<u8>>>,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> watch::Receiver<Option<Leader>> {
    let (tx, rx) = watch::channel(None);
    let cancel = cancel.child_token();
    tasks.spawn(async move {
        loop {
            let value = raw.borrow_and_update().clone();
            let decoded = value.and_then(|v| match serde_json::from_slice::<Leader>(&v) {
                Ok(l) => Some(l),
                Err(e) => {
                    warn!(error = %e, "the elected leader's value is not one a control plane wrote");
                    None
                }
            });
            tx.send_replace(decoded);
            tokio::select! {
                () = cancel.cancelled() => break,
                changed = raw.changed() => if changed.is_err() { break },
            }
        }
    });
    rx
}

/// A follower's router: its own routes, the rest forwarded to the leader.
pub(super) fn follower_router(
    own: &Router,
    health: &Router,
    (leader, peers): (
        &watch::Receiver<Option<Leader>>,
        Option<Arc<peer_tls::PeerClients>>,
    ),
    node: NodeId,
    config: &DaemonConfig,
) -> Router {
    own.clone()
        .merge(health.clone())
        .merge(crate::forward::router(
            leader.clone(),
            (node, peers),
            config.auth.body_limit,
        ))
}

/// Serves whichever router is current; with `tls`, to member nodes over
/// mutual TLS as well, on the same port.
pub(super) fn serve(
    tasks: &TaskTracker,
    (listener, tls): (
        TcpListener,
        Option<(Arc<peer_tls::NodeTls>, peer_tls::Members)>,
    ),
    current: Current,
    cancel: &CancellationToken,
) {
    let router = Router::new().fallback(move |req: Request| {
        let router = current
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        async move {
            match router.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    });
    crate::run::spawn_api(tasks, (listener, tls), router, cancel);
}

pub(super) fn set(current: &Current, router: Router) {
    match current.write() {
        Ok(mut r) => *r = router,
        Err(poisoned) => *poisoned.into_inner() = router,
    }
}
