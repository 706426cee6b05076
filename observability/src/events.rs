//! The event hub (SPEC §13): fans every node, workload, instance and cluster
//! event out to any number of subscribers.
//!
//! It is a tokio broadcast channel: [`EventHub::publish`] never blocks, and a
//! subscriber that reads too slowly loses the oldest events (its receiver
//! reports how many) instead of slowing the publisher or other subscribers.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::Error;

/// Capacity used by [`EventHub::default`].
pub const DEFAULT_CAPACITY: usize = 1024;

/// Largest capacity [`EventHub::new`] accepts; larger requests are reduced.
pub const MAX_CAPACITY: usize = 1 << 20;

/// What an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// Nodes joining, leaving, changing (`nodes`).
    Nodes,
    /// Workloads applied, scaled, deleted (`workloads`).
    Workloads,
    /// Instances placed, started, failing, removed (`instances`).
    Instances,
    /// The cluster as a whole (`cluster`).
    Cluster,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 4] = [
        Topic::Nodes,
        Topic::Workloads,
        Topic::Instances,
        Topic::Cluster,
    ];

    /// The wire name: `nodes`, `workloads`, `instances` or `cluster`.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Nodes => "nodes",
            Topic::Workloads => "workloads",
            Topic::Instances => "instances",
            Topic::Cluster => "cluster",
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Topic {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::UnknownTopic(s.to_owned()))
    }
}

/// One event. On the wire (JSON):
/// `{"type": "workloads.applied", "topic": "workloads", "timestamp": RFC3339, "data": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `<topic>.<what>`, e.g. `workloads.applied`, `instances.started`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it is about.
    pub topic: Topic,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// Details, shaped by `kind`.
    pub data: serde_json::Value,
}

impl Event {
    /// An event of kind `<topic>.<what>` stamped now, e.g.
    /// `Event::new(Topic::Workloads, "applied", json!({"id": id}))`.
    pub fn new(topic: Topic, what: &str, data: serde_json::Value) -> Self {
        Self {
            kind: format!("{topic}.{what}"),
            topic,
            timestamp: Utc::now(),
            data,
        }
    }
}

/// How many recent events [`EventHub::recent`] can return.
pub const HISTORY: usize = 1000;

/// An event with its position in the hub's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Position, from 1; pass the last one seen as `after` to get newer ones.
    pub seq: u64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// Fans events out to every subscriber and keeps the last [`HISTORY`] for
/// readers that poll; clone it freely (clones share one channel).
#[derive(Clone, Debug)]
pub struct EventHub {
    sender: broadcast::Sender<Event>,
    history: Arc<Mutex<History>>,
}

#[derive(Debug, Default)]
struct History {
    next: u64,
    events: VecDeque<RecordedEvent>,
}

impl EventHub {
    /// A hub that keeps the last `capacity` events for slow subscribers
    /// (at least 1, at most [`MAX_CAPACITY`]); a subscriber further behind
    /// than that is told how many it missed.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.clamp(1, MAX_CAPACITY));
        Self {
            sender,
            history: Arc::new(Mutex::new(History {
                next: 1,
                events: VecDeque::with_capacity(HISTORY),
            })),
        }
    }

    /// Up to `limit` of the last [`HISTORY`] events with `seq` above `after`,
    /// oldest first.
    pub fn recent(&self, after: u64, limit: usize) -> Vec<RecordedEvent> {
        let history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        history
            .events
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Sends `event` to every current subscriber without waiting; returns how
    /// many subscribers there were (none is fine: the event is dropped).
    pub fn publish(&self, event: Event) -> usize {
        {
            let mut history = self
                .history
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let seq = history.next;
            history.next += 1;
            if history.events.len() == HISTORY {
                history.events.pop_front();
            }
            history.events.push_back(RecordedEvent {
                seq,
                event: event.clone(),
            });
        }
        match self.sender.send(event) {
            Ok(receivers) => receivers,
            Err(broadcast::error::SendError(event)) => {
                tracing::trace!(kind = %event.kind, "event published with no subscriber");
                0
            }
        }
    }

    /// A receiver of every event published from now on. When it falls more
    /// than the capacity behind, `recv` answers
    /// [`RecvError::Lagged(n)`](broadcast::error::RecvError::Lagged) once and
    /// then continues with the oldest event still held.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// How many subscribers are currently attached.
    pub fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
    }
}

impl Default for EventHub {
    /// A hub of [`DEFAULT_CAPACITY`].
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::sync::broadcast::error::RecvError;

    #[test]
    fn recent_pages_the_last_events_in_order() {
        let hub = EventHub::new(4);
        for i in 0..(HISTORY as u64 + 5) {
            hub.publish(Event::new(Topic::Nodes, "joined", json!({ "i": i })));
        }
        let first = hub.recent(0, 3);
        assert_eq!(first.len(), 3);
        assert_eq!(first[0].seq, 6, "the oldest five fell out of the history");
        assert_eq!(first[0].event.data, json!({"i": 5}));
        let next = hub.recent(first[2].seq, 2);
        assert_eq!(next.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![9, 10]);
        assert!(hub.recent(HISTORY as u64 + 5, 10).is_empty());
        let wire = serde_json::to_value(&next[0]).unwrap();
        assert_eq!(wire["seq"], 9);
        assert_eq!(wire["type"], "nodes.joined");
    }

    #[test]
    fn event_wire_format() {
        let mut event = Event::new(Topic::Workloads, "applied", json!({"id": "w1"}));
        event.timestamp = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            value,
            json!({
                "type": "workloads.applied",
                "topic": "workloads",
                "timestamp": "2026-11-22T10:00:00Z",
                "data": {"id": "w1"},
            })
        );
        let back: Event = serde_json::from_value(value).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn topics_parse_and_print() {
        for topic in Topic::ALL {
            assert_eq!(topic.as_str().parse::<Topic>().unwrap(), topic);
            assert_eq!(
                serde_json::to_value(topic).unwrap(),
                json!(topic.to_string())
            );
        }
        assert!(matches!(
            "pods".parse::<Topic>(),
            Err(Error::UnknownTopic(t)) if t == "pods"
        ));
    }

    #[test]
    fn publish_without_subscriber_is_fine_and_zero_capacity_is_clamped() {
        let hub = EventHub::new(0);
        assert_eq!(hub.publish(Event::new(Topic::Cluster, "x", json!(null))), 0);
        let mut rx = hub.subscribe();
        assert_eq!(hub.subscriber_count(), 1);
        assert_eq!(hub.publish(Event::new(Topic::Cluster, "y", json!(null))), 1);
        assert_eq!(rx.try_recv().unwrap().kind, "cluster.y");
    }

    #[tokio::test]
    async fn slow_subscriber_lags_without_slowing_publisher() {
        let hub = EventHub::new(4);
        let mut slow = hub.subscribe();
        for i in 0..10 {
            hub.publish(Event::new(Topic::Nodes, "updated", json!(i)));
        }
        assert!(matches!(slow.recv().await, Err(RecvError::Lagged(6))));
        assert_eq!(slow.recv().await.unwrap().data, json!(6));
    }
}
