//! The events WebSocket end to end: axum on `127.0.0.1:0`, a real
//! tokio-tungstenite client.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use observability::{events_route, Event, EventHub, Topic};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest any single wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn serve(hub: EventHub) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, events_route(hub)).await {
            panic!("server: {error}");
        }
    });
    addr
}

/// Connects; once this returns, the server's subscription exists.
async fn connect(addr: SocketAddr) -> Client {
    let (client, _) = within(
        "connect",
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events")),
    )
    .await
    .expect("websocket handshake");
    client
}

/// The next text message as JSON (pings and pongs skipped).
async fn next_json(client: &mut Client) -> Value {
    loop {
        let message = within("a message", client.next())
            .await
            .expect("connection open")
            .expect("message");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn send_json(client: &mut Client, value: Value) {
    client
        .send(Message::Text(value.to_string().into()))
        .await
        .expect("send");
}

fn event(topic: Topic, what: &str, seq: usize) -> Event {
    Event::new(topic, what, json!({ "seq": seq }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_as_documented_json() {
    let hub = EventHub::new(256);
    let addr = serve(hub.clone()).await;
    let mut client = connect(addr).await;

    let kinds = [
        (Topic::Workloads, "applied"),
        (Topic::Instances, "started"),
        (Topic::Nodes, "updated"),
        (Topic::Cluster, "changed"),
        (Topic::Instances, "removed"),
    ];
    let published: Vec<Event> = (0..50)
        .map(|i| {
            let (topic, what) = kinds[i % kinds.len()];
            event(topic, what, i)
        })
        .collect();
    for e in &published {
        assert_eq!(hub.publish(e.clone()), 1);
    }
    for e in &published {
        let got = next_json(&mut client).await;
        assert_eq!(got, serde_json::to_value(e).expect("json"));
        assert_eq!(got["type"], e.kind.as_str());
        assert_eq!(got["topic"], e.topic.as_str());
        assert!(got["timestamp"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_filters_topics_and_bad_requests_keep_the_connection() {
    let hub = EventHub::new(256);
    let addr = serve(hub.clone()).await;
    let mut client = connect(addr).await;

    send_json(
        &mut client,
        json!({"type": "subscribe", "topics": ["instances", "cluster"]}),
    )
    .await;
    let ack = next_json(&mut client).await;
    assert_eq!(ack["type"], "subscribed");
    assert_eq!(ack["data"]["topics"], json!(["instances", "cluster"]));

    for (i, topic) in [
        Topic::Nodes,
        Topic::Instances,
        Topic::Workloads,
        Topic::Cluster,
        Topic::Instances,
    ]
    .into_iter()
    .enumerate()
    {
        hub.publish(event(topic, "x", i));
    }
    for (seq, topic) in [(1, "instances"), (3, "cluster"), (4, "instances")] {
        let got = next_json(&mut client).await;
        assert_eq!(
            (got["data"]["seq"].clone(), got["topic"].clone()),
            (json!(seq), json!(topic))
        );
    }

    // An unknown topic is an error, the connection and the filter stay.
    send_json(
        &mut client,
        json!({"type": "subscribe", "topics": ["pods"]}),
    )
    .await;
    let error = next_json(&mut client).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["data"]["code"], "bad_request");
    assert!(error["data"]["message"]
        .as_str()
        .expect("message")
        .contains("pods"));
    assert!(error["timestamp"].is_string());

    send_json(&mut client, json!({"type": "hello"})).await;
    assert_eq!(next_json(&mut client).await["type"], "error");
    client
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send");
    assert_eq!(next_json(&mut client).await["type"], "error");

    hub.publish(event(Topic::Nodes, "x", 5));
    hub.publish(event(Topic::Cluster, "x", 6));
    assert_eq!(next_json(&mut client).await["data"]["seq"], 6);

    // Subscribing again replaces the filter.
    send_json(
        &mut client,
        json!({"type": "subscribe", "topics": ["nodes"]}),
    )
    .await;
    assert_eq!(next_json(&mut client).await["type"], "subscribed");
    hub.publish(event(Topic::Cluster, "x", 7));
    hub.publish(event(Topic::Nodes, "x", 8));
    assert_eq!(next_json(&mut client).await["data"]["seq"], 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_and_close_ends_the_subscription() {
    let hub = EventHub::new(16);
    let addr = serve(hub.clone()).await;
    let mut client = connect(addr).await;
    assert_eq!(hub.subscriber_count(), 1);

    client
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping");
    let pong = within("pong", client.next())
        .await
        .expect("open")
        .expect("message");
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));

    client.send(Message::Close(None)).await.expect("close");
    // The server answers the close and ends the connection.
    within("the connection to end", async {
        while let Some(Ok(message)) = client.next().await {
            assert!(matches!(message, Message::Close(_)), "{message:?}");
        }
    })
    .await;
    within("the subscription to go", async {
        // Polls a condition; the timeout bounds it.
        while hub.subscriber_count() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// 256 KiB of padding per event, so that a client that does not read fills
/// the socket buffers (a few MiB) long before the 200th event.
const PADDING: usize = 256 * 1024;
const EVENTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_lags_and_does_not_slow_others() {
    let hub = EventHub::new(16);
    let addr = serve(hub.clone()).await;
    let mut stalled = connect(addr).await;
    let mut reader = connect(addr).await;
    assert_eq!(hub.subscriber_count(), 2);

    // The reader reports how many events it has seen.
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let reading = tokio::spawn(async move {
        let mut seqs = Vec::with_capacity(EVENTS);
        while seqs.len() < EVENTS {
            let got = next_json(&mut reader).await;
            assert_eq!(got["type"], "workloads.applied", "reader must never lag");
            seqs.push(got["data"]["seq"].as_u64().expect("seq"));
            progress_tx.send_replace(seqs.len());
        }
        seqs
    });

    let padding = "x".repeat(PADDING);
    for seq in 0..EVENTS {
        // Keep at most 8 events ahead of the reader (the hub holds 16), so
        // only the stalled client can fall behind.
        within(
            "the reader to keep up",
            progress.wait_for(|seen| seen + 8 >= seq),
        )
        .await
        .expect("reader alive");
        hub.publish(Event::new(
            Topic::Workloads,
            "applied",
            json!({ "seq": seq, "padding": padding }),
        ));
    }
    let seqs = within("the reader to finish", reading)
        .await
        .expect("reader");
    assert_eq!(seqs, (0..EVENTS as u64).collect::<Vec<_>>());

    // Now the stalled client reads: what was in flight, then `lagged`, then
    // the newest events, up to the last one.
    let mut seen = Vec::new();
    let mut missed = 0;
    let mut lagged_messages = 0;
    loop {
        let got = next_json(&mut stalled).await;
        match got["type"].as_str() {
            Some("lagged") => {
                lagged_messages += 1;
                assert!(got["timestamp"].is_string());
                missed += got["data"]["missed"].as_u64().expect("missed");
            }
            Some("workloads.applied") => {
                let seq = got["data"]["seq"].as_u64().expect("seq");
                seen.push(seq);
                if seq == EVENTS as u64 - 1 {
                    break;
                }
            }
            other => panic!("unexpected message {other:?}"),
        }
    }
    println!(
        "stalled client: {} events, {missed} missed in {lagged_messages} lagged messages",
        seen.len()
    );
    assert!(
        lagged_messages >= 1,
        "the stalled client was never told it lagged"
    );
    assert!(missed > 0);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "out of order: {seen:?}"
    );
    assert_eq!(seen.len() as u64 + missed, EVENTS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_hub_closes_connections() {
    use std::sync::{Arc, Mutex};

    use axum::extract::WebSocketUpgrade;
    use axum::routing::get;
    use observability::upgrade_events;

    // The route hands its only other clone of the hub to the connection.
    let hub = EventHub::new(16);
    let slot = Arc::new(Mutex::new(Some(hub.clone())));
    let app = axum::Router::new().route(
        "/api/v1/events",
        get(move |ws: WebSocketUpgrade| {
            let hub = slot.lock().expect("lock").take().expect("one connection");
            async move { upgrade_events(ws, hub) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            panic!("server: {error}");
        }
    });
    let mut client = connect(addr).await;
    hub.publish(event(Topic::Cluster, "x", 0));
    assert_eq!(next_json(&mut client).await["data"]["seq"], 0);

    drop(hub);
    let message = within("the close frame", client.next())
        .await
        .expect("open")
        .expect("message");
    assert!(matches!(message, Message::Close(_)), "{message:?}");
}
