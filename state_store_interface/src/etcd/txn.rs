//! Read-modify-writes as etcd transactions.
//!
//! A write that depends on what is stored (a workload's old name, an
//! instance's old node and workload, whether an instance exists) reads the
//! keys it depends on, plans its writes from them ([`Plan`]), and commits them
//! in one transaction that first compares the mod revision of every key it
//! read (0 for a key that was absent), and, in a fenced store, the leader
//! key's create revision ([`super::fence`]). If another writer changed one of them
//! in between, the transaction does nothing and the whole read-plan-commit is
//! tried again, at most [`EtcdConfig::max_attempts`](super::EtcdConfig) times.
//!
//! Only the mod revisions of the keys read are compared. A workload's old name
//! key is deleted without being read: the name index and the workload change
//! only together, in one transaction, so while the workload's revision is the
//! one read, its name key is the one its stored value names.
//!
//! Batches are planned in chunks small enough for etcd's limit of operations
//! per transaction (see the module doc of [`super`]).

use std::collections::HashMap;

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use orchestrator_shared_types::{
    InstanceId, NodeId, PublicKey, WorkloadDefinition, WorkloadId, WorkloadInstance,
};
use serde::Deserialize;

use super::fence::{fenced_txn, Fence};
use super::{decode, encode, EtcdStore};
use crate::{Result, StoreError};

/// Most writes one workload of a batch needs: its key, its name key, the
/// delete of its old name key. (Two keys read and compared.)
pub(super) const WORKLOAD_OPS: usize = 3;
/// Most writes one instance of a batch needs: its key and two index keys,
/// the deletes of two old index keys. (One key read and compared.)
pub(super) const INSTANCE_OPS: usize = 5;
/// Writes one deleted instance needs: its key and its two index keys.
pub(super) const DELETE_OPS: usize = 3;

/// What was read: key to (value, mod revision). An absent key has no entry.
pub(super) type Read = HashMap<String, (Vec<u8>, i64)>;

/// Where an instance is indexed, decoded from its stored value (any other
/// field is ignored, so a newer record with more fields still decodes).
#[derive(Deserialize)]
pub(super) struct Placement {
    pub(super) workload_id: WorkloadId,
    pub(super) node_id: NodeId,
}

/// The compares and writes of one transaction.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Key and the mod revision it had when read (0: absent).
    compares: Vec<(String, i64)>,
    /// Key and its new value (`None`: delete), each key once, in the order
    /// first written, so that the watch reports entities in write order.
    writes: Vec<(String, Option<Vec<u8>>)>,
    positions: HashMap<String, usize>,
}

impl Plan {
    /// Guards the transaction by the revision `key` had in `read`.
    fn expect(&mut self, read: &Read, key: &str) {
        if self.compares.iter().all(|(k, _)| k != key) {
            let revision = read.get(key).map_or(0, |(_, rev)| *rev);
            self.compares.push((key.to_owned(), revision));
        }
    }

    fn write(&mut self, key: String, value: Option<Vec<u8>>) {
        match self.positions.get(&key) {
            Some(&at) => self.writes[at].1 = value,
            None => {
                self.positions.insert(key.clone(), self.writes.len());
                self.writes.push((key, value));
            }
        }
    }

    fn put(&mut self, key: String, value: Vec<u8>) {
        self.write(key, Some(value));
    }

    fn delete(&mut self, key: String) {
        self.write(key, None);
    }

    /// The transaction: the compares, then the writes, both fenced by
    /// `fence` if the store is ([`super::fence`]).
    fn into_txn(self, fence: Option<&Fence>) -> Txn {
        let compares: Vec<Compare> = self
            .compares
            .into_iter()
            .map(|(key, rev)| Compare::mod_revision(key, CompareOp::Equal, rev))
            .collect();
        let writes: Vec<TxnOp> = self
            .writes
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => TxnOp::put(key, value, None),
                None => TxnOp::delete(key, None),
            })
            .collect();
        fenced_txn(fence, compares, writes)
    }
}

