//! Live updates: the daemon's events, relayed to every open page as
//! "changed"; the samples of the overview's chart; and logs that follow.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use futures::{SinkExt as _, Stream, StreamExt as _};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use super::{Dash, State as Shared};
use crate::client::ApiClient;

/// Something the page shows may have changed.
#[derive(Clone, Copy, Debug)]
pub struct Change;

/// How often the overview's chart is sampled, and how much it keeps.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// An hour of samples.
pub const SAMPLES_KEPT: usize = 360;

/// One point of the overview's chart.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Running instances of the user's workloads.
    pub running: u64,
    /// CPU their requests take, in millicores.
    pub cpu_millis: u64,
}

/// The last hour of samples, oldest first.
#[derive(Debug, Default)]
pub struct Samples(pub VecDeque<Sample>);

impl Samples {
    /// Adds `s`, forgetting what is older than an hour.
    pub fn push(&mut self, s: Sample) {
        if self.0.len() == SAMPLES_KEPT {
            self.0.pop_front();
        }
        self.0.push_back(s);
    }
}

/// Runs `f` with the client on a blocking thread (the client is `ureq`).
pub async fn call<T: Send + 'static>(
    dash: &Dash,
    f: impl FnOnce(&ApiClient) -> Result<T, crate::client::ClientError> + Send + 'static,
) -> Result<T, String> {
    let client = dash.client.clone();
    match tokio::task::spawn_blocking(move || f(&client)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the call failed: {e}")),
    }
}

/// Running instances and the CPU they request, from the user's workloads.
pub fn usage(workloads: &[orchestrator_api::Workload]) -> Sample {
    let mut s = Sample {
        running: 0,
        cpu_millis: 0,
    };
    for w in workloads {
        let running = u64::from(w.status.running);
        s.running += running;
        s.cpu_millis += running * w.workload.spec.instance_request().cpu_millis;
    }
    s
}

/// Starts the relay of the daemon's events, the check of approvals and the
/// sampler.
pub fn spawn(dash: Shared) {
    tokio::spawn(relay(dash.clone()));
    tokio::spawn(poll(dash));
}

/// Keeps a signed subscription to the daemon's events; each one is a change.
async fn relay(dash: Shared) {
    let mut pause = Duration::from_millis(250);
    loop {
        // A failed attempt is not printed (`ui` has no logger, and a line
        // per attempt would flood the terminal): the page says the daemon
        // is unreachable.
        if let Ok(mut ws) = subscribe(&dash).await {
            pause = Duration::from_millis(250);
            dash.upstream.store(true, Ordering::SeqCst);
            let _ = dash.changed.send(Change);
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_text() {
                    let _ = dash.changed.send(Change);
                }
            }
        }
        if dash.upstream.swap(false, Ordering::SeqCst) {
            let _ = dash.changed.send(Change);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(dash: &Dash) -> Result<Upstream, String> {
    let (url, headers) = call(dash, |c| c.signed_upgrade(orchestrator_api::routes::EVENTS)).await?;
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    for (name, value) in headers {
        let value = value
            .parse()
            .map_err(|_| format!("header {name} is not valid"))?;
        req.headers_mut().insert(name, value);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())?;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"type":"subscribe","topics":[]}"#,
    ))
    .await
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Approvals send no event: checked every second while a page is open
/// (none asks the daemon anything while no page listens). The chart is
/// sampled every [`SAMPLE_EVERY`] whether or not one is, so that it shows
/// the last hour when a page opens.
async fn poll(dash: Shared) {
    let mut last = None;
    let mut sampled = tokio::time::Instant::now() - SAMPLE_EVERY;
    loop {
        let watched = dash.changed.receiver_count() > 0;
        let pending = if !watched {
            // Asked afresh when a page opens: it gets one change then.
            last = None;
            None
        } else {
            call(&dash, |c| {
                c.approvals(orchestrator_api::ApprovalFilter::Pending)
                    .map(|r| r.data.iter().map(|a| a.id.clone()).collect::<Vec<_>>())
            })
            .await
            .ok()
        };
        if pending.is_some() && pending != last {
            last = pending;
            let _ = dash.changed.send(Change);
        }
        if sampled.elapsed() >= SAMPLE_EVERY {
            sampled = tokio::time::Instant::now();
            if let Ok(w) = call(&dash, |c| c.list_workloads().map(|r| r.data)).await {
                let s = usage(&w);
                if let Ok(mut samples) = dash.samples.lock() {
                    samples.push(s);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `GET /live`: the page's WebSocket. Sends `{"type": "changed"}` (at most
/// every 100 ms) and `{"type": "upstream", "connected": BOOL}`.
pub async fn socket(State(dash): State<Shared>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve(dash, socket))
}

async fn serve(dash: Shared, mut socket: WebSocket) {
    let mut changes = dash.changed.subscribe();
    let mut connected = dash.upstream.load(Ordering::SeqCst);
    let hello = format!(r#"{{"type":"upstream","connected":{connected}}}"#);
    if socket.send(Message::text(hello)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            got = changes.recv() => {
                if matches!(got, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
                // Coalesce a burst into one refresh.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while changes.try_recv().is_ok() {}
                let now = dash.upstream.load(Ordering::SeqCst);
                if now != connected {
                    connected = now;
                    let text = format!(r#"{{"type":"upstream","connected":{now}}}"#);
                    if socket.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                if socket.send(Message::text(r#"{"type":"changed"}"#)).await.is_err() {
                    return;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            },
        }
    }
}

/// `GET /workloads/{name}/logs/stream`: the workload's logs as server-sent
/// events, the last 200 lines and then each new one; each event's data is
/// one log entry's JSON.
pub async fn log_stream(
    State(dash): State<Shared>,
    Path(name): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(256);
    let client = dash.client.clone();
    tokio::task::spawn_blocking(move || {
        let lines = match client.workload_log_lines(&name, Some(200), true) {
            Ok(lines) => lines,
            Err(e) => {
                let _ = tx.blocking_send(format!(
                    "{{\"error\":{}}}",
                    serde_json::json!(e.to_string())
                ));
                return;
            }
        };
        for line in lines {
            let text = match line {
                Ok(text) => text,
                Err(e) => format!("{{\"error\":{}}}", serde_json::json!(e.to_string())),
            };
            // The page went away: stop reading.
            if tx.blocking_send(text).is_err() {
                return;
            }
        }
    });
    let stream =
        tokio_stream::wrappers::ReceiverStream::new(rx).map(|line| Ok(Event::default().data(line)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}
