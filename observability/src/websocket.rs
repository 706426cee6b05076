//! The events WebSocket (`GET /api/v1/events`, SPEC §13).
//!
//! Client → server: `{"type": "subscribe", "topics": ["nodes", "workloads",
//! "instances", "cluster"]}`; no subscription (or an empty list) means every
//! topic, and a later subscribe replaces the earlier one. The server answers
//! a subscribe with `{"type": "subscribed", "timestamp", "data": {"topics":
//! [...]}}` once it applies to the events that follow, and anything it cannot
//! understand (bad JSON, an unknown `type` or topic, a binary frame) with
//! `{"type": "error", "timestamp", "data": {"code": "bad_request",
//! "message"}}`; the connection stays open and an invalid subscribe changes
//! nothing.
//!
//! Server → client: each [`Event`] of a subscribed topic as one JSON text
//! frame, in publishing order. A client that reads too slowly gets `{"type":
//! "lagged", "timestamp", "data": {"missed": N}}` and continues with the
//! oldest events the hub still holds; it never slows the hub or other
//! clients, because each connection reads its own broadcast receiver and
//! holds no lock. Pings are answered; a close frame ends the connection.
//!
//! A connection holds only its receiver, never the hub: once every
//! [`EventHub`] clone is dropped (the daemon shutting down), each connection
//! sends a close frame and ends.

use std::collections::BTreeSet;
use std::future::Future;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use futures::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::events::{Event, EventHub, Topic};

/// Path of the events WebSocket.
pub const EVENTS_PATH: &str = "/api/v1/events";

/// Largest message a client may send (subscriptions are tiny).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// `GET /api/v1/events` upgraded to [`serve_events`], without authentication:
/// for tests; the daemon checks the signature first and then calls
/// [`upgrade_events`].
pub fn events_route(hub: EventHub) -> Router {
    Router::new()
        .route(EVENTS_PATH, get(events_handler))
        .with_state(hub)
}

async fn events_handler(State(hub): State<EventHub>, ws: WebSocketUpgrade) -> Response {
    upgrade_events(ws, hub)
}

/// Completes the upgrade of an (already authorised) request and serves the
/// hub's events on it.
///
/// The subscription starts now, before the upgrade response is sent, so the
/// client sees every event published after its handshake completed. Client
/// messages are limited to [`MAX_CLIENT_MESSAGE_BYTES`].
pub fn upgrade_events(ws: WebSocketUpgrade, hub: EventHub) -> Response {
    let events = hub.subscribe();
    ws.max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve_subscription(socket, events))
}

/// Serves the hub's events on `socket` until the client closes it or the hub
/// is gone; subscribes when called, and keeps no clone of the hub.
pub fn serve_events(socket: WebSocket, hub: EventHub) -> impl Future<Output = ()> + Send {
    serve_subscription(socket, hub.subscribe())
}

/// Serves the events arriving on `events` (a receiver from
/// [`EventHub::subscribe`]) on `socket`, as described in the module doc.
pub async fn serve_subscription(socket: WebSocket, mut events: broadcast::Receiver<Event>) {
    let (mut sink, mut stream) = socket.split();
    let mut topics = TopicFilter::default();
    loop {
        let outgoing = tokio::select! {
            incoming = stream.next() => match incoming {
                None => break,
                Some(Err(error)) => {
                    tracing::debug!(error = %error, "events websocket: reading from client");
                    break;
                }
                Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Text(text))) => topics.handle(text.as_str()),
                Some(Ok(Message::Binary(_))) => {
                    control_error("binary frames are not understood; send JSON text")
                }
            },
            received = events.recv() => match received {
                Ok(event) if topics.accepts(event.topic) => to_json(&event),
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "events websocket: client lagged");
                    control("lagged", json!({ "missed": missed }))
                }
                Err(RecvError::Closed) => {
                    if let Err(error) = sink.send(Message::Close(None)).await {
                        tracing::debug!(error = %error, "events websocket: closing after hub shut down");
                    }
                    break;
                }
            },
        };
        let Some(text) = outgoing else { continue };
        if let Err(error) = sink.send(Message::Text(text.into())).await {
            tracing::debug!(error = %error, "events websocket: sending to client");
            break;
        }
    }
}

