//! The approvals queue: an agent call the user's policy holds for approval is
//! stored, with the request itself, until the user approves it (it then runs
//! exactly once, as the user) or denies it.
//!
//! States: `pending` → `executing` (stored before the call runs) → `approved`
//! (with the call's result); `pending` → `denied`; `pending` → `expired`
//! once it has waited longer than the book's approval TTL (24 h by default):
//! a call approved days later would act on a cluster the agent no longer
//! saw, so it must ask again. An approval found `executing` when the daemon
//! starts becomes `failed`: the daemon stopped mid-call, and the call is not
//! run again (at most once).

use chrono::{DateTime, Utc};
use orchestrator_shared_types::PublicKey;

use super::{parse, to_json, AgentBook, AgentError, Result};

/// Record kind of an approval (key: its id, which sorts by creation time).
const APPROVAL: &str = "approval";
/// Most bytes of a result body kept.
pub const MAX_RESULT: usize = 64 * 1024;

pub use orchestrator_api::agents::{Approval, ApprovalResult, ApprovalState};

/// The held call, to queue.
#[derive(Clone, Debug)]
pub struct NewApproval {
    /// The user.
    pub user: PublicKey,
    /// The agent.
    pub agent: String,
    /// The tool.
    pub tool: String,
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Body text.
    pub body: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
}

fn new_id(now: DateTime<Utc>) -> String {
    let millis = u64::try_from(now.timestamp_millis()).unwrap_or_default();
    let random: u128 = rand::random::<u128>() >> (128 - 76);
    format!("{millis:013x}{random:019x}")
}

impl AgentBook {
    /// Queues `call`; the stored approval. Refused when its user has
    /// `max_pending` approvals pending already.
    pub async fn queue(&self, call: NewApproval) -> Result<Approval> {
        let _one_at_a_time = self.decide.lock().await;
        let pending = self
            .approvals()
            .await?
            .iter()
            .filter(|a| a.user == call.user && a.state == ApprovalState::Pending)
            .count();
        if pending >= self.max_pending {
            return Err(AgentError::TooManyPending {
                max: self.max_pending,
            });
        }
        let now = Utc::now();
        let approval = Approval {
            id: new_id(now),
            user: call.user,
            agent: call.agent,
            tool: call.tool,
            method: call.method,
            path: call.path,
            body: call.body,
            content_type: call.content_type,
            state: ApprovalState::Pending,
            created_at: now,
            decided_at: None,
            result: None,
        };
        self.put(&approval).await?;
        Ok(approval)
    }

    async fn put(&self, approval: &Approval) -> Result<()> {
        Ok(self
            .store
            .put_record(APPROVAL, &approval.id, &to_json(approval))
            .await?)
    }

    /// `approval` as it stands now: pending past the TTL reads as expired.
    fn as_of_now(&self, mut approval: Approval) -> Approval {
        if approval.state == ApprovalState::Pending
            && Utc::now() - approval.created_at >= self.approval_ttl
        {
            approval.state = ApprovalState::Expired;
        }
        approval
    }

    /// Every approval, oldest first.
    pub async fn approvals(&self) -> Result<Vec<Approval>> {
        self.store
            .list_records(APPROVAL)
            .await?
            .into_iter()
            .map(|(key, text)| parse(APPROVAL, &key, &text).map(|a| self.as_of_now(a)))
            .collect()
    }

    /// One approval.
    pub async fn approval(&self, id: &str) -> Result<Approval> {
        match self.store.get_record(APPROVAL, id).await? {
            Some(text) => parse(APPROVAL, id, &text).map(|a| self.as_of_now(a)),
            None => Err(AgentError::NoApproval(id.to_owned())),
        }
    }

    /// Moves `id` from pending to `to` for `by` (its user, or an admin).
    async fn decide(
        &self,
        id: &str,
        by: &PublicKey,
        admin: bool,
        to: ApprovalState,
    ) -> Result<Approval> {
        let _one_at_a_time = self.decide.lock().await;
        let mut approval = self.approval(id).await?;
        if !admin && approval.user != *by {
            return Err(AgentError::NotYours(id.to_owned()));
        }
        if approval.state == ApprovalState::Expired {
            approval.decided_at = Some(Utc::now());
            self.put(&approval).await?;
            return Err(AgentError::Expired {
                id: id.to_owned(),
                hours: self.approval_ttl.num_hours(),
            });
        }
        if approval.state != ApprovalState::Pending {
            return Err(AgentError::AlreadyDecided {
                id: id.to_owned(),
                state: approval.state,
            });
        }
        approval.state = to;
        approval.decided_at = Some(Utc::now());
        self.put(&approval).await?;
        Ok(approval)
    }

    /// Approves `id`: stored as executing before the caller runs it.
    pub async fn begin(&self, id: &str, by: &PublicKey, admin: bool) -> Result<Approval> {
        self.decide(id, by, admin, ApprovalState::Executing).await
    }

    /// Denies `id`.
    pub async fn deny(&self, id: &str, by: &PublicKey, admin: bool) -> Result<Approval> {
        self.decide(id, by, admin, ApprovalState::Denied).await
    }

