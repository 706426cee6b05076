//! AI agents acting for users (issue 6, `docs/AGENTS.md`): each user's
//! automation policy, revoked agent tokens and the approvals queue, kept in
//! the [`StateStore`] so they survive restarts and follow the control plane.
//!
//! - [`AgentBook`]: the three, with the decision for one agent call.
//! - [`approvals`]: an [`Approval`] and its states.
//!
//! Enforcement happens in the REST layer (`orchestrator_rest::agent_gate`), so it applies to
//! every transport: the HTTP MCP server at `/mcp` calls the same routes.
//!
//! May depend on the shared types and the store interface only.

pub mod approvals;

use std::sync::Arc;

use chrono::Utc;
use orchestrator_shared_types::agent::{AgentPolicy, Decision, TokenClaims};
use orchestrator_shared_types::PublicKey;
use serde::Serialize;
use state_store_interface::{StateStore, StoreError};

pub use approvals::{Approval, ApprovalResult, ApprovalState, NewApproval};

/// Record kind of a user's automation policy (key: the user's hex key).
const POLICY: &str = "agent_policy";
/// Record kind of a token revocation (key: `TOKEN_ID:REVOKER_HEX`, or
/// `TOKEN_ID:admin`).
const REVOKED: &str = "agent_token_revoked";
/// Record kind of a user's revocation of every token they issued until a
/// time (key: the user's hex key; value: RFC 3339 time).
const REVOKED_BEFORE: &str = "agent_tokens_revoked_before";

/// Why something about agents failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record could not be read back.
    #[error("stored {kind} record {key} is unreadable: {source}")]
    Corrupt {
        /// Record kind.
        kind: &'static str,
        /// Record key.
        key: String,
        /// The parse failure.
        #[source]
        source: serde_json::Error,
    },
    /// No such approval.
    #[error("no approval {0}")]
    NoApproval(String),
    /// The caller may not decide this approval.
    #[error("approval {0} belongs to another user")]
    NotYours(String),
    /// Nobody decided within the approval TTL.
    #[error(
        "approval {id} expired: nobody decided it within {hours} h, so it will never run; \
         the agent must ask again"
    )]
    Expired {
        /// The approval.
        id: String,
        /// The TTL, in hours.
        hours: i64,
    },
    /// The user has as many approvals pending as the book keeps.
    #[error(
        "{max} of your agents' calls are waiting for your approval already; \
         approve or deny some (ui approvals list) before an agent asks for more"
    )]
    TooManyPending {
        /// The most pending approvals per user.
        max: usize,
    },
    /// The approval was decided already.
    #[error("approval {id} is {state} already; it runs at most once")]
    AlreadyDecided {
        /// The approval.
        id: String,
        /// Its state.
        state: ApprovalState,
    },
}

/// Result of this module.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;

pub use orchestrator_api::agents::Revocation;

/// What the daemon decides for one agent call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Run it.
    Run,
    /// Queue it for the user's approval.
    Approve,
    /// Refuse it, saying why.
    Refuse(String),
}

/// How long an approval waits for its user before it expires.
pub const APPROVAL_TTL_HOURS: i64 = 24;
/// The most approvals one user may have pending: an agent looping on a
/// held call cannot fill the store (each holds a body of up to 1 MiB).
pub const MAX_PENDING_PER_USER: usize = 100;

/// Policies, revocations and approvals.
pub struct AgentBook {
    store: Arc<dyn StateStore>,
    /// How long a pending approval may wait for its user.
    approval_ttl: chrono::Duration,
    /// The most approvals one user may have pending.
    max_pending: usize,
    /// Serialises approval state changes so a call runs at most once.
    decide: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AgentBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBook").finish_non_exhaustive()
    }
}

fn parse<T: serde::de::DeserializeOwned>(kind: &'static str, key: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| AgentError::Corrupt {
        kind,
        key: key.to_owned(),
        source,
    })
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

