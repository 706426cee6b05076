//! [`SealedTransport`]: chitchat's transport with every datagram sealed with
//! the cluster's [`Keyring`] (format: `keyring`), counted like
//! `CountingTransport` (wire bytes) and with dropped packets counted per
//! reason and logged at most about once a second.
//!
//! chitchat 0.13 keeps the encoding of its messages private (its `Socket`
//! trait passes decoded envelopes; upstream issue quickwit-oss/chitchat#207
//! asks to make it public). Rather than fork chitchat or re-implement its
//! wire format, each sealed socket runs chitchat's own `UdpSocket` as a codec
//! over two private loopback pairs:
//!
//! - encoding: chitchat's encoder socket sends the envelope to our `tap`
//!   socket, which is `connect`ed to the encoder, so the kernel delivers it
//!   nothing else; the bytes are sealed and sent on the wire socket;
//! - decoding: a packet from the wire is opened, then sent by our `injector`
//!   (connected) to chitchat's decoder socket; what the decoder returns is
//!   accepted only if it came from the injector, and is attributed to the
//!   wire sender.
//!
//! A plaintext is in flight on the decoding pair between two awaits; the
//! socket remembers it (`pending`) so that a `recv` cancelled by chitchat's
//! `select!` loses nothing, and gives up on it after [`CODEC_TIMEOUT`] (a
//! sealed packet whose plaintext chitchat cannot decode: only a key holder
//! can make one), then replaces the pair so a late copy cannot be taken for
//! the next packet.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpTransport};
use chitchat::ChitchatEnvelope;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::warn;

use super::keyring::{Keyring, SEAL_OVERHEAD};
use super::transport::{add, Counters, DropReason};

/// Largest UDP payload (IPv4); chitchat fills datagrams up to it.
pub(crate) const MAX_DATAGRAM: usize = 65_507;
/// How long a plaintext may take through the loopback codec before it is
/// given up. A loopback datagram is queued at the receiver before `send`
/// returns, so this only bounds how long a lost one (a firewall dropping
/// loopback traffic, or a key holder's undecodable plaintext) stalls gossip.
pub(crate) const CODEC_TIMEOUT: Duration = Duration::from_millis(100);
/// At most one log line per this period about dropped packets.
const LOG_PERIOD: Duration = Duration::from_secs(1);

/// Logs dropped packets at a bounded rate: one line, then silence for
/// [`LOG_PERIOD`], the next line saying how many were suppressed meanwhile.
#[derive(Default)]
pub(crate) struct DropLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl DropLog {
    /// Logs the drop unless a line was written less than [`LOG_PERIOD`] ago;
    /// returns how many drops the line it wrote reports as suppressed.
    pub(crate) fn dropped(&self, reason: DropReason, from: SocketAddr, len: usize) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < LOG_PERIOD => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = state.1;
                warn!(reason = reason.as_str(), from = %from, len,
                    suppressed, "dropped a gossip packet");
                *state = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

/// What a sealed socket needs: the keyring and the cluster id bound into
/// every packet, and the shared counters.
pub(crate) struct SealedTransport {
    pub keyring: Arc<Keyring>,
    pub cluster_id: String,
    pub counters: Arc<Counters>,
}

fn loopback() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
}

/// A chitchat socket on loopback and a tokio socket connected to it.
async fn codec_pair() -> anyhow::Result<(Box<dyn Socket>, UdpSocket)> {
    let chitchat = UdpTransport.open(loopback()).await?;
    let ours = UdpSocket::bind(loopback())
        .await
        .context("binding the gossip codec socket")?;
    ours.connect(chitchat.local_addr()?)
        .await
        .context("connecting the gossip codec socket")?;
    Ok((chitchat, ours))
}

#[async_trait]
impl Transport for SealedTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let wire = UdpSocket::bind(listen_addr)
            .await
            .with_context(|| format!("failed to bind to {listen_addr}/UDP for gossip"))?;
        let (encoder, tap) = codec_pair().await?;
        let (decoder, injector) = codec_pair().await?;
        Ok(Box::new(SealedSocket {
            wire,
            encoder,
            tap,
            decoder,
            injector,
            pending: None,
            send_buf: vec![0; MAX_DATAGRAM + 1],
            recv_buf: vec![0; MAX_DATAGRAM + 1],
            keyring: Arc::clone(&self.keyring),
            cluster_id: self.cluster_id.clone(),
            counters: Arc::clone(&self.counters),
            log: DropLog::default(),
        }))
    }
}

