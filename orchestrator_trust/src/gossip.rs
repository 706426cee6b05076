//! Evidence by gossip (MYCELIAL.md §3: observations and attestations travel
//! as an append-only log; every control plane verifies what it receives and
//! computes scores itself; scores are never gossiped).
//!
//! - Every daemon publishes the evidence it signed or was handed — heartbeat
//!   observations of up to [`PEERS_PER_ROUND`] members of other operators
//!   per round ([`run_prober`] on workers), the control plane's outcome
//!   observations (its own heartbeat observations stay in its store), and
//!   attestations posted to its API — in batches: a JSON array of signed
//!   [`Entry`]s under the
//!   chitchat key `ev:<start ms hex>-<seq>` (unique across restarts), with
//!   gossip's time to live (an hour), so each member carries a sliding window
//!   of its recent evidence and the stored log keeps the rest.
//! - The control plane reads every member's batches each round and passes
//!   each entry through [`mycelial::evidence::EvidenceLog::receive`]: the
//!   signature must verify, observer and subject must be registered members
//!   of different operators, and node registrations never come by gossip.
//!   Anything else — a score, a self-signed observation, junk — is refused
//!   and changes nothing. Gossip names the publisher but proves nothing (see
//!   [`cluster_manager_interface::Gossiped`]); the entries carry their own
//!   signatures, so a replayed or misattributed batch can add nothing new.
//! - A batch refused only because it names a node not registered here yet is
//!   read again next round; the rest is read once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use cluster_manager_interface::{ClusterManager, MAX_GOSSIP_VALUE};
use ed25519_dalek::SigningKey;
use mycelial::evidence::{sign_observation, Entry, Observation, ObservationKind, Rejected};
use orchestrator_shared_types::NodeId;
use rand::seq::SliceRandom;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{TrustError, TrustService};

/// Key prefix of evidence batches.
pub const PREFIX: &str = "ev:";

/// Entries a received batch may hold at most (more is refused whole).
const MAX_BATCH_ENTRIES: usize = 512;

/// Evidence waiting to be gossiped, and the keys it goes out under.
#[derive(Debug)]
pub struct Outbox {
    start: u64,
    seq: AtomicU64,
    pending: Mutex<Vec<Entry>>,
}

impl Default for Outbox {
    fn default() -> Self {
        let start = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        Self {
            start,
            seq: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
        }
    }
}

impl Outbox {
    /// Queues `entry` for the next [`Outbox::flush`] (registrations are
    /// never gossiped: receivers take them from membership only).
    pub fn push(&self, entry: Entry) {
        if !matches!(entry, Entry::Node(_)) {
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(entry);
        }
    }

    /// Publishes what is queued in batches that fit a gossip value; how many
    /// entries went out. What cannot be published is dropped with a warning
    /// (the stored log keeps it; gossip is a window, not the archive).
    pub async fn flush(&self, cluster: &dyn ClusterManager) -> usize {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut sent = 0;
        for batch in batches(&pending) {
            let key = format!(
                "{PREFIX}{:x}-{}",
                self.start,
                self.seq.fetch_add(1, Ordering::Relaxed)
            );
            match cluster.publish(&key, &batch.text).await {
                Ok(true) => sent += batch.entries,
                // No gossip (a standalone node): nobody to tell.
                Ok(false) => return 0,
                Err(e) => warn!(key, error = %e, "publishing evidence"),
            }
        }
        sent
    }
}

/// One gossip value: a JSON array and how many entries it holds.
struct Batch {
    text: String,
    entries: usize,
}

/// Splits `entries` into JSON arrays of at most [`MAX_GOSSIP_VALUE`] bytes
/// (an entry too big on its own is skipped).
fn batches(entries: &[Entry]) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut text = String::from("[");
    let mut n = 0;
    for e in entries {
        let Ok(one) = serde_json::to_string(e) else {
            continue;
        };
        if one.len() + 2 > MAX_GOSSIP_VALUE {
            warn!(
                bytes = one.len(),
                "an evidence entry too big to gossip; kept locally only"
            );
            continue;
        }
        if text.len() + one.len() + 2 > MAX_GOSSIP_VALUE {
            text.push(']');
            out.push(Batch {
                text: std::mem::replace(&mut text, String::from("[")),
                entries: std::mem::take(&mut n),
            });
        }
        if n > 0 {
            text.push(',');
        }
        text.push_str(&one);
        n += 1;
    }
    if n > 0 {
        text.push(']');
        out.push(Batch { text, entries: n });
    }
    out
}

/// What one round of reading gossip did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Entries new to the log, verified and stored.
    pub accepted: usize,
    /// Entries already in the log.
    pub known: usize,
    /// Entries (or unreadable batches) refused.
    pub refused: usize,
}

/// The batches already read, by (publisher, key).
#[derive(Debug, Default)]
pub struct Inbox {
    seen: Mutex<HashSet<(NodeId, String)>>,
}

impl TrustService {
    /// Publishes the evidence this node added since the last round.
    pub async fn publish_evidence(&self, cluster: &dyn ClusterManager) -> usize {
        self.outbox.flush(cluster).await
    }

