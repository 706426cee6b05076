//! Signed HTTP requests to a daemon's REST API (docs/API.md), and the typed
//! calls over them ([`calls`]).
//!
//! HTTP goes through `ureq` 3: a small, blocking, well-maintained client with
//! rustls (no OpenSSL) and no async runtime, which is all a CLI needs — it
//! compiles far less than `reqwest` (no tokio/hyper), and its body reader hands
//! over bytes as they arrive, so `ui logs -f` streams line by line.
//!
//! Every request except `/health` and `/api/v1/info` carries the `X-Auth-*`
//! headers of `orchestrator_shared_types::auth::sign_request` (signing scheme
//! v2), computed over the request target exactly as sent (path prefix of the
//! server URL and query included), the server's audience and the acting
//! agent's name. The audience is the one given to
//! [`ApiClient::with_audience`] (a caller that keeps it, like `ui`), or else
//! learned from the server's unsigned `GET /api/v1/info` on first use.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::agent::HEADER_AGENT;
use orchestrator_shared_types::auth::{
    sign_request, Payload, SignedHeaders, HEADER_AUDIENCE, HEADER_PUBLIC_KEY, HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{routes, ErrorBody, NodeInfo, Page};

pub use crate::routes::segment;

mod calls;

pub use calls::Reply;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is not `http://host[:port][/prefix]` or `https://...`.
    #[error("invalid server URL {url:?}: expected http://HOST[:PORT] or https://HOST[:PORT]")]
    BadUrl {
        /// The URL given.
        url: String,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the server at {server}: {source}")]
    Transport {
        /// The server URL.
        server: String,
        /// What went wrong.
        #[source]
        source: ureq::Error,
    },
    /// The server answered with an error status.
    #[error("{}", api_error_text(*.status, .code.as_deref(), .message))]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code of the body (`not_found`, ...), when it had one.
        code: Option<String>,
        /// The error message of the body, or the start of the raw body.
        message: String,
        /// The whole raw body.
        body: String,
    },
    /// The server's answer is not the JSON it should be.
    #[error("unexpected answer from {what}: {source}")]
    Decode {
        /// Which request.
        what: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A request body could not be encoded as JSON.
    #[error("encoding the body of {what}: {source}")]
    Encode {
        /// Which request.
        what: String,
        /// The encoding error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading the answer's body failed.
    #[error("reading the answer to {what}: {source}")]
    Body {
        /// Which request.
        what: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// Formats a server error as `<message> (<code>, HTTP <status>)`.
pub fn api_error_text(status: u16, code: Option<&str>, message: &str) -> String {
    match code {
        Some(code) => format!("{message} ({code}, HTTP {status})"),
        None => format!("{message} (HTTP {status})"),
    }
}

/// Turns an error status and its body into a [`ClientError::Api`].
pub fn api_error(status: u16, body: &str) -> ClientError {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) => ClientError::Api {
            status,
            code: Some(b.error.code),
            message: b.error.message,
            body: body.to_owned(),
        },
        Err(_) => {
            let text = body.trim();
            let message = if text.is_empty() {
                "the server gave no reason".to_owned()
            } else {
                text.chars().take(500).collect()
            };
            ClientError::Api {
                status,
                code: None,
                message,
                body: body.to_owned(),
            }
        }
    }
}

/// Splits a server URL into its base (no trailing `/`) and its path prefix.
pub fn split_server_url(url: &str) -> Result<(String, String), ClientError> {
    let bad = || ClientError::BadUrl {
        url: url.to_owned(),
    };
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains(['?', '#', ' ']) || prefix.contains(['?', '#']) {
        return Err(bad());
    }
    Ok((trimmed.to_owned(), prefix.to_owned()))
}

/// Signs a request with the shared scheme
/// (`orchestrator_shared_types::auth::sign_request`), whose sub-second
/// timestamps keep two identical requests apart: Ed25519 signatures are
/// deterministic and the server refuses a signature it has seen before.
pub fn sign(key: &SigningKey, payload: &Payload<'_>, now: DateTime<Utc>) -> SignedHeaders {
    sign_request(key, payload, now)
}

/// A client of one daemon, signing with one key.
pub struct ApiClient {
    base: String,
    prefix: String,
    agent: ureq::Agent,
    key: Option<SigningKey>,
    /// The millisecond each distinct request was last signed in.
    signed: Mutex<HashMap<RequestKey, i64>>,
    /// Sent as `X-Univrs-Agent` (and signed) when set.
    acting_agent: Option<String>,
    /// The audience requests are signed for: given, or learned from
    /// `GET /api/v1/info` on the first signed request.
    audience: OnceLock<String>,
}

/// The headers of a signed WebSocket upgrade, by name.
pub type UpgradeHeaders = Vec<(&'static str, String)>;

/// Method, request target and body of a request.
type RequestKey = (String, String, Vec<u8>);

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("signed", &self.key.is_some())
            .finish()
    }
}

/// A response whose status was a success.
pub struct Answer {
    what: String,
    status: u16,
    body: ureq::Body,
}

impl Answer {
    /// The HTTP status (2xx).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(mut self) -> Result<T, ClientError> {
        let text = self.body.read_to_string().map_err(|e| ClientError::Body {
            what: self.what.clone(),
            source: e.into_io(),
        })?;
        serde_json::from_str(&text).map_err(|source| ClientError::Decode {
            what: self.what,
            source,
        })
    }

    /// The whole body as text.
    pub fn text(mut self) -> Result<String, ClientError> {
        self.body.read_to_string().map_err(|e| ClientError::Body {
            what: self.what,
            source: e.into_io(),
        })
    }

    /// The body, line by line as it arrives.
    pub fn lines(self) -> impl Iterator<Item = Result<String, ClientError>> {
        let what = self.what;
        let reader: Box<dyn Read> = Box::new(self.body.into_reader());
        BufReader::new(reader).lines().map(move |line| {
            line.map_err(|source| ClientError::Body {
                what: what.clone(),
                source,
            })
        })
    }
}