/// A plaintext handed to the decoder and not yet returned by it.
#[derive(Clone, Copy)]
struct Pending {
    from: SocketAddr,
    wire_len: usize,
    deadline: Instant,
}

struct SealedSocket {
    wire: UdpSocket,
    encoder: Box<dyn Socket>,
    /// Connected to `encoder`: receives only what it sends.
    tap: UdpSocket,
    decoder: Box<dyn Socket>,
    /// Connected to `decoder`.
    injector: UdpSocket,
    pending: Option<Pending>,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
    keyring: Arc<Keyring>,
    cluster_id: String,
    counters: Arc<Counters>,
    log: DropLog,
}

fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::OutOfMemory
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

impl SealedSocket {
    fn dropped(&self, reason: DropReason, from: SocketAddr, len: usize) {
        add(&self.counters.dropped[reason.index()], 1);
        // Whether this one was logged is the log's business.
        let _logged = self.log.dropped(reason, from, len);
    }

    /// Encodes `envelope` with chitchat's own encoder: the bytes it sends.
    async fn encode(&mut self, envelope: ChitchatEnvelope) -> anyhow::Result<usize> {
        // A datagram left by an encode cancelled half-way must not be taken
        // for this one.
        while self.tap.try_recv(&mut self.send_buf).is_ok() {}
        let tap_addr = self.tap.local_addr()?;
        self.encoder.send(tap_addr, envelope).await?;
        match tokio::time::timeout(CODEC_TIMEOUT, self.tap.recv(&mut self.send_buf)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(e).context("reading the encoded gossip message"),
            Err(_) => bail!("the gossip codec lost a message to send"),
        }
    }

    /// Replaces the decoding pair (after a plaintext was given up).
    async fn reset_decoder(&mut self) -> anyhow::Result<()> {
        let (decoder, injector) = codec_pair().await?;
        self.decoder = decoder;
        self.injector = injector;
        Ok(())
    }
}

#[async_trait]
impl Socket for SealedSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.wire
            .local_addr()
            .context("failed to get the gossip socket address")
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let n = self.encode(envelope).await?;
        let sealed = self.keyring.seal(&self.cluster_id, &self.send_buf[..n]);
        if sealed.len() > MAX_DATAGRAM {
            // chitchat sizes its messages to fill a datagram; sealing adds
            // SEAL_OVERHEAD bytes, which a full one has no room for.
            self.dropped(DropReason::Oversize, to, n + SEAL_OVERHEAD);
            return Ok(SendOutcome { num_bytes_sent: 0 });
        }
        let sent = self
            .wire
            .send_to(&sealed, to)
            .await
            .context("failed to send a gossip message to a peer")?;
        add(&self.counters.bytes_sent, sent);
        add(&self.counters.messages_sent, 1);
        Ok(SendOutcome {
            num_bytes_sent: sent,
        })
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        loop {
            if let Some(p) = self.pending {
                match tokio::time::timeout_at(p.deadline, self.decoder.recv()).await {
                    Ok(Ok(out)) => {
                        if out.from_addr != self.injector.local_addr()? {
                            // A local process wrote to the decoder directly.
                            self.dropped(DropReason::Unsealed, out.from_addr, 0);
                            continue;
                        }
                        self.pending = None;
                        add(&self.counters.bytes_received, p.wire_len);
                        add(&self.counters.messages_received, 1);
                        return Ok(RecvOutcome {
                            from_addr: p.from,
                            envelope: out.envelope,
                            num_bytes_received: p.wire_len,
                        });
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        self.pending = None;
                        self.dropped(DropReason::Undecodable, p.from, p.wire_len);
                        self.reset_decoder().await?;
                        continue;
                    }
                }
            }
            let (n, from) = match self.wire.recv_from(&mut self.recv_buf).await {
                Ok(r) => r,
                Err(e) if is_transient(&e) => {
                    warn!(error = %e, "transient gossip UDP recv error");
                    continue;
                }
                Err(e) => return Err(e).context("fatal gossip UDP recv error"),
            };
            let plain = match self.keyring.open(&self.cluster_id, &self.recv_buf[..n]) {
                Ok(plain) => plain,
                Err(reason) => {
                    self.dropped(reason, from, n);
                    continue;
                }
            };
            if let Err(e) = self.injector.send(&plain).await {
                // The loopback pair is broken, not the wire: lose this
                // packet and start a fresh pair.
                warn!(error = %e, "handing a gossip message to the decoder");
                self.reset_decoder().await?;
                continue;
            }
            self.pending = Some(Pending {
                from,
                wire_len: n,
                deadline: Instant::now() + CODEC_TIMEOUT,
            });
        }
    }
}

