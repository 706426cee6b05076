//! A follower's end of a WebSocket (`/api/v1/events`) forwarded to the
//! leader: it opens the same upgrade at the leader with the client's
//! headers (signature included; the leader checks it), answers the client
//! as the leader answered — a refusal with its status, or the upgrade —
//! and then relays every message both ways until either side closes.

use axum::body::Body;
use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use orchestrator_rest::error::ApiError;
use orchestrator_rest::network::Leader;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self as tung, Message};
use tracing::debug;

/// Headers the WebSocket handshake makes itself.
fn handshake_header(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "connection"
            | "upgrade"
            | "sec-websocket-key"
            | "sec-websocket-version"
            | "sec-websocket-extensions"
            | "sec-websocket-accept"
            | "content-length"
            | "transfer-encoding"
    )
}

/// Forwards the upgrade `parts` asks for to `leader`.
pub(super) async fn forward(mut parts: Parts, leader: &Leader, path: &str) -> Response {
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let url = format!("ws://{}{path}", leader.address);
    let mut req = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return unreachable(leader, &e.to_string()),
    };
    copy_headers(&parts.headers, req.headers_mut());
    let upstream = match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => ws,
        // The leader's answer, refusal or not, goes back as it was.
        Err(tung::Error::Http(resp)) => {
            let (head, body) = resp.into_parts();
            let mut out = Response::new(Body::from(body.unwrap_or_default()));
            *out.status_mut() = head.status;
            for (name, value) in &head.headers {
                if !handshake_header(name.as_str()) {
                    out.headers_mut().append(name.clone(), value.clone());
                }
            }
            return out;
        }
        Err(e) => return unreachable(leader, &e.to_string()),
    };
    debug!(%url, "WebSocket forwarded to the leader");
    upgrade.on_upgrade(move |client| relay(client, upstream))
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !handshake_header(name.as_str()) {
            to.append(name.clone(), value.clone());
        }
    }
}

fn unreachable(leader: &Leader, why: &str) -> Response {
    ApiError {
        status: StatusCode::BAD_GATEWAY,
        code: "leader_unreachable",
        message: format!(
            "forwarding the WebSocket to the leader {} at {}: {why}",
            leader.node_id, leader.address
        ),
    }
    .into_response()
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Relays messages both ways until one side closes or fails.
async fn relay(client: WebSocket, upstream: Upstream) {
    let (mut to_client, mut from_client) = client.split();
    let (mut to_leader, mut from_leader) = upstream.split();
    let up = async {
        while let Some(Ok(m)) = from_client.next().await {
            let m = to_tungstenite(m);
            let closing = matches!(m, Message::Close(_));
            if to_leader.send(m).await.is_err() || closing {
                break;
            }
        }
        let _ = to_leader.close().await;
    };
    let down = async {
        while let Some(Ok(m)) = from_leader.next().await {
            let Some(m) = to_axum(m) else { continue };
            let closing = matches!(m, ws::Message::Close(_));
            if to_client.send(m).await.is_err() || closing {
                break;
            }
        }
        let _ = to_client.close().await;
    };
    // Either side ending ends both.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

fn to_tungstenite(m: ws::Message) -> Message {
    match m {
        ws::Message::Text(t) => Message::text(t.as_str()),
        ws::Message::Binary(b) => Message::binary(b),
        ws::Message::Ping(p) => Message::Ping(p),
        ws::Message::Pong(p) => Message::Pong(p),
        ws::Message::Close(c) => Message::Close(c.map(|c| tung::protocol::CloseFrame {
            code: c.code.into(),
            reason: c.reason.as_str().into(),
        })),
    }
}

fn to_axum(m: Message) -> Option<ws::Message> {
    Some(match m {
        Message::Text(t) => ws::Message::text(t.as_str()),
        Message::Binary(b) => ws::Message::binary(b),
        Message::Ping(p) => ws::Message::Ping(p),
        Message::Pong(p) => ws::Message::Pong(p),
        Message::Close(c) => ws::Message::Close(c.map(|c| ws::CloseFrame {
            code: c.code.into(),
            reason: c.reason.as_str().into(),
        })),
        Message::Frame(_) => return None,
    })
}