    /// Reads the evidence other members gossip and keeps what verifies.
    pub async fn receive_gossip(&self, cluster: &dyn ClusterManager) -> Received {
        let mut got = Received::default();
        let values = match cluster.gossiped(PREFIX).await {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "reading gossiped evidence");
                return got;
            }
        };
        let fresh: Vec<_> = {
            let mut seen = self
                .inbox
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Forget what gossip itself forgot.
            let live: HashSet<(NodeId, &str)> =
                values.iter().map(|g| (g.node, g.key.as_str())).collect();
            seen.retain(|(n, k)| live.contains(&(*n, k.as_str())));
            values
                .into_iter()
                .filter(|g| !seen.contains(&(g.node, g.key.clone())))
                .collect()
        };
        for g in fresh {
            let mut retry = false;
            match parse_batch(&g.value) {
                Ok(entries) => {
                    for entry in entries {
                        match self.receive(entry).await {
                            Ok(true) => got.accepted += 1,
                            Ok(false) => got.known += 1,
                            Err(TrustError::Rejected(Rejected::UnknownNode { .. })) => {
                                retry = true;
                                got.refused += 1;
                            }
                            Err(e) => {
                                debug!(from = %g.node, key = g.key, error = %e, "gossiped evidence refused");
                                got.refused += 1;
                            }
                        }
                    }
                }
                Err(why) => {
                    debug!(from = %g.node, key = g.key, why, "unreadable evidence batch");
                    got.refused += 1;
                }
            }
            if !retry {
                self.inbox
                    .seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((g.node, g.key));
            }
        }
        got
    }
}

/// A batch as gossiped: a JSON array of at most [`MAX_BATCH_ENTRIES`] entries.
fn parse_batch(text: &str) -> Result<Vec<Entry>, String> {
    if text.len() > MAX_GOSSIP_VALUE {
        return Err(format!("{} bytes", text.len()));
    }
    let entries: Vec<Entry> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(format!("{} entries", entries.len()));
    }
    Ok(entries)
}

/// Members a worker's prober observes per round at most, drawn at random
/// among those of other operators: every member of a small cluster, and a
/// bounded gossip volume in a big one (each observation is about 400 bytes
/// and stays in gossip for an hour).
pub const PEERS_PER_ROUND: usize = 8;

/// A worker's peer prober: every `period`, a heartbeat observation —
/// answered if the member is `Ready` as this node's failure detector sees it
/// — of up to [`PEERS_PER_ROUND`] other members run by other operators,
/// signed with this node's key and gossiped for the control plane.
pub async fn run_prober(
    key: SigningKey,
    cluster: std::sync::Arc<dyn ClusterManager>,
    period: Duration,
    cancel: CancellationToken,
) {
    let me = NodeId(key.verifying_key().to_bytes());
    let outbox = Outbox::default();
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let nodes = match cluster.list_nodes().await {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "listing members to observe");
                continue;
            }
        };
        let Some(operator) = nodes.iter().find(|n| n.id == me).map(|n| n.operator) else {
            continue;
        };
        let others: Vec<_> = nodes.iter().filter(|n| n.operator != operator).collect();
        let sample = others.choose_multiple(&mut rand::thread_rng(), PEERS_PER_ROUND);
        for node in sample {
            let obs = Observation {
                observer: me,
                subject: node.id,
                at: Utc::now(),
                kind: ObservationKind::Heartbeat {
                    answered: node.status == orchestrator_shared_types::NodeStatus::Ready,
                },
            };
            match sign_observation(&key, obs) {
                Ok(signed) => outbox.push(Entry::Observation(signed)),
                Err(e) => warn!(error = %e, "signing an observation"),
            }
        }
        outbox.flush(cluster.as_ref()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mycelial::evidence::{sign_observation, Observation};

    fn obs(i: u8) -> Entry {
        let key = SigningKey::from_bytes(&[i; 32]);
        let signed = sign_observation(
            &key,
            Observation {
                observer: NodeId(key.verifying_key().to_bytes()),
                subject: NodeId([9; 32]),
                at: Utc::now(),
                kind: ObservationKind::Heartbeat { answered: true },
            },
        )
        .expect("signing");
        Entry::Observation(signed)
    }

    #[test]
    fn batches_fit_a_gossip_value_and_read_back_whole() {
        let entries: Vec<Entry> = (0..400).map(|i| obs((i % 200) as u8 + 1)).collect();
        let out = batches(&entries);
        assert!(out.len() > 1, "400 observations need more than one value");
        let mut back = Vec::new();
        for b in &out {
            assert!(b.text.len() <= MAX_GOSSIP_VALUE);
            let parsed = parse_batch(&b.text).expect("a batch parses");
            assert_eq!(parsed.len(), b.entries);
            back.extend(parsed);
        }
        assert_eq!(back, entries);
    }

    #[test]
    fn junk_and_oversized_batches_are_refused() {
        assert!(parse_batch("{\"score\": 1.0}").is_err());
        assert!(parse_batch("[{\"score\": 1.0}]").is_err());
        let many = format!("[{}]", vec!["{}"; MAX_BATCH_ENTRIES + 1].join(","));
        assert!(parse_batch(&many).is_err());
    }
}
