//! Warm attachments: a few namespaces attached to the bridge ahead of time,
//! so that the plugins' own cost (tens of milliseconds each, mostly their
//! iptables calls) is off the path of a container's creation.
//!
//! A warm attachment is an ordinary one — namespace, ADD of the whole chain
//! (with no port mappings: `portmap` then makes nothing), record kept on
//! disk — made under the id of a container yet to come, with its record
//! marked `warm`. [`WarmPool::take`] hands one to a creation, which uses its
//! id as the container's: from then on it is the container's attachment in
//! every way (CHECK, DEL, `gc` after a restart). Each is used once; no
//! process ever ran in its namespace before the container's.
//!
//! Published ports are added afterwards by [`CniNetwork::publish`]: a second
//! ADD of the plugins that declare the `portMappings` capability, given the
//! attachment's result as `prevResult` (what they would have been given in
//! the chain: `portmap` and `firewall` pass their input through) and the
//! mappings in `runtimeConfig`. The record names the mappings before that
//! ADD runs, so a DEL — also after a crash — removes them.
//!
//! A daemon that dies leaves its warm attachments; the next one detaches
//! them with every other attachment no container claims
//! ([`CniNetwork::gc`]) before it fills its pool again.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing::{debug, warn};

use super::exec::invoke;
use super::{CniError, CniNetwork, Command, PortMapping, Result};

impl CniNetwork {
    /// Publishes `ports` for the attached container `container_id`: ADD of
    /// the plugins with the `portMappings` capability, on the attachment's
    /// result. On failure what was made is removed and the record names no
    /// port again.
    pub async fn publish(&self, container_id: &str, ports: Vec<PortMapping>) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        let req = self.instance_request(container_id, ports)?;
        let not_attached = || CniError::NotAttached {
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
        };
        let mut kept = self.kept(&req)?.ok_or_else(not_attached)?;
        let result = kept.result.clone().ok_or_else(not_attached)?;
        // Named first: a DEL after a crash during the ADD removes them.
        kept.port_mappings = req.port_mappings.clone();
        self.keep(&kept)?;
        let mappers: Vec<_> = self
            .plugins()?
            .iter()
            .filter(|p| p["capabilities"]["portMappings"] == json!(true))
            .collect();
        let mut failed = None;
        // Beside the container's start, which it must not slow down.
        let mut add = self.invocation(&req, Command::Add, false);
        add.background = true;
        for plugin in &mappers {
            let conf = self.plugin_config(plugin, Some(&result), &req.port_mappings);
            if let Err(e) = invoke(&add, &conf).await {
                failed = Some(e);
                break;
            }
        }
        let Some(e) = failed else {
            debug!(container = %req.container_id, "published ports");
            return Ok(());
        };
        let mut undone = true;
        for plugin in mappers.iter().rev() {
            let conf = self.plugin_config(plugin, Some(&result), &req.port_mappings);
            if let Err(del) = invoke(&self.invocation(&req, Command::Del, false), &conf).await {
                warn!(error = %del, "removing the port mappings of a failed publish");
                undone = false;
            }
        }
        // Kept naming the ports when their DEL failed, for the container's
        // own DEL to finish the job.
        if undone {
            kept.port_mappings.clear();
            self.keep(&kept)?;
        }
        Err(e)
    }

    /// Makes `container_id`'s record an ordinary one (no longer warm).
    fn claim(&self, container_id: &str) -> Result<()> {
        let req = self.instance_request(container_id, Vec::new())?;
        let mut kept = self.kept(&req)?.ok_or_else(|| CniError::NotAttached {
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
        })?;
        kept.warm = false;
        self.keep(&kept)
    }

    /// Attaches a warm namespace under `container_id`.
    async fn attach_warm(&self, container_id: &str) -> Result<()> {
        let mut req = self.instance_request(container_id, Vec::new())?;
        req.warm = true;
        self.attach_request(req).await.map(|_| ())
    }
}

/// Up to `target` warm attachments of one network, refilled in the
/// background as they are taken.
pub struct WarmPool {
    net: Arc<CniNetwork>,
    target: usize,
    new_id: fn() -> String,
    state: Mutex<State>,
    /// Woken each time an attachment being made is done.
    made: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    ready: Vec<String>,
    filling: usize,
    closed: bool,
}

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl WarmPool {
    /// A pool of `target` warm attachments of `net`, each under an id from
    /// `new_id` (the runtime's container ids). Empty until [`Self::fill`].
    pub fn new(net: Arc<CniNetwork>, target: usize, new_id: fn() -> String) -> Arc<Self> {
        Arc::new(Self {
            net,
            target,
            new_id,
            state: Mutex::new(State::default()),
            made: tokio::sync::Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts attaching as many as the pool lacks (on tasks of their own).
    /// A failure is logged and retried at the next [`Self::take`].
    pub fn fill(self: &Arc<Self>) {
        let missing = {
            let mut s = self.state();
            if s.closed {
                return;
            }
            let missing = self.target.saturating_sub(s.ready.len() + s.filling);
            s.filling += missing;
            missing
        };
        for _ in 0..missing {
            let pool = Arc::clone(self);
            tokio::spawn(async move {
                let id = (pool.new_id)();
                let made = pool.net.attach_warm(&id).await;
                let keep = {
                    let mut s = pool.state();
                    let keep = made.is_ok() && !s.closed;
                    if keep {
                        s.ready.push(id.clone());
                        s.filling -= 1;
                    }
                    keep
                };
                match made {
                    Ok(()) if keep => debug!(container = %id, "warm attachment ready"),
                    Ok(()) => {
                        if let Err(e) = pool.net.detach(&id).await {
                            warn!(container = %id, error = %e, "detaching a warm attachment");
                        }
                    }
                    Err(e) => warn!(error = %e, "attaching a warm namespace"),
                }
                // Counted as being made until it is undone: a drain waits
                // for its detach, which a daemon that then exits would cut
                // short (its namespace and address would stay behind).
                if !keep {
                    pool.state().filling -= 1;
                }
                pool.made.notify_waiters();
            });
        }
    }

    /// A warm attachment's id for a container to use as its own, or none
    /// when the pool is empty; starts a refill.
    pub fn take(self: &Arc<Self>) -> Option<String> {
        let taken = loop {
            let id = self.state().ready.pop()?;
            match self.net.claim(&id) {
                Ok(()) => break id,
                // Gone (a failing disk, someone's hands in the directory):
                // not usable; removed as well as can be.
                Err(e) => {
                    warn!(container = %id, error = %e, "a warm attachment cannot be claimed");
                    let net = Arc::clone(&self.net);
                    tokio::spawn(async move { net.detach(&id).await });
                }
            }
        };
        self.fill();
        Some(taken)
    }

    /// The ids of the warm attachments ready now.
    pub fn ready(&self) -> Vec<String> {
        self.state().ready.clone()
    }

    /// Stops refilling, detaches the warm attachments ready now, and waits
    /// for those being made (they detach themselves when done).
    pub async fn drain(&self) {
        let ready = {
            let mut s = self.state();
            s.closed = true;
            std::mem::take(&mut s.ready)
        };
        for id in ready {
            if let Err(e) = self.net.detach(&id).await {
                warn!(container = %id, error = %e, "detaching a warm attachment");
            }
        }
        loop {
            let made = self.made.notified();
            if self.state().filling == 0 {
                return;
            }
            made.await;
        }
    }
}