impl EtcdStore {
    /// Reads `keys`, as many per transaction as etcd allows. Reads of
    /// several transactions need not be at one revision: the commit compares
    /// every key's revision, which makes them as good as read at commit time.
    pub(super) async fn read_keys(&self, keys: &[String]) -> Result<Read> {
        let mut read = Read::new();
        for chunk in keys.chunks(self.config.max_txn_ops) {
            let resp = self
                .kv("reading keys", |mut kv| {
                    let gets: Vec<TxnOp> =
                        chunk.iter().map(|k| TxnOp::get(k.as_str(), None)).collect();
                    async move { kv.txn(Txn::new().and_then(gets)).await }
                })
                .await?;
            for op in resp.op_responses() {
                if let TxnOpResponse::Get(get) = op {
                    for item in get.kvs() {
                        let key = String::from_utf8_lossy(item.key()).into_owned();
                        read.insert(key, (item.value().to_vec(), item.mod_revision()));
                    }
                }
            }
        }
        Ok(read)
    }

    /// Reads `keys`, plans with `plan`, commits; again while overtaken.
    async fn read_modify_write<T>(
        &self,
        operation: &'static str,
        keys: &[String],
        plan: impl Fn(&Read) -> Result<(Plan, T)>,
    ) -> Result<T> {
        let attempts = self.config.max_attempts;
        for attempt in 1..=attempts {
            let read = self.read_keys(keys).await?;
            let (planned, out) = plan(&read)?;
            if planned.writes.is_empty() {
                return Ok(out);
            }
            let fence = self.fence();
            let txn = planned.into_txn(fence.as_ref());
            let resp = self
                .kv(operation, |mut kv| {
                    let txn = txn.clone();
                    async move { kv.txn(txn).await }
                })
                .await?;
            if resp.succeeded() {
                return Ok(out);
            }
            if let Some(fence) = &fence {
                // A broken fence is final: not contention, never retried.
                fence.check(&resp)?;
            }
            tracing::debug!(
                operation,
                attempt,
                "etcd transaction overtaken; trying again"
            );
        }
        Err(StoreError::Contended {
            operation,
            attempts,
        })
    }

    /// Creates or replaces `batch` in order; NameTaken (writing nothing) if
    /// one would take a name held by another workload.
    pub(super) async fn put_workloads(&self, batch: &[WorkloadDefinition]) -> Result<()> {
        let per_txn = self.config.max_txn_ops / WORKLOAD_OPS;
        let keys_of = |ws: &[WorkloadDefinition]| -> Vec<String> {
            ws.iter()
                .flat_map(|w| {
                    [
                        self.keys.workload(&w.id),
                        self.keys.workload_name(&w.owner, &w.spec.name),
                    ]
                })
                .collect()
        };
        if batch.len() > per_txn {
            // Several transactions: refuse a clash before writing any.
            let read = self.read_keys(&keys_of(batch)).await?;
            self.plan_workloads(&read, batch)?;
        }
        for chunk in batch.chunks(per_txn.max(1)) {
            self.read_modify_write("writing workloads", &keys_of(chunk), |read| {
                Ok((self.plan_workloads(read, chunk)?, ()))
            })
            .await?;
        }
        Ok(())
    }

    fn plan_workloads(&self, read: &Read, batch: &[WorkloadDefinition]) -> Result<Plan> {
        let mut plan = Plan::default();
        // Name key to its holder, as the batch has left it so far.
        let mut names: HashMap<String, Option<WorkloadId>> = HashMap::new();
        // Workload to its name key, as the batch has left it so far.
        let mut named: HashMap<WorkloadId, Option<String>> = HashMap::new();
        for w in batch {
            let key = self.keys.workload(&w.id);
            let name_key = self.keys.workload_name(&w.owner, &w.spec.name);
            plan.expect(read, &key);
            plan.expect(read, &name_key);
            let holder = match names.get(&name_key) {
                Some(holder) => *holder,
                None => match read.get(&name_key) {
                    Some((id, _)) => Some(parse_id(&name_key, id)?),
                    None => None,
                },
            };
            if let Some(existing) = holder.filter(|h| *h != w.id) {
                return Err(StoreError::NameTaken {
                    name: w.spec.name.clone(),
                    existing,
                });
            }
            let old_name_key = match named.get(&w.id) {
                Some(old) => old.clone(),
                None => match read.get(&key) {
                    Some((value, _)) => {
                        let old: StoredName = decode("workload", &key, value)?;
                        Some(self.keys.workload_name(&old.owner, &old.spec.name))
                    }
                    None => None,
                },
            };
            if let Some(old) = old_name_key.filter(|old| *old != name_key) {
                plan.delete(old.clone());
                names.insert(old, None);
            }
            plan.put(key, encode("workload", w)?);
            plan.put(name_key.clone(), w.id.to_string().into_bytes());
            names.insert(name_key.clone(), Some(w.id));
            named.insert(w.id, Some(name_key));
        }
        Ok(plan)
    }

