//! A record written once by whichever control plane comes first: the
//! cluster's identity, which every control plane sharing the store must
//! agree on.

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};

use super::EtcdStore;
use crate::{check_record_key, Result, StoreError};

impl EtcdStore {
    /// The record `key` of `kind`: `value` if there was none (written in one
    /// transaction that creates it only if it is still absent), else the one
    /// stored. Two control planes starting together get the same answer.
    pub async fn record_once(&self, kind: &str, key: &str, value: &str) -> Result<String> {
        self.ready()?;
        check_record_key(kind, key)?;
        let k = self.keys.record(kind, key);
        let txn = Txn::new()
            .when([Compare::create_revision(k.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k.as_str(), value, None)])
            .or_else([TxnOp::get(k.as_str(), None)]);
        let resp = self
            .kv(&format!("writing the {kind} record once"), |mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await?;
        if resp.succeeded() {
            return Ok(value.to_owned());
        }
        for op in resp.op_responses() {
            if let TxnOpResponse::Get(get) = op {
                if let Some(kv) = get.kvs().first() {
                    return String::from_utf8(kv.value().to_vec()).map_err(|_| {
                        StoreError::ForeignKey {
                            key: k.clone(),
                            reason: "not UTF-8".into(),
                        }
                    });
                }
            }
        }
        Err(StoreError::Etcd(format!(
            "the {kind} record {key:?} was neither absent nor present (deleted meanwhile?)"
        )))
    }
}