    /// Records what the approved call answered.
    pub async fn finish(&self, id: &str, result: ApprovalResult) -> Result<Approval> {
        let _one_at_a_time = self.decide.lock().await;
        let mut approval = self.approval(id).await?;
        approval.state = ApprovalState::Approved;
        approval.result = Some(result);
        self.put(&approval).await?;
        Ok(approval)
    }

    /// At start: approvals left executing by a stopped daemon become failed;
    /// how many.
    pub async fn recover(&self) -> Result<usize> {
        let mut n = 0;
        for mut approval in self.approvals().await? {
            if approval.state == ApprovalState::Executing {
                approval.state = ApprovalState::Failed;
                self.put(&approval).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use state_store_interface::memory::InMemoryStore;
    use state_store_interface::StateStore;

    fn key(b: u8) -> PublicKey {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[b; 32]);
        PublicKey(signing.verifying_key().to_bytes())
    }

    async fn book() -> AgentBook {
        let store = InMemoryStore::new();
        store.initialize().await.unwrap();
        AgentBook::new(Arc::new(store))
    }

    fn call(user: PublicKey) -> NewApproval {
        NewApproval {
            user,
            agent: "a".into(),
            tool: "delete_workload".into(),
            method: "DELETE".into(),
            path: "/api/v1/workloads/web".into(),
            body: None,
            content_type: None,
        }
    }

    #[tokio::test]
    async fn an_approval_runs_at_most_once_and_only_for_its_user() {
        let book = book().await;
        let a = book.queue(call(key(1))).await.unwrap();
        assert_eq!(a.state, ApprovalState::Pending);
        assert!(matches!(
            book.begin(&a.id, &key(2), false).await,
            Err(AgentError::NotYours(_))
        ));
        let running = book.begin(&a.id, &key(1), false).await.unwrap();
        assert_eq!(running.state, ApprovalState::Executing);
        assert!(matches!(
            book.begin(&a.id, &key(1), false).await,
            Err(AgentError::AlreadyDecided { .. })
        ));
        assert!(book.deny(&a.id, &key(1), false).await.is_err());
        let done = book
            .finish(
                &a.id,
                ApprovalResult {
                    status: 200,
                    body: "{}".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(done.state, ApprovalState::Approved);
        assert!(book.begin(&a.id, &key(1), false).await.is_err());
    }

    #[tokio::test]
    async fn an_approval_nobody_decided_in_time_expires_and_never_runs() {
        let store = InMemoryStore::new();
        store.initialize().await.unwrap();
        let store: Arc<dyn StateStore> = Arc::new(store);
        let patient = AgentBook::new(Arc::clone(&store));
        let hasty = AgentBook::new(store).with_approval_ttl(chrono::Duration::zero());
        let a = hasty.queue(call(key(1))).await.unwrap();
        // Within a day it is pending; past its TTL it reads as expired.
        assert_eq!(
            patient.approval(&a.id).await.unwrap().state,
            ApprovalState::Pending
        );
        assert_eq!(
            hasty.approval(&a.id).await.unwrap().state,
            ApprovalState::Expired
        );
        assert_eq!(
            hasty.approvals().await.unwrap()[0].state,
            ApprovalState::Expired
        );
        assert!(matches!(
            hasty.begin(&a.id, &key(1), false).await,
            Err(AgentError::Expired { .. })
        ));
        // Stored as expired: no book can approve it any more.
        let stored = patient.approval(&a.id).await.unwrap();
        assert_eq!(stored.state, ApprovalState::Expired);
        assert!(stored.decided_at.is_some());
        assert!(matches!(
            patient.begin(&a.id, &key(1), false).await,
            Err(AgentError::Expired { .. })
        ));
        assert!(patient.deny(&a.id, &key(1), false).await.is_err());
    }

    #[tokio::test]
    async fn a_user_has_at_most_max_pending_approvals_waiting() {
        let book = book().await.with_max_pending(2);
        let a = book.queue(call(key(1))).await.unwrap();
        book.queue(call(key(1))).await.unwrap();
        assert!(matches!(
            book.queue(call(key(1))).await,
            Err(AgentError::TooManyPending { max: 2 })
        ));
        assert_eq!(book.approvals().await.unwrap().len(), 2, "nothing stored");
        // Another user is not held up; a decided approval frees a place.
        book.queue(call(key(2))).await.unwrap();
        book.deny(&a.id, &key(1), false).await.unwrap();
        book.queue(call(key(1))).await.unwrap();
    }

    #[tokio::test]
    async fn executing_approvals_fail_on_recovery_and_ids_sort_by_time() {
        let book = book().await;
        let a = book.queue(call(key(1))).await.unwrap();
        let b = book.queue(call(key(1))).await.unwrap();
        assert!(a.id[..13] <= b.id[..13], "ids start with the creation time");
        book.begin(&a.id, &key(9), true).await.unwrap();
        assert_eq!(book.recover().await.unwrap(), 1);
        assert_eq!(
            book.approval(&a.id).await.unwrap().state,
            ApprovalState::Failed
        );
        assert_eq!(
            book.approval(&b.id).await.unwrap().state,
            ApprovalState::Pending
        );
        assert_eq!(book.approvals().await.unwrap().len(), 2);
    }
}
