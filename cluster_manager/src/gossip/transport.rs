//! [`GossipStats`] and the counters behind them, fed by [`CountingTransport`]:
//! chitchat's UDP transport wrapped to count bytes and messages (as quickwit
//! does for its gossip metrics), or the sealing transport of `sealed` when
//! the node has a gossip keyring.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpTransport};
use chitchat::ChitchatEnvelope;

/// Counters of the gossip membership, read by the daemon for its Prometheus
/// metrics. Byte and message counts are totals since start (only well-formed
/// chitchat messages are counted as received); node counts are as of the last
/// membership update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GossipStats {
    /// Gossiped node records rejected (bad signature, format or identity),
    /// each (chitchat id, record version) counted once.
    pub rejected_records: u64,
    /// Gossiped member lists ignored because a newer one is followed (a
    /// replay, or a late copy), each (chitchat id, version) counted once.
    /// Forged lists count as rejected records.
    pub stale_member_lists: u64,
    /// Version of the member list followed (0: none, or no pinned key).
    pub member_list_version: u64,
    /// Bytes of gossip messages sent.
    pub bytes_sent: u64,
    /// Bytes of gossip messages received.
    pub bytes_received: u64,
    /// Gossip messages sent.
    pub messages_sent: u64,
    /// Gossip messages received.
    pub messages_received: u64,
    /// Members, this node included, that the failure detector considers alive.
    pub live_nodes: u64,
    /// Members listed as `Down` (dead, not yet forgotten).
    pub dead_nodes: u64,
    /// Packets dropped by the sealing layer (not sealed, wrong key, tampered,
    /// truncated...), per reason; all zero when gossip is not sealed.
    pub packets_dropped: DroppedPackets,
}

/// Why a received packet was dropped; the `reason` label of the metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than a sealed header and tag.
    Truncated,
    /// A plain chitchat packet (its magic number) at a node that seals.
    Unsealed,
    /// An unknown format version.
    BadVersion,
    /// Sealed under a key this node does not hold (another cluster's, or a
    /// removed one).
    UnknownKey,
    /// Did not authenticate: tampered, or sealed for another cluster id.
    AuthFailed,
    /// Opened, but chitchat could not decode the plaintext.
    Undecodable,
    /// Sent side: the sealed packet would exceed the largest UDP datagram.
    Oversize,
}

impl DropReason {
    /// Every reason, in the order of [`DroppedPackets`]' fields.
    pub const ALL: [DropReason; 7] = [
        DropReason::Truncated,
        DropReason::Unsealed,
        DropReason::BadVersion,
        DropReason::UnknownKey,
        DropReason::AuthFailed,
        DropReason::Undecodable,
        DropReason::Oversize,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Unsealed => "unsealed",
            DropReason::BadVersion => "bad_version",
            DropReason::UnknownKey => "unknown_key",
            DropReason::AuthFailed => "auth_failed",
            DropReason::Undecodable => "undecodable",
            DropReason::Oversize => "oversize",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Gossip packets dropped by the sealing layer, per reason, since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DroppedPackets {
    /// Shorter than a sealed header and tag.
    pub truncated: u64,
    /// Plain (unsealed) chitchat packets.
    pub unsealed: u64,
    /// Unknown format version.
    pub bad_version: u64,
    /// Sealed under a key not installed here.
    pub unknown_key: u64,
    /// Failed authentication (tampered, or another cluster id).
    pub auth_failed: u64,
    /// Opened but not a chitchat message.
    pub undecodable: u64,
    /// Not sent: too large once sealed.
    pub oversize: u64,
}

impl DroppedPackets {
    /// The count of `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Truncated => self.truncated,
            DropReason::Unsealed => self.unsealed,
            DropReason::BadVersion => self.bad_version,
            DropReason::UnknownKey => self.unknown_key,
            DropReason::AuthFailed => self.auth_failed,
            DropReason::Undecodable => self.undecodable,
            DropReason::Oversize => self.oversize,
        }
    }

    /// The sum over every reason.
    pub fn total(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

/// The shared, lock-free counters behind [`GossipStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub rejected_records: AtomicU64,
    pub stale_member_lists: AtomicU64,
    pub member_list_version: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub live_nodes: AtomicU64,
    pub dead_nodes: AtomicU64,
    /// Per [`DropReason`], indexed by [`DropReason::index`].
    pub dropped: [AtomicU64; DropReason::ALL.len()],
}

impl Counters {
    /// The current values.
    pub fn snapshot(&self) -> GossipStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GossipStats {
            rejected_records: get(&self.rejected_records),
            stale_member_lists: get(&self.stale_member_lists),
            member_list_version: get(&self.member_list_version),
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            messages_sent: get(&self.messages_sent),
            messages_received: get(&self.messages_received),
            live_nodes: get(&self.live_nodes),
            dead_nodes: get(&self.dead_nodes),
            packets_dropped: DroppedPackets {
                truncated: get(&self.dropped[DropReason::Truncated.index()]),
                unsealed: get(&self.dropped[DropReason::Unsealed.index()]),
                bad_version: get(&self.dropped[DropReason::BadVersion.index()]),
                unknown_key: get(&self.dropped[DropReason::UnknownKey.index()]),
                auth_failed: get(&self.dropped[DropReason::AuthFailed.index()]),
                undecodable: get(&self.dropped[DropReason::Undecodable.index()]),
                oversize: get(&self.dropped[DropReason::Oversize.index()]),
            },
        }
    }
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// chitchat's [`UdpTransport`], counting what goes through it.
pub(crate) struct CountingTransport {
    pub counters: Arc<Counters>,
}

#[async_trait]
impl Transport for CountingTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let inner = UdpTransport.open(listen_addr).await?;
        Ok(Box::new(CountingSocket {
            inner,
            counters: Arc::clone(&self.counters),
        }))
    }
}

struct CountingSocket {
    inner: Box<dyn Socket>,
    counters: Arc<Counters>,
}

#[async_trait]
impl Socket for CountingSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.inner.local_addr()
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let outcome = self.inner.send(to, envelope).await?;
        add(&self.counters.bytes_sent, outcome.num_bytes_sent);
        add(&self.counters.messages_sent, 1);
        Ok(outcome)
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        let outcome = self.inner.recv().await?;
        add(&self.counters.bytes_received, outcome.num_bytes_received);
        add(&self.counters.messages_received, 1);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chitchat::ChitchatMessage;
    use chitchat::ProtocolVersion;

    #[tokio::test]
    async fn sent_and_received_messages_are_counted() {
        let counters = Arc::new(Counters::default());
        let transport = CountingTransport {
            counters: Arc::clone(&counters),
        };
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut a = transport.open(any).await.unwrap();
        let mut b = transport.open(any).await.unwrap();
        let envelope = ChitchatEnvelope {
            version: ProtocolVersion::V0,
            message: ChitchatMessage::BadCluster,
        };
        let sent = a
            .send(b.local_addr().unwrap(), envelope)
            .await
            .unwrap()
            .num_bytes_sent;
        let received = b.recv().await.unwrap().num_bytes_received;
        assert_eq!(sent, received);
        let stats = counters.snapshot();
        assert_eq!(stats.messages_sent, 1);
        assert_eq!(stats.messages_received, 1);
        assert_eq!(stats.bytes_sent, sent as u64);
        assert_eq!(stats.bytes_received, received as u64);
    }
}