impl AgentBook {
    /// A book kept in `store`.
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        Self {
            store,
            approval_ttl: chrono::Duration::hours(APPROVAL_TTL_HOURS),
            max_pending: MAX_PENDING_PER_USER,
            decide: tokio::sync::Mutex::new(()),
        }
    }

    /// At most `max` approvals pending per user instead of [`MAX_PENDING_PER_USER`].
    pub fn with_max_pending(mut self, max: usize) -> Self {
        self.max_pending = max;
        self
    }

    /// Pending approvals expire after `ttl` instead of [`APPROVAL_TTL_HOURS`].
    pub fn with_approval_ttl(mut self, ttl: chrono::Duration) -> Self {
        self.approval_ttl = ttl;
        self
    }

    /// `user`'s policy, if they pushed one.
    pub async fn policy(&self, user: &PublicKey) -> Result<Option<AgentPolicy>> {
        let key = user.to_string();
        match self.store.get_record(POLICY, &key).await? {
            Some(text) => Ok(Some(parse(POLICY, &key, &text)?)),
            None => Ok(None),
        }
    }

    /// Stores `user`'s policy (validated by the caller).
    pub async fn set_policy(&self, user: &PublicKey, policy: &AgentPolicy) -> Result<()> {
        Ok(self
            .store
            .put_record(POLICY, &user.to_string(), &to_json(policy))
            .await?)
    }

    /// Revokes token `id` on behalf of `by`. Each revoker's revocation is a
    /// record of its own (key `ID:REVOKER`, `ID:admin` for an admin), so a
    /// stranger revoking the same id — which counts for nothing — cannot
    /// overwrite the user's own revocation.
    pub async fn revoke(&self, id: &str, by: PublicKey, admin: bool) -> Result<Revocation> {
        let revocation = Revocation {
            id: id.to_owned(),
            revoked_by: by,
            admin,
            revoked_at: Utc::now(),
        };
        let key = if admin {
            format!("{id}:admin")
        } else {
            format!("{id}:{by}")
        };
        self.store
            .put_record(REVOKED, &key, &to_json(&revocation))
            .await?;
        Ok(revocation)
    }

    /// Revokes every token `user` issued until now (`ui forget`): each one
    /// whose `issued_at` is not after the time returned is refused from then
    /// on. A later call never moves that time back.
    pub async fn revoke_all(&self, user: &PublicKey) -> Result<chrono::DateTime<Utc>> {
        let key = user.to_string();
        let mut before = Utc::now();
        if let Some(text) = self.store.get_record(REVOKED_BEFORE, &key).await? {
            let earlier: chrono::DateTime<Utc> = parse(REVOKED_BEFORE, &key, &text)?;
            before = before.max(earlier);
        }
        self.store
            .put_record(REVOKED_BEFORE, &key, &to_json(&before))
            .await?;
        Ok(before)
    }

    /// Whether `claims`' token was revoked by its user or an admin, alone or
    /// with every token its user issued until some time.
    pub async fn is_revoked(&self, claims: &TokenClaims) -> Result<bool> {
        let user = claims.user.to_string();
        if let Some(text) = self.store.get_record(REVOKED_BEFORE, &user).await? {
            let before: chrono::DateTime<Utc> = parse(REVOKED_BEFORE, &user, &text)?;
            if claims.issued_at <= before {
                return Ok(true);
            }
        }
        let id = &claims.id;
        for key in [format!("{id}:{}", claims.user), format!("{id}:admin")] {
            if let Some(text) = self.store.get_record(REVOKED, &key).await? {
                let r: Revocation = parse(REVOKED, &key, &text)?;
                if r.admin || r.revoked_by == claims.user {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The decision for `user`'s agent calling `tool` (with `token`'s scope,
    /// when it came with one).
    pub async fn verdict(
        &self,
        user: &PublicKey,
        tool: &str,
        token: Option<&TokenClaims>,
    ) -> Result<Verdict> {
        if let Some(t) = token {
            if !t.allows(tool) {
                return Ok(Verdict::Refuse(format!(
                    "agent token {} does not allow the tool {tool} (it allows: {})",
                    t.id,
                    t.tools.join(", ")
                )));
            }
        }
        let Some(policy) = self.policy(user).await? else {
            return Ok(Verdict::Refuse(
                "AI agents are disabled for this user: no automation policy was pushed \
                 (set [ai] enabled = true, then `ui policy push`)"
                    .to_owned(),
            ));
        };
        if !policy.enabled {
            return Ok(Verdict::Refuse(
                "AI agents are disabled for this user: [ai] enabled = false in config.toml"
                    .to_owned(),
            ));
        }
        Ok(match policy.decision(tool) {
            Decision::Autonomous => Verdict::Run,
            Decision::RequireApproval => Verdict::Approve,
            Decision::Forbidden => Verdict::Refuse(format!(
                "{tool} is forbidden by your automation policy (policy/automation.toml: forbidden)"
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state_store_interface::memory::InMemoryStore;

    fn claims(user: u8, issued_at: chrono::DateTime<Utc>) -> TokenClaims {
        TokenClaims::new(
            PublicKey([user; 32]),
            "bot",
            vec!["*".into()],
            issued_at,
            issued_at + chrono::Duration::hours(1),
        )
    }

    #[tokio::test]
    async fn revoking_all_refuses_the_users_older_tokens_only() {
        let store = InMemoryStore::new();
        store.initialize().await.unwrap();
        let book = AgentBook::new(Arc::new(store));
        let old = claims(1, Utc::now() - chrono::Duration::minutes(5));
        let other_users = claims(2, old.issued_at);
        assert!(!book.is_revoked(&old).await.unwrap());
        let before = book.revoke_all(&PublicKey([1; 32])).await.unwrap();
        assert!(book.is_revoked(&old).await.unwrap());
        assert!(!book.is_revoked(&other_users).await.unwrap());
        // A token issued after it is valid; revoking again never moves the time back.
        let newer = claims(1, before + chrono::Duration::seconds(1));
        assert!(!book.is_revoked(&newer).await.unwrap());
        let again = book.revoke_all(&PublicKey([1; 32])).await.unwrap();
        assert!(again >= before);
    }
}