    /// Deletes a workload and frees its name; whether it existed.
    pub(super) async fn remove_workload(&self, id: &WorkloadId) -> Result<bool> {
        let key = self.keys.workload(id);
        self.read_modify_write("deleting a workload", std::slice::from_ref(&key), |read| {
            let mut plan = Plan::default();
            let Some((value, _)) = read.get(&key) else {
                return Ok((plan, false));
            };
            let old: StoredName = decode("workload", &key, value)?;
            plan.expect(read, &key);
            plan.delete(key.clone());
            plan.delete(self.keys.workload_name(&old.owner, &old.spec.name));
            Ok((plan, true))
        })
        .await
    }

    /// Creates or replaces `batch` with their index keys, in order.
    pub(super) async fn put_instances(&self, batch: &[WorkloadInstance]) -> Result<()> {
        let per_txn = (self.config.max_txn_ops / INSTANCE_OPS).max(1);
        for chunk in batch.chunks(per_txn) {
            let keys: Vec<String> = chunk.iter().map(|i| self.keys.instance(&i.id)).collect();
            self.read_modify_write("writing instances", &keys, |read| {
                Ok((self.plan_instances(read, chunk)?, ()))
            })
            .await?;
        }
        Ok(())
    }

    fn plan_instances(&self, read: &Read, batch: &[WorkloadInstance]) -> Result<Plan> {
        let mut plan = Plan::default();
        let mut placed: HashMap<InstanceId, (WorkloadId, NodeId)> = HashMap::new();
        for i in batch {
            let key = self.keys.instance(&i.id);
            plan.expect(read, &key);
            let old = match placed.get(&i.id) {
                Some(old) => Some(*old),
                None => match read.get(&key) {
                    Some((value, _)) => {
                        let p: Placement = decode("instance", &key, value)?;
                        Some((p.workload_id, p.node_id))
                    }
                    None => None,
                },
            };
            if let Some((workload, node)) = old {
                if workload != i.workload_id {
                    plan.delete(self.keys.instance_of_workload(&workload, &i.id));
                }
                if node != i.node_id {
                    plan.delete(self.keys.instance_on_node(&node, &i.id));
                }
            }
            let value = encode("instance", i)?;
            plan.put(key, value.clone());
            plan.put(
                self.keys.instance_of_workload(&i.workload_id, &i.id),
                value.clone(),
            );
            plan.put(self.keys.instance_on_node(&i.node_id, &i.id), value);
            placed.insert(i.id, (i.workload_id, i.node_id));
        }
        Ok(plan)
    }

    /// Deletes the instances of `ids` that exist, with their index keys;
    /// how many existed (an id given twice counts once).
    pub(super) async fn remove_instances(&self, ids: &[InstanceId]) -> Result<usize> {
        let per_txn = (self.config.max_txn_ops / DELETE_OPS).max(1);
        let mut distinct = Vec::with_capacity(ids.len());
        for id in ids {
            if !distinct.contains(id) {
                distinct.push(*id);
            }
        }
        let mut deleted = 0;
        for chunk in distinct.chunks(per_txn) {
            let keys: Vec<String> = chunk.iter().map(|id| self.keys.instance(id)).collect();
            deleted += self
                .read_modify_write("deleting instances", &keys, |read| {
                    let mut plan = Plan::default();
                    let mut count = 0;
                    for (id, key) in chunk.iter().zip(&keys) {
                        // Absent ones too: their absence is part of the count.
                        plan.expect(read, key);
                        let Some((value, _)) = read.get(key) else {
                            continue;
                        };
                        let p: Placement = decode("instance", key, value)?;
                        plan.delete(key.clone());
                        plan.delete(self.keys.instance_of_workload(&p.workload_id, id));
                        plan.delete(self.keys.instance_on_node(&p.node_id, id));
                        count += 1;
                    }
                    Ok((plan, count))
                })
                .await?;
        }
        Ok(deleted)
    }
}

/// A workload's owner and name, decoded from its stored value.
#[derive(Deserialize)]
struct StoredName {
    owner: PublicKey,
    spec: StoredSpecName,
}

#[derive(Deserialize)]
struct StoredSpecName {
    name: String,
}

/// The workload id a name key holds.
pub(super) fn parse_id(key: &str, value: &[u8]) -> Result<WorkloadId> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| StoreError::ForeignKey {
            key: key.to_owned(),
            reason: "a workload name key must hold a workload id".to_owned(),
        })
}
