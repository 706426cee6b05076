//! Serving the API port to users and peers at once: [`PeerListener`] tells
//! TLS from plain HTTP by the first byte, finishes TLS handshakes off the
//! accept loop, and refuses a client certificate of a node that is not a
//! member; [`serve`] also refuses, on each request, a node that stopped
//! being one while connected.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use futures::future::BoxFuture;
use orchestrator_shared_types::NodeId;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tracing::{debug, info, warn};

use crate::{peer_node, NodeTls};

/// Whether a node is a member this node deals with (asked at each
/// handshake that presents a certificate, and on each request over it).
pub type Members = Arc<dyn Fn(NodeId) -> BoxFuture<'static, bool> + Send + Sync>;

/// Who is at the other end of a connection; handlers read it as
/// `ConnectInfo<PeerInfo>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The remote socket address.
    pub remote: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The member node that proved its key in the handshake; `None` on plain
    /// HTTP and on TLS without a client certificate.
    pub node: Option<NodeId>,
}

impl Connected<IncomingStream<'_, PeerListener>> for PeerInfo {
    fn connect_info(stream: IncomingStream<'_, PeerListener>) -> Self {
        *stream.remote_addr()
    }
}

/// A connection: plain TCP or TLS over it.
pub type PeerIo = Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>;

/// The first byte of a TLS handshake record; no HTTP request starts with it.
const TLS_HANDSHAKE: u8 = 0x16;
/// Longest wait for a connection's first byte and its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections in their first byte or handshake at once; more wait to
/// be accepted, so a flood of idle connections cannot exhaust memory.
const MAX_HANDSHAKES: usize = 512;

/// A TCP listener whose connections come out classified and, for TLS,
/// handshaken and admitted.
pub struct PeerListener {
    rx: mpsc::Receiver<(PeerIo, PeerInfo)>,
    local: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for PeerListener {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl PeerListener {
    /// Accepts on `listener`, with `server` for TLS and `members` to admit
    /// client certificates.
    pub fn new(
        listener: TcpListener,
        server: Arc<ServerConfig>,
        members: Members,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let accept = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(server),
            members,
            tx,
        ));
        Ok(Self { rx, local, accept })
    }
}

impl Listener for PeerListener {
    type Io = PeerIo;
    type Addr = PeerInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop ended (it only does when aborted): no more
            // connections, ever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(PeerInfo {
            remote: self.local,
            tls: false,
            node: None,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    members: Members,
    tx: mpsc::Sender<(PeerIo, PeerInfo)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                debug!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (acceptor, members, tx) = (acceptor.clone(), Arc::clone(&members), tx.clone());
        tokio::spawn(async move {
            let opened =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, open(stream, remote, &acceptor, &members))
                    .await;
            drop(permit);
            if let Ok(Some(conn)) = opened {
                // The server stopped: the connection is dropped with it.
                let _stopped = tx.send(conn).await;
            }
        });
    }
}

async fn open(
    stream: TcpStream,
    remote: SocketAddr,
    acceptor: &TlsAcceptor,
    members: &Members,
) -> Option<(PeerIo, PeerInfo)> {
    // Best effort: small requests and answers go out at once.
    let _nodelay = stream.set_nodelay(true);
    let mut first = [0_u8; 1];
    if stream.peek(&mut first).await.ok()? == 0 {
        return None;
    }
    if first[0] != TLS_HANDSHAKE {
        let info = PeerInfo {
            remote,
            tls: false,
            node: None,
        };
        return Some((Either::Left(stream), info));
    }
    let tls = match acceptor.accept(stream).await {
        Ok(tls) => tls,
        Err(e) => {
            refused(remote, None, &format!("TLS handshake failed: {e}"));
            return None;
        }
    };
    let node = peer_node(tls.get_ref().1.peer_certificates());
    if let Some(id) = node {
        if !members(id).await {
            refused(remote, Some(id), "not a member of this cluster");
            return None;
        }
    }
    let info = PeerInfo {
        remote,
        tls: true,
        node,
    };
    Some((Either::Right(tls), info))
}

/// Logs a refused connection, at most once a second: a stranger must not be
/// able to fill the log.
fn refused(remote: SocketAddr, node: Option<NodeId>, why: &str) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if LAST.swap(now, Ordering::Relaxed) != now {
        warn!(%remote, node = ?node.map(|n| n.short()), why, "peer connection refused");
    }
}

/// Refuses a request over a connection whose node is no longer a member.
async fn member_gate(State(members): State<Members>, req: Request, next: Next) -> Response {
    let node = req
        .extensions()
        .get::<ConnectInfo<PeerInfo>>()
        .and_then(|ConnectInfo(info)| info.node);
    if let Some(id) = node {
        if !members(id).await {
            refused(
                req.extensions()
                    .get::<ConnectInfo<PeerInfo>>()
                    .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0.remote),
                Some(id),
                "no longer a member of this cluster",
            );
            let body = serde_json::json!({"error": {
                "code": "forbidden",
                "message": format!("node {id} is not a member of this cluster"),
            }});
            return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
        }
    }
    next.run(req).await
}

/// Serves `router` on `listener` to users (plain HTTP or TLS) and to member
/// nodes (mutual TLS as `tls`) until `shutdown` completes. Handlers see who
/// is calling as `ConnectInfo<PeerInfo>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: &NodeTls,
    members: Members,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let peer = PeerListener::new(listener, tls.server_config(), Arc::clone(&members))?;
    info!("listening on http://{addr} (and with mutual TLS for nodes, on the same port)");
    let router = router.layer(axum::middleware::from_fn_with_state(members, member_gate));
    axum::serve(
        peer,
        router.into_make_service_with_connect_info::<PeerInfo>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
