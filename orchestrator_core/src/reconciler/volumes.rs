//! Placing instances that use volumes. A volume lives on one node: the
//! first instance that uses it chooses that node (the scheduler places it as
//! any other), and its record ([`VOLUME_RECORD`]) is written before that
//! instance's record, so before anything starts. From then on every instance
//! using it is placed by the scheduler among that one node only: when the
//! node is down, cordoned or full, the instance waits, with a reason that
//! names the volume; it is never put anywhere else.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use orchestrator_shared_types::volume::{volume_key, VolumeRecord, VOLUME_RECORD};
use orchestrator_shared_types::{InstanceId, Node, NodeId, PublicKey, WorkloadDefinition};
use scheduler_interface::{ScheduleDecision, ScheduleRequest};
use state_store_interface::StateStore;

use super::context::Ctx;
use crate::error::{Error, Result};

/// `owner`'s volume `name` as recorded, if it is.
pub(crate) async fn get(
    store: &dyn StateStore,
    owner: &PublicKey,
    name: &str,
) -> Result<Option<VolumeRecord>> {
    let key = volume_key(owner, name);
    let Some(text) = store.get_record(VOLUME_RECORD, &key).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Config(format!("the record of volume {key} is unreadable: {e}")))
}

/// Writes `record` (durable when Ok).
pub(crate) async fn put(store: &dyn StateStore, record: &VolumeRecord) -> Result<()> {
    let text = serde_json::to_string(record)
        .map_err(|e| Error::Config(format!("encoding the record of a volume: {e}")))?;
    store
        .put_record(
            VOLUME_RECORD,
            &volume_key(&record.owner, &record.name),
            &text,
        )
        .await?;
    Ok(())
}

fn names(list: &[&str]) -> String {
    list.join(", ")
}

/// Decisions for `ids`, instances of `w` (which uses volumes), among `nodes`:
/// on the node of its volumes, or, for a volume not placed yet, where the
/// scheduler puts the first instance — whose volumes are then recorded there.
pub(super) async fn place(
    ctx: &Ctx,
    w: &Arc<WorkloadDefinition>,
    ids: &[InstanceId],
    existing: Vec<(InstanceId, NodeId)>,
    nodes: &[Node],
) -> Result<Vec<ScheduleDecision>> {
    let store = ctx.deps.store.as_ref();
    let scheduler = &ctx.deps.scheduler;
    let wanted: BTreeMap<String, u64> = w.spec.volumes();
    // One placement of new volumes at a time, and none while one is deleted.
    let _one = ctx.volume_writes.lock().await;
    let mut records = Vec::new();
    for name in wanted.keys() {
        if let Some(r) = get(store, &w.owner, name).await? {
            records.push(r);
        }
    }
    let wait = |reason: String| Ok(vec![ScheduleDecision::NoPlacement(reason); ids.len()]);
    if let Some(r) = records.iter().find(|r| r.deleting) {
        return wait(format!(
            "volume {:?} is being deleted; its instances wait until it is gone",
            r.name
        ));
    }
    if let Some(other) = records.iter().find(|r| r.node != records[0].node) {
        return wait(format!(
            "volumes {:?} (on node {}) and {:?} (on node {}) live on different nodes: \
             no instance can mount both",
            records[0].name,
            records[0].node.short(),
            other.name,
            other.node.short()
        ));
    }
    let request = |instances: &[InstanceId], existing: &[(InstanceId, NodeId)]| ScheduleRequest {
        workload: Arc::clone(w),
        instances: instances.to_vec(),
        existing: existing.to_vec(),
    };
    let mut decisions = Vec::with_capacity(ids.len());
    let mut existing = existing;
    let node = match records.first() {
        Some(r) => r.node,
        None => {
            // New volumes: the first instance chooses their node.
            let Some((first, _)) = ids.split_first() else {
                return Ok(decisions);
            };
            let d = scheduler
                .schedule(&request(&[*first], &existing), nodes)
                .await?;
            match d.into_iter().next() {
                Some(ScheduleDecision::AssignNode(n)) => {
                    decisions.push(ScheduleDecision::AssignNode(n));
                    existing.push((*first, n));
                    n
                }
                Some(other) => return wait(volume_reason(&wanted, other)),
                None => return Ok(decisions),
            }
        }
    };
    let now = Utc::now();
    for (name, size) in &wanted {
        if records.iter().any(|r| &r.name == name) {
            continue;
        }
        let record = VolumeRecord {
            owner: w.owner,
            name: name.clone(),
            node,
            size_bytes: *size,
            created_at: now,
            deleting: false,
        };
        if let Err(e) = put(store, &record).await {
            if let Some(first) = ids.first().filter(|_| !decisions.is_empty()) {
                scheduler.release(*first);
            }
            return Err(e);
        }
        tracing::info!(volume = %name, owner = %w.owner.short(), node = %node.short(), "volume placed");
    }
    let rest = &ids[decisions.len()..];
    if rest.is_empty() {
        return Ok(decisions);
    }
    let here: Vec<Node> = nodes.iter().filter(|n| n.id == node).cloned().collect();
    let list: Vec<&str> = wanted.keys().map(String::as_str).collect();
    if here.is_empty() {
        let reason = format!(
            "volume {} lives on node {}, which is not a member now; its instances wait for it",
            names(&list),
            node.short()
        );
        decisions.extend(vec![ScheduleDecision::NoPlacement(reason); rest.len()]);
        return Ok(decisions);
    }
    for d in scheduler.schedule(&request(rest, &existing), &here).await? {
        decisions.push(match d {
            ScheduleDecision::NoPlacement(why) => ScheduleDecision::NoPlacement(format!(
                "volume {} lives on node {}, which takes no instance now ({why}); \
                 its instances wait for it",
                names(&list),
                node.short()
            )),
            other => other,
        });
    }
    Ok(decisions)
}

fn volume_reason(wanted: &BTreeMap<String, u64>, d: ScheduleDecision) -> String {
    let list: Vec<&str> = wanted.keys().map(String::as_str).collect();
    match d {
        ScheduleDecision::NoPlacement(why) | ScheduleDecision::Error(why) => {
            format!("no node for new volume {}: {why}", names(&list))
        }
        ScheduleDecision::AssignNode(n) => format!("placed on {}", n.short()),
    }
}
