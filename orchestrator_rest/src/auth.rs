//! Signed-request authentication (SPEC §11) of the REST API: the shared
//! signed-HTTP layer (`signed_http::SignedLayer`, which verifies the signature
//! over method, path, timestamp, body, this node's audience and the agent's
//! name, and refuses replays within the skew window) with [`RestAdmission`],
//! which refuses keys off the trusted list and hands the handlers a
//! [`Caller`] ([`layer`]).
//!
//! The audience ([`AuthGate::audience`]) is the cluster id, or a standalone
//! node's own node id; the daemon computes it. Every refusal of an
//! unauthenticated request is counted in `orchestrator_api_auth_refused_total`
//! and logged at most once a second ([`Refusals`]); none reaches the audit log.
//!
//! Agents (docs/AGENTS.md) authenticate either with an agent token
//! (`Authorization: Bearer …`, signed by the user it acts for) or with the
//! user's signature plus `X-Univrs-Agent`; both add an [`AgentCall`], which
//! `agent_gate` then holds to the user's automation policy. A call the daemon
//! runs for an approved approval carries an [`ApprovedCall`] set in process.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::Method;
use axum::http::{Extensions, HeaderMap};
use chrono::Utc;
use observability::metrics::Metrics;
use orchestrator_shared_types::agent::{verify_token, TokenClaims, HEADER_AGENT};
use orchestrator_shared_types::PublicKey;
pub use signed_http::ReplayCache;
use signed_http::{header, Admission, Limits, RefusalLog, Rejection, SignedLayer};

use super::error::ApiError;

/// The settings and the replay cache the middleware checks requests against;
/// cheap to clone, shared by every router of a daemon.
#[derive(Clone, Debug)]
pub struct AuthGate {
    /// Authentication settings.
    pub config: Arc<AuthConfig>,
    /// Signatures already seen.
    pub replays: Arc<ReplayCache>,
    /// What requests must be signed for: the cluster id, or a standalone
    /// node's own node id (`GET /api/v1/info` reports it).
    pub audience: Arc<str>,
    /// Where refusals of unauthenticated requests are counted and logged.
    pub refusals: Refusals,
}

impl AuthGate {
    /// A gate with `config`, expecting requests signed for `audience`, and
    /// an empty replay cache; refusals are logged, and counted once
    /// [`AuthGate::counting`] names the metrics.
    pub fn new(config: AuthConfig, audience: impl Into<Arc<str>>) -> Self {
        let replays = Arc::new(ReplayCache::new(config.replay_capacity));
        Self {
            config: Arc::new(config),
            replays,
            audience: audience.into(),
            refusals: Refusals::default(),
        }
    }

    /// The same gate, counting refusals in `metrics`'
    /// `orchestrator_api_auth_refused_total`.
    pub fn counting(mut self, metrics: Arc<Metrics>) -> Self {
        self.refusals.metrics = Some(metrics);
        self
    }
}

/// Refusals of unauthenticated requests: a counter by reason and a warn line
/// at most once a second (saying how many were suppressed), so a flood of
/// forged requests costs neither the audit log nor the log file.
#[derive(Clone, Default)]
pub struct Refusals {
    metrics: Option<Arc<Metrics>>,
    log: Arc<RefusalLog>,
}

impl std::fmt::Debug for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refusals")
            .field("counted", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

impl Refusals {
    /// Counts and (rate-limited) logs the refusal of `method path`.
    pub fn record(&self, rejection: &Rejection, method: &Method, path: &str) {
        if let Some(m) = &self.metrics {
            m.auth_refused.with_label_values(&[rejection.reason]).inc();
        }
        self.log
            .warn(rejection.reason, method.as_str(), path, &rejection.message);
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
        // (An agent token names its user, not a cluster: it is bound to the
        // daemons that trust that user, and revocable there.)
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

/// Who may call the REST API: a key on the trusted list (or any key when
/// there is none), or an agent token signed by such a key; a call the daemon
/// runs for an approved approval passes as its user.
#[derive(Clone, Debug)]
pub struct RestAdmission {
    gate: AuthGate,
}

impl Admission for RestAdmission {
    type Identity = (Caller, Option<AgentCall>);

    fn without_signature(&self, req: &Request) -> Option<Result<Self::Identity, Rejection>> {
        if let Some(approved) = req.extensions().get::<ApprovedCall>() {
            return Some(Ok((approved.caller, None)));
        }
        match bearer(req.headers()) {
            Ok(None) => None,
            Ok(Some(token)) => Some(
                self.gate
                    .verify_agent_token(token)
                    .map(|(caller, agent)| (caller, Some(agent)))
                    .map_err(|e| Rejection::from(e).because("bad_token")),
            ),
            Err(e) => Some(Err(Rejection::from(e).because("bad_token"))),
        }
    }

    async fn admit(&self, key: PublicKey, parts: &Parts) -> Result<Self::Identity, Rejection> {
        let cfg = &self.gate.config;
        let agent =
            agent_name(&parts.headers).map_err(|e| Rejection::from(e).because("bad_agent"))?;
        if let Some(trusted) = &cfg.trusted_keys {
            if !trusted.contains(&key) && !cfg.admin_keys.contains(&key) {
                return Err(Rejection::forbidden(format!(
                    "key {key} is not on this daemon's trusted list"
                ))
                .because("untrusted_key"));
            }
        }
        let caller = Caller {
            key,
            admin: cfg.admin_keys.contains(&key),
        };
        Ok((caller, agent.map(|name| AgentCall { name, token: None })))
    }

    fn attach(&self, (caller, agent): Self::Identity, extensions: &mut Extensions) {
        extensions.insert(caller);
        if let Some(agent) = agent {
            extensions.insert(agent);
        }
    }
}

/// The signed-request layer of the REST API: the shared signed-HTTP layer
/// with [`RestAdmission`], handing handlers a [`Caller`] (and an
/// [`AgentCall`] on an agent's call); every refusal goes to the gate's
/// [`Refusals`].
pub fn layer(gate: &AuthGate) -> SignedLayer<RestAdmission> {
    let refusals = gate.refusals.clone();
    SignedLayer::new(
        RestAdmission { gate: gate.clone() },
        Limits {
            body_limit: gate.config.body_limit,
            max_skew_seconds: gate.config.max_skew_seconds,
            audience: Arc::clone(&gate.audience),
        },
        Arc::clone(&gate.replays),
    )
    .on_refusal(Arc::new(move |rejection, method, path| {
        refusals.record(rejection, method, path);
    }))
}