/// The topics a client asked for; empty means all.
#[derive(Debug, Default)]
struct TopicFilter {
    topics: BTreeSet<Topic>,
}

impl TopicFilter {
    fn accepts(&self, topic: Topic) -> bool {
        self.topics.is_empty() || self.topics.contains(&topic)
    }

    /// Applies one client text message; returns the reply.
    fn handle(&mut self, text: &str) -> Option<String> {
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => message,
            Err(error) => return control_error(&format!("invalid message: {error}")),
        };
        match message {
            ClientMessage::Subscribe { topics } => {
                let mut wanted = BTreeSet::new();
                let mut unknown = Vec::new();
                for name in topics {
                    match name.parse::<Topic>() {
                        Ok(topic) => {
                            wanted.insert(topic);
                        }
                        Err(_) => unknown.push(name),
                    }
                }
                if !unknown.is_empty() {
                    return control_error(&format!(
                        "unknown topics {unknown:?}; expected nodes, workloads, instances or cluster"
                    ));
                }
                self.topics = wanted;
                let active: Vec<Topic> = if self.topics.is_empty() {
                    Topic::ALL.to_vec()
                } else {
                    self.topics.iter().copied().collect()
                };
                control("subscribed", json!({ "topics": active }))
            }
        }
    }
}

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientMessage {
    /// Replace the subscription.
    Subscribe {
        /// Topic names; empty means all.
        #[serde(default)]
        topics: Vec<String>,
    },
}

/// A message of the server's own (`subscribed`, `lagged`, `error`).
#[derive(Debug, Serialize)]
struct Control<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: DateTime<Utc>,
    data: serde_json::Value,
}

fn control(kind: &str, data: serde_json::Value) -> Option<String> {
    to_json(&Control {
        kind,
        timestamp: Utc::now(),
        data,
    })
}

fn control_error(message: &str) -> Option<String> {
    control(
        "error",
        json!({ "code": "bad_request", "message": message }),
    )
}

/// JSON text of `value`; serialising our own types cannot fail, but if it
/// did the message is logged and skipped rather than ending the connection.
fn to_json<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_string(value) {
        Ok(text) => Some(text),
        Err(error) => {
            tracing::warn!(error = %error, "events websocket: serialising a message");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(reply: Option<String>) -> serde_json::Value {
        serde_json::from_str(&reply.unwrap()).unwrap()
    }

    #[test]
    fn subscribe_sets_filter_and_acknowledges() {
        let mut filter = TopicFilter::default();
        assert!(filter.accepts(Topic::Nodes));
        let reply = parse(filter.handle(r#"{"type":"subscribe","topics":["instances","nodes"]}"#));
        assert_eq!(reply["type"], "subscribed");
        assert_eq!(reply["data"]["topics"], json!(["nodes", "instances"]));
        assert!(filter.accepts(Topic::Nodes));
        assert!(!filter.accepts(Topic::Workloads));
    }

    #[test]
    fn unknown_topic_is_an_error_and_keeps_filter() {
        let mut filter = TopicFilter::default();
        filter.handle(r#"{"type":"subscribe","topics":["nodes"]}"#);
        let reply = parse(filter.handle(r#"{"type":"subscribe","topics":["pods","nodes"]}"#));
        assert_eq!(reply["type"], "error");
        assert_eq!(reply["data"]["code"], "bad_request");
        assert!(reply["data"]["message"].as_str().unwrap().contains("pods"));
        assert!(filter.accepts(Topic::Nodes));
        assert!(!filter.accepts(Topic::Cluster));
    }

    #[test]
    fn empty_subscription_means_all() {
        let mut filter = TopicFilter::default();
        filter.handle(r#"{"type":"subscribe","topics":["nodes"]}"#);
        let reply = parse(filter.handle(r#"{"type":"subscribe","topics":[]}"#));
        assert_eq!(reply["data"]["topics"].as_array().unwrap().len(), 4);
        assert!(filter.accepts(Topic::Cluster));
    }

    #[test]
    fn garbage_is_an_error() {
        let mut filter = TopicFilter::default();
        for text in ["not json", r#"{"type":"unsubscribe"}"#, r#"{"topics":[]}"#] {
            assert_eq!(parse(filter.handle(text))["type"], "error", "{text}");
        }
    }
}
