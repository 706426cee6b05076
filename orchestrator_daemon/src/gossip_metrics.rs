//! Gossip counters and this node's own container count in `/metrics`,
//! registered only in cluster mode so a standalone node exposes none of them.

use cluster_manager::gossip::DropReason;
use cluster_manager::GossipStats;
use observability::metrics::Metrics;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

/// The gossip series.
pub struct GossipMetrics {
    rejected: IntCounter,
    sent: IntCounter,
    received: IntCounter,
    live: IntGauge,
    dead: IntGauge,
    dropped: IntCounterVec,
    /// Containers running on this node, as its own runtime says.
    pub local_containers: IntGauge,
}

fn counter(m: &Metrics, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    m.registry().register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(m: &Metrics, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    m.registry().register(Box::new(g.clone()))?;
    Ok(g)
}

/// Raises `c` to `total` (counters only go up).
fn catch_up(c: &IntCounter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

impl GossipMetrics {
    /// Registers the series in `metrics`' registry.
    pub fn register(metrics: &Metrics) -> prometheus::Result<Self> {
        Ok(Self {
            rejected: counter(
                metrics,
                "orchestrator_gossip_rejected_records_total",
                "Gossip node records ignored because their signature or contents did not verify",
            )?,
            sent: counter(
                metrics,
                "orchestrator_gossip_bytes_sent_total",
                "Bytes sent by gossip",
            )?,
            received: counter(
                metrics,
                "orchestrator_gossip_bytes_received_total",
                "Bytes received by gossip",
            )?,
            live: gauge(
                metrics,
                "orchestrator_gossip_peers_live",
                "Peers (this node included) the failure detector considers alive",
            )?,
            dead: gauge(
                metrics,
                "orchestrator_gossip_peers_dead",
                "Peers the failure detector considers dead",
            )?,
            dropped: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "orchestrator_gossip_packets_dropped_total",
                        "Gossip packets dropped by the sealing layer, by reason (unsealed, \
                         unknown_key, auth_failed, truncated, bad_version, undecodable, oversize)",
                    ),
                    &["reason"],
                )?;
                metrics.registry().register(Box::new(c.clone()))?;
                // Every reason present from the start, at 0.
                for r in DropReason::ALL {
                    c.with_label_values(&[r.as_str()]);
                }
                c
            },
            local_containers: gauge(
                metrics,
                "orchestrator_node_containers_running",
                "Containers running on this node, as its own runtime reports them",
            )?,
        })
    }

    /// Copies `stats` into the series.
    pub fn update(&self, stats: &GossipStats) {
        catch_up(&self.rejected, stats.rejected_records);
        catch_up(&self.sent, stats.bytes_sent);
        catch_up(&self.received, stats.bytes_received);
        for r in DropReason::ALL {
            catch_up(
                &self.dropped.with_label_values(&[r.as_str()]),
                stats.packets_dropped.get(r),
            );
        }
        self.live
            .set(i64::try_from(stats.live_nodes).unwrap_or(i64::MAX));
        self.dead
            .set(i64::try_from(stats.dead_nodes).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_manager::gossip::DroppedPackets;

    #[test]
    fn dropped_packets_are_exported_per_reason() {
        let metrics = Metrics::new().unwrap();
        let g = GossipMetrics::register(&metrics).unwrap();
        let text = metrics.encode().unwrap();
        assert!(
            text.contains("orchestrator_gossip_packets_dropped_total{reason=\"unknown_key\"} 0"),
            "every reason is exported from the start:\n{text}"
        );
        let stats = GossipStats {
            packets_dropped: DroppedPackets {
                auth_failed: 3,
                unsealed: 7,
                ..DroppedPackets::default()
            },
            ..GossipStats::default()
        };
        g.update(&stats);
        g.update(&stats);
        let text = metrics.encode().unwrap();
        assert!(
            text.contains("orchestrator_gossip_packets_dropped_total{reason=\"auth_failed\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("orchestrator_gossip_packets_dropped_total{reason=\"unsealed\"} 7"),
            "{text}"
        );
    }
}
