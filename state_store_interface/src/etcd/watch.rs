//! The change feed: one etcd watch on the store's prefix, turned into
//! [`StoreChange`]s.
//!
//! `initialize` takes a snapshot of the ids stored (nodes, workloads, and
//! instances with their workload) at one revision R, then spawns the task,
//! which watches from R + 1: a write that returns after `initialize` has a
//! later revision and is reported even if the watch is created after it.
//!
//! The task remembers the next revision it needs. Events come in revision
//! order, every event of one revision (one transaction) in one response, in
//! the order of the transaction's operations; the next revision is moved past
//! a response's events once they are published. When the watch breaks (a member goes away,
//! the connection drops) it watches again from that revision, after a short
//! backoff, so nothing is missed or reported twice. When etcd answers that the
//! revision was compacted, the events in between are gone: it takes a new
//! snapshot, publishes a put of every entity in it and a delete of every
//! entity it knew that is not, and watches on from the snapshot's revision.
//!
//! Deletes need the deleted value to know an instance's workload: the watch
//! asks for previous values, and the ids known from the snapshot and the
//! events are the fallback when etcd no longer has it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use etcd_client::{Client, Event, EventType, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions};
use orchestrator_shared_types::{InstanceId, NodeId, WorkloadId};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::etcd_failed;
use super::keys::{Entity, Keys};
use super::txn::Placement;
use crate::{Result, StoreChange};

/// First pause after a broken watch; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// (1 s: a watch that breaks on a dead member goes to a live one on another try.)
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The entities the feed knows to exist.
#[derive(Debug, Default, PartialEq, Eq)]
struct Known {
    nodes: BTreeSet<NodeId>,
    workloads: BTreeSet<WorkloadId>,
    instances: BTreeMap<InstanceId, WorkloadId>,
}

/// Why one watch ended.
enum Ended {
    /// The revision asked for is compacted (etcd's compact revision).
    Compacted(i64),
    /// The watch broke or could not be created.
    Broken(String),
}

struct Feed {
    client: Client,
    keys: Keys,
    changes: broadcast::Sender<StoreChange>,
    known: Known,
    /// The first revision not yet published.
    next: i64,
}

/// Takes the first snapshot and spawns the feed task, which runs until
/// `cancel` fires.
pub(super) async fn spawn_feed(
    client: Client,
    keys: Keys,
    changes: broadcast::Sender<StoreChange>,
    cancel: CancellationToken,
) -> Result<()> {
    let (known, revision) = snapshot(&client, &keys).await?;
    let feed = Feed {
        client,
        keys,
        changes,
        known,
        next: revision + 1,
    };
    tokio::spawn(feed.run(cancel));
    Ok(())
}

/// The ids stored, and the revision they were read at.
async fn snapshot(client: &Client, keys: &Keys) -> Result<(Known, i64)> {
    let ids = || Some(GetOptions::new().with_prefix().with_keys_only());
    let txn = Txn::new().and_then([
        TxnOp::get(keys.nodes(), ids()),
        TxnOp::get(keys.workloads(), ids()),
        TxnOp::get(keys.instances_by_workload(), ids()),
    ]);
    let resp = client
        .kv_client()
        .txn(txn)
        .await
        .map_err(etcd_failed("listing the store for the change feed"))?;
    let revision = resp.header().map_or(0, |h| h.revision());
    let mut known = Known::default();
    for op in resp.op_responses() {
        let TxnOpResponse::Get(get) = op else {
            continue;
        };
        for kv in get.kvs() {
            match keys.entity(kv.key()) {
                Some(Entity::Node(id)) => {
                    known.nodes.insert(id);
                }
                Some(Entity::Workload(id)) => {
                    known.workloads.insert(id);
                }
                _ => {
                    if let Some((workload, id)) = keys.parse_instance_of_workload(kv.key()) {
                        known.instances.insert(id, workload);
                    }
                }
            }
        }
    }
    Ok((known, revision))
}

