//! Signed-request authentication (SPEC §11) as an axum middleware: verifies
//! the signature over method, path, timestamp and body, refuses replays within
//! the skew window and keys off the trusted list, and hands the handlers a
//! [`Caller`].
//!
//! Agents (docs/AGENTS.md) authenticate either with an agent token
//! (`Authorization: Bearer …`, signed by the user it acts for) or with the
//! user's signature plus `X-Univrs-Agent`; both add an [`AgentCall`], which
//! `agent_gate` then holds to the user's automation policy. A call the daemon
//! runs for an approved approval carries an [`ApprovedCall`] set in process.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use orchestrator_shared_types::agent::{verify_token, TokenClaims, HEADER_AGENT};
use orchestrator_shared_types::PublicKey;
pub use signed_http::ReplayCache;
use signed_http::{header, read_signed, Limits};

use super::error::ApiError;

/// The settings and the replay cache the middleware checks requests against;
/// cheap to clone, shared by every router of a daemon.
#[derive(Clone, Debug)]
pub struct AuthGate {
    /// Authentication settings.
    pub config: Arc<AuthConfig>,
    /// Signatures already seen.
    pub replays: Arc<ReplayCache>,
}

impl AuthGate {
    /// A gate with `config` and an empty replay cache.
    pub fn new(config: AuthConfig) -> Self {
        let replays = Arc::new(ReplayCache::new(config.replay_capacity));
        Self {
            config: Arc::new(config),
            replays,
        }
    }
}

/// Authentication settings.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Largest allowed distance between a request's timestamp and the clock, in seconds.
    pub max_skew_seconds: i64,
    /// When set, only these keys may call the API.
    pub trusted_keys: Option<HashSet<PublicKey>>,
    /// Keys that may act on every workload and node.
    pub admin_keys: HashSet<PublicKey>,
    /// Most signatures remembered for replay detection.
    pub replay_capacity: usize,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            max_skew_seconds: 60,
            trusted_keys: None,
            admin_keys: HashSet::new(),
            replay_capacity: 1_000_000,
            body_limit: 1 << 20,
        }
    }
}

/// Who sent a request that verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The signing key.
    pub key: PublicKey,
    /// Whether it is an admin key.
    pub admin: bool,
}

impl Caller {
    /// Whether the caller may act on something owned by `owner`.
    pub fn may_act_for(&self, owner: &PublicKey) -> bool {
        self.admin || self.key == *owner
    }
}

/// The agent acting for the caller, on an agent call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCall {
    /// The agent's name.
    pub name: String,
    /// The token it presented (none when it came through `ui mcp`).
    pub token: Option<TokenClaims>,
}

/// Marks, in process only, a call the daemon runs because its user approved
/// it: it runs as `caller`, past authentication and the automation policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovedCall {
    /// The approval.
    pub approval: String,
    /// The user it runs as.
    pub caller: Caller,
    /// The agent that asked.
    pub agent: String,
}

/// Longest agent name accepted in `X-Univrs-Agent`.
pub const MAX_AGENT_NAME: usize = 64;

/// The token of an `Authorization: Bearer` header, if any.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match header(headers, axum::http::header::AUTHORIZATION.as_str())? {
        None => Ok(None),
        Some(v) => match v.strip_prefix("Bearer ") {
            Some(token) => Ok(Some(token.trim())),
            None => Err(ApiError::unauthorized(
                "Authorization: only `Bearer <agent token>` is accepted",
            )),
        },
    }
}

fn agent_name(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(name) = header(headers, HEADER_AGENT)? else {
        return Ok(None);
    };
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= MAX_AGENT_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(ApiError::bad_request(format!(
            "{HEADER_AGENT}: {name:?} is not 1-{MAX_AGENT_NAME} characters of letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(Some(name.to_owned()))
}

impl AuthGate {
    /// Verifies an agent token (signature, expiry, trusted list; revocation
    /// is checked by `agent_gate`, which reaches the store).
    pub fn verify_agent_token(&self, token: &str) -> Result<(Caller, AgentCall), ApiError> {
        let cfg = &self.config;
        let claims = verify_token(token, Utc::now(), cfg.max_skew_seconds)
            .map_err(|e| ApiError::unauthorized(e.to_string()))?;
        if let Some(trusted) = &cfg.trusted_keys {
            if !trusted.contains(&claims.user) && !cfg.admin_keys.contains(&claims.user) {
                return Err(ApiError::forbidden(format!(
                    "key {} is not on this daemon's trusted list",
                    claims.user
                )));
            }
        }
        let caller = Caller {
            key: claims.user,
            admin: cfg.admin_keys.contains(&claims.user),
        };
        let agent = AgentCall {
            name: claims.agent.clone(),
            token: Some(claims),
        };
        Ok((caller, agent))
    }
}

/// The middleware: verifies, then passes the request on with a [`Caller`] extension.
pub async fn authenticate(
    State(gate): State<AuthGate>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let cfg = &gate.config;
    if let Some(approved) = req.extensions().get::<ApprovedCall>().cloned() {
        let mut req = req;
        req.extensions_mut().insert(approved.caller);
        return Ok(next.run(req).await);
    }
    if let Some(token) = bearer(req.headers())? {
        let (caller, agent) = gate.verify_agent_token(token)?;
        let mut req = req;
        req.extensions_mut().insert(caller);
        req.extensions_mut().insert(agent);
        return Ok(next.run(req).await);
    }
    let agent = agent_name(req.headers())?;
    let verified = read_signed(
        req,
        Limits {
            body_limit: cfg.body_limit,
            max_skew_seconds: cfg.max_skew_seconds,
        },
    )
    .await?;
    let key = verified.key;
    if let Some(trusted) = &cfg.trusted_keys {
        if !trusted.contains(&key) && !cfg.admin_keys.contains(&key) {
            return Err(ApiError::forbidden(format!(
                "key {key} is not on this daemon's trusted list"
            )));
        }
    }
    let mut req = verified.admit(&gate.replays)?;
    req.extensions_mut().insert(Caller {
        key,
        admin: cfg.admin_keys.contains(&key),
    });
    if let Some(name) = agent {
        req.extensions_mut().insert(AgentCall { name, token: None });
    }
    Ok(next.run(req).await)
}
