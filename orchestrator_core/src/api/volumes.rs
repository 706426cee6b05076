//! Each user's volumes (SPEC §9): named, on one node, made by the first
//! instance that uses them (see the reconciler's `volumes`). Listing shows
//! where each lives and which of the owner's workloads use it; deleting one
//! that no workload of its owner uses has its node wipe it, then forgets it.

use std::collections::BTreeMap;

use container_runtime_interface::{RuntimeError, VolumeRef};
use orchestrator_shared_types::volume::{volume_key, VolumeRecord, VOLUME_RECORD};
use orchestrator_shared_types::{PublicKey, WorkloadSpec};
use state_store_interface::StateStore;
use tracing::{info, warn};

use super::quota::{names, OwnerQuotas};
use super::Orchestrator;
use crate::error::{Error, Result};
use crate::reconciler::volumes::{get, put};

/// A volume and the owner's workloads that use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeView {
    /// The volume as recorded.
    pub record: VolumeRecord,
    /// Names of the owner's workloads whose manifest mounts it, sorted.
    pub used_by: Vec<String>,
}

/// Refuses `specs` (replacing `owner`'s workloads of the same names) if one
/// gives an existing volume of `owner` another size (a volume's size is
/// fixed when it is made), or if `owner`'s volumes — those that exist and
/// those the workloads name — would grow above `quotas.max_volume_bytes`.
pub(crate) async fn check(
    store: &dyn StateStore,
    quotas: &OwnerQuotas,
    owner: &PublicKey,
    specs: &[&WorkloadSpec],
) -> Result<()> {
    if specs.iter().all(|s| s.volumes().is_empty()) {
        return Ok(());
    }
    let prefix = volume_key(owner, "");
    let mut records: BTreeMap<String, u64> = BTreeMap::new();
    for (key, text) in store.list_records(VOLUME_RECORD).await? {
        if key.starts_with(&prefix) {
            let r: VolumeRecord = serde_json::from_str(&text).map_err(|e| {
                Error::Config(format!("the record of volume {key} is unreadable: {e}"))
            })?;
            records.insert(r.name, r.size_bytes);
        }
    }
    for spec in specs {
        for (name, size) in spec.volumes() {
            match records.get(&name) {
                Some(&had) if had != size => {
                    return Err(Error::InvalidArgument {
                        field: "volumes",
                        message: format!(
                            "volume {name:?} exists with {had} bytes, and a volume's size cannot \
                             change ({size} bytes asked); delete it first (`ui volume rm {name}`) \
                             or keep its size"
                        ),
                    });
                }
                _ => {}
            }
        }
    }
    let mine: Vec<WorkloadSpec> = store
        .list_workloads()
        .await?
        .into_iter()
        .filter(|w| w.owner == *owner)
        .map(|w| w.spec)
        .collect();
    let total = |specs: &mut dyn Iterator<Item = &WorkloadSpec>| -> u64 {
        let mut all = records.clone();
        for s in specs {
            for (name, size) in s.volumes() {
                all.entry(name).or_insert(size);
            }
        }
        all.values().fold(0u64, |a, b| a.saturating_add(*b))
    };
    let before = total(&mut mine.iter());
    let replaced = |s: &&WorkloadSpec| specs.iter().any(|n| n.name == s.name);
    let after = total(
        &mut mine
            .iter()
            .filter(|s| !replaced(s))
            .chain(specs.iter().copied()),
    );
    let limit = quotas.max_volume_bytes;
    if after > limit && after > before {
        return Err(Error::QuotaExceeded {
            quota: names::VOLUMES,
            limit,
            would_use: after,
            unit: "bytes of volumes",
        });
    }
    Ok(())
}

impl Orchestrator {
    /// `owner`'s volumes, sorted by name, with the workloads using each.
    pub async fn list_volumes(&self, owner: &PublicKey) -> Result<Vec<VolumeView>> {
        let store = self.deps.store.as_ref();
        let prefix = volume_key(owner, "");
        let workloads = store.list_workloads().await?;
        let mut out = Vec::new();
        for (key, text) in store.list_records(VOLUME_RECORD).await? {
            if !key.starts_with(&prefix) {
                continue;
            }
            let record: VolumeRecord = serde_json::from_str(&text).map_err(|e| {
                Error::Config(format!("the record of volume {key} is unreadable: {e}"))
            })?;
            let mut used_by: Vec<String> = workloads
                .iter()
                .filter(|w| w.owner == *owner && w.spec.volumes().contains_key(&record.name))
                .map(|w| w.spec.name.clone())
                .collect();
            used_by.sort();
            out.push(VolumeView { record, used_by });
        }
        out.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        Ok(out)
    }

    /// Deletes `owner`'s volume `name`: refused with [`Error::Conflict`]
    /// while one of `owner`'s workloads mounts it (or a container on its
    /// node still does); otherwise its node wipes it (the data overwritten,
    /// then removed), and only then is its record removed. Meanwhile it is
    /// marked as being deleted, so that no instance starts with it.
    pub async fn delete_volume(&self, owner: &PublicKey, name: &str) -> Result<VolumeRecord> {
        let store = self.deps.store.as_ref();
        let not_found = || Error::NotFound {
            kind: "volume",
            name: name.to_owned(),
        };
        let view = self
            .list_volumes(owner)
            .await?
            .into_iter()
            .find(|v| v.record.name == name)
            .ok_or_else(not_found)?;
        if !view.used_by.is_empty() {
            return Err(Error::Conflict {
                kind: "volume",
                name: name.to_owned(),
                message: format!(
                    "in use by workload(s) {}; delete them or remove the volume from their \
                     manifests first",
                    view.used_by.join(", ")
                ),
            });
        }
        let ctx = self.reconciler().ctx();
        let record = {
            let _one = ctx.volume_writes.lock().await;
            let mut r = get(store, owner, name).await?.ok_or_else(not_found)?;
            r.deleting = true;
            put(store, &r).await?;
            r
        };
        let volume = VolumeRef {
            owner: *owner,
            name: name.to_owned(),
        };
        if let Err(e) = self.deps.runtime.delete_volume(record.node, &volume).await {
            // Usable again: the next delete tries anew.
            let _one = ctx.volume_writes.lock().await;
            let mut r = record.clone();
            r.deleting = false;
            if let Err(undo) = put(store, &r).await {
                warn!(volume = %volume, error = %undo, "clearing the deletion mark of a volume");
            }
            return Err(match e {
                RuntimeError::VolumeInUse { containers, .. } => Error::Conflict {
                    kind: "volume",
                    name: name.to_owned(),
                    message: format!(
                        "{containers} container(s) on node {} still mount it",
                        record.node.short()
                    ),
                },
                other => other.into(),
            });
        }
        store
            .delete_record(VOLUME_RECORD, &volume_key(owner, name))
            .await?;
        info!(volume = %volume, node = %record.node.short(), "volume deleted");
        Ok(record)
    }
}