impl Feed {
    async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = MIN_BACKOFF;
        loop {
            let next = self.next;
            let ended = tokio::select! {
                () = cancel.cancelled() => return,
                ended = self.follow() => ended,
            };
            if self.next > next {
                // It delivered something: the cluster was reachable.
                backoff = MIN_BACKOFF;
            }
            match ended {
                Ended::Compacted(compacted) => {
                    tracing::warn!(
                        from = self.next,
                        compacted,
                        "etcd compacted revisions the change feed had not seen; resynchronising"
                    );
                    let resynced = tokio::select! {
                        () = cancel.cancelled() => return,
                        r = self.resync() => r,
                    };
                    match resynced {
                        Ok(()) => {
                            backoff = MIN_BACKOFF;
                            continue;
                        }
                        Err(e) => tracing::warn!(error = %e, "change feed resync failed"),
                    }
                }
                Ended::Broken(reason) => {
                    tracing::warn!(from = self.next, reason, "etcd watch broke; watching again");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Watches from `self.next` and publishes until the watch ends.
    async fn follow(&mut self) -> Ended {
        let options = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(self.next);
        let mut stream = match self
            .client
            .watch_client()
            .watch(self.keys.root(), Some(options))
            .await
        {
            Ok(watch) => watch,
            Err(e) => return Ended::Broken(format!("creating the watch: {e}")),
        };
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => return Ended::Broken("the watch stream ended".into()),
                Err(e) => return Ended::Broken(e.to_string()),
            };
            if resp.compact_revision() != 0 {
                return Ended::Compacted(resp.compact_revision());
            }
            if resp.canceled() {
                return Ended::Broken(format!(
                    "etcd cancelled the watch: {}",
                    resp.cancel_reason()
                ));
            }
            // A revision's events all come in one response (fragmenting is
            // off), so moving past the last one here never skips a part.
            for event in resp.events() {
                self.apply(event);
            }
            if let Some(last) = resp
                .events()
                .iter()
                .filter_map(|e| e.kv())
                .map(|kv| kv.mod_revision())
                .max()
            {
                self.next = self.next.max(last + 1);
            }
        }
    }

    /// Publishes what `event` changed.
    fn apply(&mut self, event: &Event) {
        let Some(kv) = event.kv() else {
            return;
        };
        let revision = kv.mod_revision();
        let deleted = event.event_type() == EventType::Delete;
        let change = match self.keys.entity(kv.key()) {
            Some(Entity::Node(id)) if deleted => {
                self.known.nodes.remove(&id);
                Some(StoreChange::NodeDeleted(id))
            }
            Some(Entity::Node(id)) => {
                self.known.nodes.insert(id);
                Some(StoreChange::NodePut(id))
            }
            Some(Entity::Workload(id)) if deleted => {
                self.known.workloads.remove(&id);
                Some(StoreChange::WorkloadDeleted(id))
            }
            Some(Entity::Workload(id)) => {
                self.known.workloads.insert(id);
                Some(StoreChange::WorkloadPut(id))
            }
            Some(Entity::Instance(id)) => {
                let stored = if deleted {
                    event.prev_kv().map(|prev| prev.value())
                } else {
                    Some(kv.value())
                };
                let workload = stored
                    .and_then(|value| serde_json::from_slice::<Placement>(value).ok())
                    .map(|p| p.workload_id)
                    .or_else(|| self.known.instances.get(&id).copied());
                match workload {
                    Some(workload_id) if deleted => {
                        self.known.instances.remove(&id);
                        Some(StoreChange::InstanceDeleted { id, workload_id })
                    }
                    Some(workload_id) => {
                        self.known.instances.insert(id, workload_id);
                        Some(StoreChange::InstancePut { id, workload_id })
                    }
                    None => {
                        tracing::warn!(%id, revision, "instance event without its workload; not reported");
                        None
                    }
                }
            }
            None => None,
        };
        if let Some(change) = change {
            self.publish(change);
        }
    }

    fn publish(&self, change: StoreChange) {
        // An error only means nobody watches right now.
        if self.changes.send(change).is_err() {
            tracing::trace!("no watcher for store change");
        }
    }

    /// Replaces what the compacted events would have said: a put of every
    /// entity stored now, a delete of every known one that is gone.
    async fn resync(&mut self) -> Result<()> {
        let (now, revision) = snapshot(&self.client, &self.keys).await?;
        let old = std::mem::take(&mut self.known);
        for id in old.nodes.difference(&now.nodes) {
            self.publish(StoreChange::NodeDeleted(*id));
        }
        for id in old.workloads.difference(&now.workloads) {
            self.publish(StoreChange::WorkloadDeleted(*id));
        }
        for (id, workload_id) in &old.instances {
            if !now.instances.contains_key(id) {
                self.publish(StoreChange::InstanceDeleted {
                    id: *id,
                    workload_id: *workload_id,
                });
            }
        }
        for id in &now.nodes {
            self.publish(StoreChange::NodePut(*id));
        }
        for id in &now.workloads {
            self.publish(StoreChange::WorkloadPut(*id));
        }
        for (id, workload_id) in &now.instances {
            self.publish(StoreChange::InstancePut {
                id: *id,
                workload_id: *workload_id,
            });
        }
        self.known = now;
        self.next = revision + 1;
        Ok(())
    }
}