/// Packets dropped for `reason` (tests of the counters).
#[cfg(test)]
pub(crate) fn dropped_count(counters: &Counters, reason: DropReason) -> u64 {
    counters.dropped[reason.index()].load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::keyring::GossipKey;
    use chitchat::{ChitchatMessage, ProtocolVersion};

    fn envelope() -> ChitchatEnvelope {
        ChitchatEnvelope {
            version: ProtocolVersion::V0,
            message: ChitchatMessage::BadCluster,
        }
    }

    async fn sealed(keyring: &Arc<Keyring>) -> (Box<dyn Socket>, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let t = SealedTransport {
            keyring: Arc::clone(keyring),
            cluster_id: "c".into(),
            counters: Arc::clone(&counters),
        };
        (t.open(loopback()).await.unwrap(), counters)
    }

    #[tokio::test]
    async fn sealed_sockets_exchange_envelopes_and_drop_the_rest() {
        let ring = Arc::new(Keyring::new(&[GossipKey::generate()]).unwrap());
        let (mut a, ca) = sealed(&ring).await;
        let (mut b, cb) = sealed(&ring).await;
        let a_addr = a.local_addr().unwrap();
        let b_addr = b.local_addr().unwrap();

        // Garbage, then a plain chitchat packet, then a real one.
        let raw = UdpSocket::bind(loopback()).await.unwrap();
        raw.send_to(&[1u8; 80], b_addr).await.unwrap();
        let mut plain = UdpTransport.open(loopback()).await.unwrap();
        plain.send(b_addr, envelope()).await.unwrap();
        let sent = a.send(b_addr, envelope()).await.unwrap().num_bytes_sent;
        let got = b.recv().await.unwrap();
        assert_eq!(got.envelope, envelope());
        assert_eq!(got.from_addr, a_addr, "attributed to the wire sender");
        assert_eq!(got.num_bytes_received, sent);
        assert_eq!(sent, 4 + SEAL_OVERHEAD, "a 4-byte message, sealed");
        let stats = cb.snapshot();
        assert_eq!(stats.messages_received, 1);
        assert_eq!(stats.packets_dropped.unknown_key, 1, "{stats:?}");
        assert_eq!(stats.packets_dropped.unsealed, 1, "{stats:?}");
        assert_eq!(ca.snapshot().messages_sent, 1);

        // A packet sealed under the right key whose plaintext is not chitchat.
        raw.send_to(&ring.seal("c", b"not chitchat"), b_addr)
            .await
            .unwrap();
        a.send(b_addr, envelope()).await.unwrap();
        assert_eq!(b.recv().await.unwrap().envelope, envelope());
        assert_eq!(dropped_count(&cb, DropReason::Undecodable), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn drops_are_logged_at_most_once_a_second_with_the_count_suppressed() {
        let log = DropLog::default();
        let from = loopback();
        assert_eq!(log.dropped(DropReason::AuthFailed, from, 10), Some(0));
        for _ in 0..99 {
            assert_eq!(log.dropped(DropReason::AuthFailed, from, 10), None);
        }
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(log.dropped(DropReason::UnknownKey, from, 10), None);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            log.dropped(DropReason::UnknownKey, from, 10),
            Some(100),
            "the next line reports the 100 suppressed"
        );
        assert_eq!(log.dropped(DropReason::UnknownKey, from, 10), None);
    }

    #[tokio::test]
    async fn a_cancelled_recv_loses_nothing() {
        let ring = Arc::new(Keyring::new(&[GossipKey::generate()]).unwrap());
        let (mut a, _) = sealed(&ring).await;
        let (mut b, _) = sealed(&ring).await;
        let b_addr = b.local_addr().unwrap();
        a.send(b_addr, envelope()).await.unwrap();
        // Poll recv once (it reads the wire and hands the plaintext to the
        // decoder) and drop it, as chitchat's select! does on a tick.
        let got = match futures_poll_once(b.recv()).await {
            Some(done) => done.unwrap(),
            None => b.recv().await.unwrap(),
        };
        assert_eq!(got.envelope, envelope());
    }

    /// Polls `f` once; `Some` if it completed.
    async fn futures_poll_once<F: std::future::Future>(f: F) -> Option<F::Output> {
        let mut f = Box::pin(f);
        std::future::poll_fn(|cx| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    }
}
