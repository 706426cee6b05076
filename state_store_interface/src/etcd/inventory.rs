//! What the store holds as a whole rather than item by item: its record
//! kinds ([`StateStore::list_record_kinds`](crate::StateStore::list_record_kinds)),
//! and how many keys lie under its prefix at all ([`EtcdStore::count_keys`]),
//! for a copy into it that must start from nothing.

use etcd_client::GetOptions;

use super::{etcd_failed, EtcdStore};
use crate::{Result, StoreError};

impl EtcdStore {
    /// Every record kind, sorted: one keys-only read of a single key per
    /// kind, each starting after the last kind's keys, so that the cost
    /// grows with the number of kinds, not of records.
    pub(super) async fn record_kinds(&self) -> Result<Vec<String>> {
        self.ready()?;
        let all = self.keys.all_records();
        // The first key after `{p}/records/`'s range: `/` is followed by `0`.
        let end = format!("{}0", all.trim_end_matches('/'));
        let mut from = all;
        let mut kinds = Vec::new();
        loop {
            let resp = self
                .client
                .kv_client()
                .get(
                    from.as_str(),
                    Some(
                        GetOptions::new()
                            .with_range(end.as_str())
                            .with_keys_only()
                            .with_limit(1),
                    ),
                )
                .await
                .map_err(etcd_failed("listing the record kinds"))?;
            let Some(kv) = resp.kvs().first() else {
                break;
            };
            let kind = self
                .keys
                .record_kind(kv.key())
                .ok_or_else(|| StoreError::ForeignKey {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    reason: "not a record key: {hex(kind)}/{key} under records/".into(),
                })?;
            from = self.keys.after_records(&kind);
            kinds.push(kind);
        }
        // Hex of the kind keeps byte order (a shorter kind's `/` sorts
        // before any hex digit), but the contract's order is checked here.
        kinds.sort_unstable();
        Ok(kinds)
    }

    /// How many keys there are under the store's prefix, whoever wrote them
    /// (the election's keys included): 0 for a prefix nothing uses.
    pub async fn count_keys(&self) -> Result<u64> {
        self.ready()?;
        let resp = self
            .client
            .kv_client()
            .get(
                self.keys.root(),
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
            .map_err(etcd_failed("counting the keys under the prefix"))?;
        Ok(resp.count().unsigned_abs())
    }
}
