//! Each user's sealed secrets (SPEC §15, §18): stored as the user sent them,
//! ciphertext only. The front-end checks the ciphertext is an age file; the
//! core keeps it, lists it for its owner and refuses to delete one a workload
//! of the owner still names.

use chrono::Utc;
use orchestrator_shared_types::secret::{SealedSecret, RECORD};
use orchestrator_shared_types::{PublicKey, WorkloadSpec};
use state_store_interface::StateStore;

use super::Orchestrator;
use crate::error::{Error, Result};

/// The secrets `spec` names (in `secret_env` and `secret_files`), sorted,
/// without repeats.
pub fn named_by(spec: &WorkloadSpec) -> Vec<&str> {
    spec.secrets().into_iter().collect()
}

/// Refuses `specs` of `owner` if one names a secret `owner` has not set: a
/// container promised a value it cannot get would fail far from the cause.
/// Called under the workload-writes lock, which deleting a secret takes too.
pub(crate) async fn check_exist(
    store: &dyn StateStore,
    owner: &PublicKey,
    specs: &[&WorkloadSpec],
) -> Result<()> {
    for spec in specs {
        for name in spec.secrets() {
            let key = SealedSecret::record_key(owner, name);
            if store.get_record(RECORD, &key).await?.is_none() {
                return Err(Error::InvalidArgument {
                    field: "secrets",
                    message: format!(
                        "workload {:?} names secret {name:?}, which does not exist: \
                         set it first (`ui secret set {name}`)",
                        spec.name
                    ),
                });
            }
        }
    }
    Ok(())
}

fn parse(key: &str, text: &str) -> Result<SealedSecret> {
    serde_json::from_str(text)
        .map_err(|e| Error::Config(format!("the stored secret {key} is unreadable: {e}")))
}

impl Orchestrator {
    /// Stores (or replaces) `owner`'s secret `name`, sealed to `recipients`.
    pub async fn put_secret(
        &self,
        owner: PublicKey,
        name: &str,
        recipients: Vec<PublicKey>,
        sealed: String,
    ) -> Result<SealedSecret> {
        let secret = SealedSecret {
            name: name.to_owned(),
            owner,
            recipients,
            sealed,
            updated_at: Utc::now(),
        };
        secret
            .validate()
            .map_err(|message| Error::InvalidArgument {
                field: "secret",
                message,
            })?;
        let text = serde_json::to_string(&secret)
            .map_err(|e| Error::Config(format!("encoding a secret: {e}")))?;
        self.deps
            .store
            .put_record(RECORD, &SealedSecret::record_key(&owner, name), &text)
            .await?;
        // Workloads that wait for it, or for a node that can open it, try again.
        for w in self.deps.store.list_workloads().await? {
            if w.owner == owner && named_by(&w.spec).contains(&name) {
                self.trigger(w.id);
            }
        }
        Ok(secret)
    }

    /// `owner`'s secret `name`.
    pub async fn secret(&self, owner: &PublicKey, name: &str) -> Result<SealedSecret> {
        let key = SealedSecret::record_key(owner, name);
        match self.deps.store.get_record(RECORD, &key).await? {
            Some(text) => parse(&key, &text),
            None => Err(Error::NotFound {
                kind: "secret",
                name: name.to_owned(),
            }),
        }
    }

    /// `owner`'s secrets, by name.
    pub async fn list_secrets(&self, owner: &PublicKey) -> Result<Vec<SealedSecret>> {
        let prefix = format!("{owner}:");
        let mut out = Vec::new();
        for (key, text) in self.deps.store.list_records(RECORD).await? {
            if key.starts_with(&prefix) {
                out.push(parse(&key, &text)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes `owner`'s secret `name`; refused while a workload of
    /// `owner` names it. Returns what was deleted.
    pub async fn delete_secret(&self, owner: &PublicKey, name: &str) -> Result<SealedSecret> {
        // No workload naming it is written meanwhile (see `check_exist`).
        let _guard = self.handle.ctx().workload_writes.lock().await;
        let secret = self.secret(owner, name).await?;
        let users: Vec<String> = self
            .deps
            .store
            .list_workloads()
            .await?
            .into_iter()
            .filter(|w| w.owner == *owner && named_by(&w.spec).contains(&name))
            .map(|w| w.spec.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::Conflict {
                kind: "secret",
                name: name.to_owned(),
                message: format!(
                    "still used by workload(s) {}; remove it from their manifests first",
                    users.join(", ")
                ),
            });
        }
        self.deps
            .store
            .delete_record(RECORD, &SealedSecret::record_key(owner, name))
            .await?;
        Ok(secret)
    }
}
