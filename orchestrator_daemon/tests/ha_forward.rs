//! What a follower control plane forwards to the leader, and that the
//! forwarding adds no authority: a request signed for another cluster, or
//! replayed through another control plane, is refused; the event stream (a
//! WebSocket) is opened at the leader with the client's signature.
//!
//! Needs `UNIVRS_TEST_ETCD` (`scripts/test-etcd start`); skipped without.

mod ha_common;

use chrono::Utc;
use ha_common::{client, endpoints, manifest, user, Group};
use orchestrator_shared_types::auth::{self, sign_request, Payload, SignedHeaders};

#[test]
fn forwarding_adds_no_authority() {
    let Some(ep) = endpoints() else { return };
    let mut g = Group::new(ep, "1s");
    for _ in 0..3 {
        g.start(&[]);
    }
    let leader = g.agreed_leader(&[0, 1, 2]);
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let audience = client(&g.planes[0].addr).info().expect("info").audience;
    for p in &g.planes {
        assert_eq!(
            client(&p.addr).info().expect("info").audience,
            audience,
            "every control plane names the one cluster as its audience"
        );
    }
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let http = reqwest::Client::new();
    let get = |addr: &str, headers: Option<&SignedHeaders>| {
        let mut req = http.get(format!("http://{addr}/api/v1/workloads"));
        if let Some(h) = headers {
            req = req
                .header(auth::HEADER_PUBLIC_KEY, &h.public_key)
                .header(auth::HEADER_TIMESTAMP, &h.timestamp)
                .header(auth::HEADER_SIGNATURE, &h.signature);
        }
        rt.block_on(req.send())
            .expect("an answer")
            .status()
            .as_u16()
    };
    let send = |addr: &str, h: &SignedHeaders| get(addr, Some(h));
    let key = user();
    // Signed for the cluster: good through a follower, once.
    let good = sign_request(
        &key,
        &Payload::new("GET", "/api/v1/workloads", b"", &audience),
        Utc::now(),
    );
    assert_eq!(send(&g.planes[followers[0]].addr, &good), 200);
    // The same request again through the other follower: a replay.
    assert_eq!(send(&g.planes[followers[1]].addr, &good), 401);
    // Signed for another cluster: refused through a follower.
    let foreign = sign_request(
        &key,
        &Payload::new("GET", "/api/v1/workloads", b"", "another-cluster"),
        Utc::now(),
    );
    assert_eq!(send(&g.planes[followers[0]].addr, &foreign), 401);
    // Unsigned: refused.
    assert_eq!(get(&g.planes[followers[1]].addr, None), 401);
}

/// The event stream (a WebSocket) through a follower: opened at the leader
/// with the client's signature, refused as the leader refuses, relayed
/// both ways.
#[test]
fn the_event_stream_is_forwarded_from_a_follower() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let Some(ep) = endpoints() else { return };
    let mut g = Group::new(ep, "1s");
    g.start(&[]);
    g.start(&[]);
    let leader = g.agreed_leader(&[0, 1]);
    let faddr = g.planes[1 - leader].addr.clone();
    let audience = client(&faddr).info().expect("info").audience;
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let url = format!("ws://{faddr}/api/v1/events");
        // Unsigned: the leader's 401 comes back.
        let err = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect_err("an unsigned upgrade is refused");
        assert!(err.to_string().contains("401"), "{err}");

        let h = sign_request(
            &user(),
            &Payload::new("GET", "/api/v1/events", b"", &audience),
            Utc::now(),
        );
        let mut req = url.as_str().into_client_request().expect("a request");
        for (name, value) in [
            (auth::HEADER_PUBLIC_KEY, &h.public_key),
            (auth::HEADER_TIMESTAMP, &h.timestamp),
            (auth::HEADER_SIGNATURE, &h.signature),
        ] {
            req.headers_mut()
                .insert(name, value.parse().expect("a header value"));
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("a signed upgrade through the follower");
        ws.send(Message::text(
            r#"{"type":"subscribe","topics":["workloads"]}"#,
        ))
        .await
        .expect("subscribed");
        let until = tokio::time::Instant::now() + ha_common::DEADLINE;
        let mut created: Option<String> = None;
        loop {
            let msg = tokio::time::timeout_at(until, ws.next())
                .await
                .expect("events within the deadline")
                .expect("the stream stays open")
                .expect("a message");
            let Message::Text(text) = msg else { continue };
            let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let kind = v["type"].as_str().unwrap_or_default().to_owned();
            if kind == "subscribed" && created.is_none() {
                let faddr = faddr.clone();
                let reply = tokio::task::spawn_blocking(move || {
                    client(&faddr)
                        .create_workload("application/json", &manifest("streamed", 1))
                        .expect("created")
                })
                .await
                .expect("the create");
                created = Some(reply.data.workload.id.to_string());
                continue;
            }
            // The leader's event of the write made through the follower.
            if kind == "workloads.applied" && v["data"]["id"].as_str() == created.as_deref() {
                break;
            }
        }
    });
}
