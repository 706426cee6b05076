//! Fenced writes: once a store is given a [`Fence`] ([`EtcdStore::set_fence`]),
//! every write it makes is one etcd transaction that also compares the create
//! revision of the fence's leader key with the fence's revision.
//!
//! A leader key is created once per leadership and never rewritten, so its
//! create revision names that leadership: if the key is gone (resigned, the
//! lease expired or was revoked) or is another leadership's key, the compare
//! fails and etcd writes nothing. A deposed leader's late writes — sent before
//! it noticed, delayed in the network, or made after its process was paused —
//! therefore all fail, with [`StoreError::Fenced`], whatever its own clock
//! believed. Reads are not fenced.
//!
//! A read-modify-write also compares the revisions of the keys it read, so a
//! failed transaction has two possible causes. Its failure branch reads the
//! fence key in the same transaction, so etcd itself says which: if the key
//! still has the fence's create revision, another writer overtook the read
//! (tried again); if not, the fence broke ([`StoreError::Fenced`], never
//! tried again). The fence adds one compare: with etcd's limit counted
//! separately for compares and for writes, every planned transaction still
//! fits (a chunk compares at most two thirds of `max_txn_ops` keys).

use std::sync::PoisonError;

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse, TxnResponse};

use super::EtcdStore;
use crate::{Result, StoreError};

/// The proof of one leadership that fenced writes carry: the leader key and
/// its create revision ([`Leadership::fence`](super::Leadership::fence)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The leader's key in etcd's election.
    pub key: Vec<u8>,
    /// The create revision that key had when this node won.
    pub revision: i64,
}

impl Fence {
    /// The compare every fenced transaction carries.
    pub(super) fn compare(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareOp::Equal, self.revision)
    }

    /// The read of the failure branch that tells a broken fence from contention.
    pub(super) fn probe(&self) -> TxnOp {
        TxnOp::get(self.key.clone(), None)
    }

    /// After a failed transaction built with [`Fence::compare`] and
    /// [`Fence::probe`]: `Err(Fenced)` if the fence is what failed.
    pub(super) fn check(&self, resp: &TxnResponse) -> Result<()> {
        let holds = resp.op_responses().iter().any(|op| match op {
            TxnOpResponse::Get(get) => get
                .kvs()
                .iter()
                .any(|kv| kv.key() == self.key.as_slice() && kv.create_revision() == self.revision),
            _ => false,
        });
        if holds {
            Ok(())
        } else {
            Err(self.broken())
        }
    }

    pub(super) fn broken(&self) -> StoreError {
        StoreError::Fenced {
            key: String::from_utf8_lossy(&self.key).into_owned(),
        }
    }
}

/// Adds `fence`'s compare and probe to a transaction of `compares` and `writes`.
pub(super) fn fenced_txn(
    fence: Option<&Fence>,
    mut compares: Vec<Compare>,
    writes: Vec<TxnOp>,
) -> Txn {
    let Some(fence) = fence else {
        return Txn::new().when(compares).and_then(writes);
    };
    compares.push(fence.compare());
    Txn::new()
        .when(compares)
        .and_then(writes)
        .or_else([fence.probe()])
}

impl EtcdStore {
    /// Fences every write this store makes from now on with `fence` (`None`:
    /// unfenced, the default). A control plane sets the fence of the
    /// [`Leadership`](super::Leadership) it won before it acts as leader;
    /// once a newer leader exists, its writes fail with
    /// [`StoreError::Fenced`]. Writes already under way keep the fence they
    /// started with.
    pub fn set_fence(&self, fence: Option<Fence>) {
        *self.fence.write().unwrap_or_else(PoisonError::into_inner) = fence;
    }

    /// The fence set by [`EtcdStore::set_fence`], if any.
    pub fn fence(&self) -> Option<Fence> {
        self.fence
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One write that depends on nothing stored (a put or delete of one
    /// key), fenced if the store is.
    pub(super) async fn write_one(&self, operation: &str, op: TxnOp) -> Result<TxnResponse> {
        self.ready()?;
        let fence = self.fence();
        let txn = fenced_txn(fence.as_ref(), Vec::new(), vec![op]);
        let resp = self
            .kv(operation, |mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await?;
        match fence {
            // Only the fence was compared.
            Some(fence) if !resp.succeeded() => Err(fence.broken()),
            _ => Ok(resp),
        }
    }
}