impl ApiClient {
    /// A client of `server`; `key` signs every request (health aside).
    pub fn new(server: &str, key: Option<SigningKey>) -> Result<Self, ClientError> {
        let (base, prefix) = split_server_url(server)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .user_agent(concat!("univrs-ui/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            base,
            prefix,
            agent,
            key,
            signed: Mutex::new(HashMap::new()),
            acting_agent: None,
            audience: OnceLock::new(),
        })
    }

    /// Names the agent acting for the user in every request (`X-Univrs-Agent`,
    /// signed, and recorded in the daemon's audit log).
    pub fn with_agent(mut self, name: impl Into<String>) -> Self {
        self.acting_agent = Some(name.into());
        self
    }

    /// Signs every request for `audience` (the server's cluster id, or a
    /// standalone node's id) instead of asking the server for it.
    pub fn with_audience(self, audience: impl Into<String>) -> Self {
        // A fresh OnceLock: set cannot fail; a client built with an
        // audience already keeps the first one.
        let _already_set = self.audience.set(audience.into());
        self
    }

    /// The server's own account of itself (`GET /api/v1/info`, unsigned).
    pub fn info(&self) -> Result<NodeInfo, ClientError> {
        self.send_as("GET", routes::INFO, None, false)?.json()
    }

    /// The audience requests are signed for: the one given, or else the
    /// server's, learned from `GET /api/v1/info` (once per client).
    pub fn audience(&self) -> Result<String, ClientError> {
        if let Some(a) = self.audience.get() {
            return Ok(a.clone());
        }
        let learned = self.info()?.audience;
        Ok(self.audience.get_or_init(|| learned).clone())
    }

    /// The time to sign a request with: now, but never the same millisecond as
    /// an earlier signing of this exact request by this client (see [`sign`]).
    fn sign_time(&self, method: &str, target: &str, body: &[u8]) -> DateTime<Utc> {
        let key = (method.to_owned(), target.to_owned(), body.to_vec());
        let mut signed = self
            .signed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut now = Utc::now();
        while signed.get(&key) == Some(&now.timestamp_millis()) {
            std::thread::sleep(Duration::from_millis(1));
            now = Utc::now();
        }
        signed.insert(key, now.timestamp_millis());
        now
    }

    /// The server URL in use.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// The public key requests are signed with, if they are signed.
    pub fn public_key(&self) -> Option<orchestrator_shared_types::PublicKey> {
        self.key
            .as_ref()
            .map(|k| orchestrator_shared_types::PublicKey(k.verifying_key().to_bytes()))
    }

