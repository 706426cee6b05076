//! [`EtcdConfig`]: how an [`EtcdStore`](super::EtcdStore) reaches its cluster.

use std::time::Duration;

use super::txn;
use crate::{Result, StoreError};

/// How an [`EtcdStore`] reaches its cluster.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client URLs of the cluster's members (`http://127.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// Every key of the store starts with `{prefix}/`.
    pub prefix: String,
    /// Most operations (compares, or writes) per transaction: etcd's
    /// `--max-txn-ops` (default 128) or less. Larger batches are split.
    /// At least 5, what one instance write needs.
    pub max_txn_ops: usize,
    /// How many times a read-modify-write is tried while other writers keep
    /// changing what it read, before it fails with `Contended`.
    pub max_attempts: u32,
    /// How long connecting to a member may take.
    pub connect_timeout: Duration,
    /// How long one request (not the watch) may take.
    pub request_timeout: Duration,
}

impl EtcdConfig {
    /// etcd's defaults for a cluster at `endpoints`, keys under `prefix`.
    pub fn new(endpoints: &[String], prefix: &str) -> Self {
        Self {
            endpoints: endpoints.to_vec(),
            prefix: prefix.to_owned(),
            max_txn_ops: 128,
            max_attempts: 10,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(StoreError::InvalidConfig("no etcd endpoint given".into()));
        }
        if self.max_txn_ops < txn::INSTANCE_OPS {
            return Err(StoreError::InvalidConfig(format!(
                "max_txn_ops {} is below {}, what one instance write needs",
                self.max_txn_ops,
                txn::INSTANCE_OPS
            )));
        }
        if self.max_attempts == 0 {
            return Err(StoreError::InvalidConfig(
                "max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
