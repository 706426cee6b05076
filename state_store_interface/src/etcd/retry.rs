//! Requests sent again while a member of the cluster cannot be reached.
//!
//! The client balances requests over every endpoint it was given. When a
//! member dies, the balancer keeps dialling it for a while (seconds to tens
//! of seconds, measured in `orchestrator_daemon/tests/ha_etcd_member.rs`),
//! and each request that lands on it fails with `Unavailable` at once,
//! though the other members form a quorum. Such a request is sent again,
//! after a short pause growing from 5 ms to 200 ms, until
//! [`EtcdConfig::request_timeout`](super::EtcdConfig) has passed: another try
//! goes to another member. A failure the cluster itself answers (a refused
//! compare, a key too large) is never retried here.
//!
//! Sending again is safe for every request this store makes: reads; writes
//! of a value that does not depend on what is stored (the same value again);
//! and transactions guarded by compares, which fail harmlessly if the first
//! attempt did commit (its own write changed the compared revision), and are
//! then re-planned from a fresh read by the caller. `Unavailable` also
//! covers "leader changed" during an etcd election, for which the same holds.

use std::future::Future;
use std::time::{Duration, Instant};

use etcd_client::KvClient;

use super::{etcd_failed, EtcdStore};
use crate::Result;

const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// Whether `e` says the request did not reach a working member.
pub(super) fn unreachable(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) => s.code() == tonic::Code::Unavailable,
        _ => false,
    }
}

impl EtcdStore {
    /// `call` on a KV client, sent again while [`unreachable`] (module doc).
    pub(super) async fn kv<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let give_up = Instant::now() + self.config.request_timeout;
        let mut pause = FIRST_PAUSE;
        loop {
            match call(self.client.kv_client()).await {
                Ok(v) => return Ok(v),
                Err(e) if unreachable(&e) && Instant::now() + pause < give_up => {
                    tracing::debug!(what, error = %e, "etcd unreachable; sending again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Err(e) => return Err(etcd_failed(what)(e)),
            }
        }
    }
}