    /// A WebSocket upgrade of `path` (`GET`, no body) signed as any request
    /// of this client: the `ws://` (or `wss://`) URL and the headers to send.
    pub fn signed_upgrade(&self, path: &str) -> Result<(String, UpgradeHeaders), ClientError> {
        let url = format!("{}{}", self.base, path);
        let url = match url.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => url.replacen("http://", "ws://", 1),
        };
        let target = format!("{}{}", self.prefix, path);
        let mut headers = Vec::new();
        if let Some(key) = &self.key {
            let audience = self.audience()?;
            let payload = Payload::new("GET", &target, b"", &audience)
                .by_agent(self.acting_agent.as_deref().unwrap_or_default());
            let now = self.sign_time("GET", &target, b"");
            let signed = sign(key, &payload, now);
            headers.push((HEADER_PUBLIC_KEY, signed.public_key));
            headers.push((HEADER_TIMESTAMP, signed.timestamp));
            headers.push((HEADER_SIGNATURE, signed.signature));
            headers.push((HEADER_AUDIENCE, audience));
        }
        if let Some(agent) = &self.acting_agent {
            headers.push((HEADER_AGENT, agent.clone()));
        }
        Ok((url, headers))
    }

    /// Sends a request; `path` starts with `/` and may carry a query.
    /// A body is sent with `content_type`. The request is signed when the
    /// client has a key.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer, ClientError> {
        self.send_as(method, path, body, true)
    }

    fn send_as(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        signed: bool,
    ) -> Result<Answer, ClientError> {
        let url = format!("{}{}", self.base, path);
        let target = format!("{}{}", self.prefix, path);
        let what = format!("{method} {target}");
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("accept", "application/json");
        if let Some(agent) = &self.acting_agent {
            req = req.header(HEADER_AGENT, agent.as_str());
        }
        if let (Some(key), true) = (&self.key, signed) {
            let audience = self.audience()?;
            let bytes = body.map(|(_, b)| b).unwrap_or_default();
            let payload = Payload::new(method, &target, bytes, &audience)
                .by_agent(self.acting_agent.as_deref().unwrap_or_default());
            let now = self.sign_time(method, &target, bytes);
            let signed = sign(key, &payload, now);
            req = req
                .header(HEADER_PUBLIC_KEY, signed.public_key)
                .header(HEADER_TIMESTAMP, signed.timestamp)
                .header(HEADER_SIGNATURE, signed.signature)
                .header(HEADER_AUDIENCE, audience.as_str());
        }
        let transport = |source| ClientError::Transport {
            server: self.base.clone(),
            source,
        };
        let result = match body {
            Some((content_type, bytes)) => {
                let req = req
                    .header("content-type", content_type)
                    .body(bytes.to_vec())
                    .map_err(|e| transport(e.into()))?;
                self.agent.run(req)
            }
            None => {
                let req = req.body(()).map_err(|e| transport(e.into()))?;
                self.agent.run(req)
            }
        };
        let response = result.map_err(transport)?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if !(200..300).contains(&status) {
            let text = body.read_to_string().unwrap_or_default();
            return Err(api_error(status, &text));
        }
        Ok(Answer { what, status, body })
    }

    /// `GET path` parsed as JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        self.send("GET", path, None)?.json()
    }

    /// `POST path` with a JSON body, answer parsed as JSON.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let bytes = body.to_string().into_bytes();
        self.send("POST", path, Some(("application/json", &bytes)))?
            .json()
    }

    /// `PUT path` with a JSON body, answer parsed as JSON.
    pub fn put_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let bytes = body.to_string().into_bytes();
        self.send("PUT", path, Some(("application/json", &bytes)))?
            .json()
    }

    /// `POST path` without a body, answer parsed as JSON.
    pub fn post_empty(&self, path: &str) -> Result<Value, ClientError> {
        self.send("POST", path, None)?.json()
    }

    /// Every item of a list endpoint, following `next_cursor`; `path` has no query.
    pub fn get_all(&self, path: &str) -> Result<Vec<Value>, ClientError> {
        self.get_all_with(path, "")
    }

    /// Like [`ApiClient::get_all`], with extra query parameters (`a=1&b=2`,
    /// already encoded).
    pub fn get_all_with(&self, path: &str, query: &str) -> Result<Vec<Value>, ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let extra = if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        };
        loop {
            let target = match &cursor {
                Some(c) => format!("{path}?limit=1000{extra}&cursor={}", segment(c)),
                None => format!("{path}?limit=1000{extra}"),
            };
            let page: Page<Value> = self.send("GET", &target, None)?.json()?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if !next.is_empty() && cursor.as_ref() != Some(&next) => {
                    cursor = Some(next)
                }
                _ => return Ok(items),
            }
        }
    }

    /// `DELETE path`, answer parsed as JSON.
    pub fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.send("DELETE", path, None)?.json()
    }
}

#[cfg(any(test, feature = "testsuite"))]
pub mod test_server;

#[cfg(test)]
mod tests;
