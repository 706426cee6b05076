//! Each user's pushed trust policy (`ui policy push`, SPEC §15): kept in the
//! store's records ([`POLICY_RECORD`]) and enforced by the reconciler on
//! every workload the user owns, whichever client created it, together with
//! the workload's own `trust` block ([`TrustRules::and`]).

use orchestrator_shared_types::trust::POLICY_RECORD;
use orchestrator_shared_types::{PublicKey, TrustRules, WorkloadDefinition};
use state_store_interface::StateStore;

use super::Orchestrator;
use crate::error::{Error, Result};

/// `owner`'s pushed trust policy as stored, if any. A record that does not
/// parse is an error, never "no policy".
pub(crate) async fn stored(
    store: &dyn StateStore,
    owner: &PublicKey,
) -> Result<Option<TrustRules>> {
    let key = owner.to_string();
    let Some(text) = store.get_record(POLICY_RECORD, &key).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::Config(format!(
            "the stored trust policy of {key} is unreadable ({e}); push it again with `ui policy push`"
        ))
    })
}

/// The rules `w` is placed under: its owner's pushed policy and its own
/// `trust` block, both. `Err` is the reason no node can be chosen (the two
/// exclude each other, or the policy is unreadable).
pub(crate) async fn effective(
    store: &dyn StateStore,
    w: &WorkloadDefinition,
) -> std::result::Result<TrustRules, String> {
    match stored(store, &w.owner).await {
        Ok(None) => Ok(w.spec.trust.clone()),
        Ok(Some(policy)) => w.spec.trust.and(&policy),
        Err(e) => Err(e.to_string()),
    }
}

impl Orchestrator {
    /// `owner`'s pushed trust policy; empty when none was pushed.
    pub async fn trust_policy(&self, owner: &PublicKey) -> Result<TrustRules> {
        Ok(stored(self.deps.store.as_ref(), owner)
            .await?
            .unwrap_or_default())
    }

    /// Replaces `owner`'s trust policy (an empty one removes it), durably,
    /// then asks the reconciler to look at each of `owner`'s workloads, so
    /// that instances it could not place are tried under the new rules.
    pub async fn set_trust_policy(&self, owner: &PublicKey, rules: &TrustRules) -> Result<()> {
        rules.validate().map_err(|message| Error::InvalidArgument {
            field: "trust policy",
            message,
        })?;
        let store = &self.deps.store;
        let key = owner.to_string();
        if rules.is_empty() {
            store.delete_record(POLICY_RECORD, &key).await?;
        } else {
            let text = serde_json::to_string(rules)
                .map_err(|e| Error::Config(format!("encoding a trust policy: {e}")))?;
            store.put_record(POLICY_RECORD, &key, &text).await?;
        }
        for w in store.list_workloads().await? {
            if w.owner == *owner {
                self.trigger(w.id);
            }
        }
        Ok(())
    }
}
