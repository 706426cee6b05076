//! What the etcd test binaries share: the cluster named by
//! `UNIVRS_TEST_ETCD` (or a skip), fresh prefixes, and a TCP proxy whose
//! connections a test can cut.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The cluster's endpoints, or `None` after saying why the test is skipped.
pub fn endpoints() -> Option<Vec<String>> {
    match std::env::var("UNIVRS_TEST_ETCD") {
        Ok(list) if !list.trim().is_empty() => {
            Some(list.split(',').map(|e| e.trim().to_owned()).collect())
        }
        _ => {
            eprintln!("SKIPPED: UNIVRS_TEST_ETCD is not set (scripts/test-etcd start)");
            None
        }
    }
}

/// A prefix no other test or run uses.
pub fn fresh_prefix() -> String {
    format!("/univrs-test/{}", uuid::Uuid::new_v4())
}

/// A TCP proxy to one etcd member whose connections the test can cut.
pub struct Proxy {
    addr: SocketAddr,
    /// Cancelled to cut the connections made since the last cut.
    cut: Arc<Mutex<CancellationToken>>,
    /// While set, new connections are closed at once.
    paused: Arc<AtomicBool>,
    /// Connections forwarded so far.
    forwarded: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let proxy = Proxy {
            addr: listener.local_addr().expect("the proxy's address"),
            cut: Arc::new(Mutex::new(CancellationToken::new())),
            paused: Arc::new(AtomicBool::new(false)),
            forwarded: Arc::new(AtomicUsize::new(0)),
            stop: CancellationToken::new(),
        };
        let (cut, paused, forwarded, stop) = (
            Arc::clone(&proxy.cut),
            Arc::clone(&proxy.paused),
            Arc::clone(&proxy.forwarded),
            proxy.stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                if paused.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let cut = cut.lock().expect("proxy cut token").clone();
                forwarded.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        () = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every connection and refuses new ones until [`Proxy::resume`].
    pub fn cut_and_pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        let mut cut = self.cut.lock().expect("proxy cut token");
        std::mem::take(&mut *cut).cancel();
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut_and_pause();
    }
}
