//! A container's place on the node's bridge: its namespace, address and
//! published ports, its owner's isolation, and the `resolv.conf` naming the
//! node's DNS server.

use std::path::PathBuf;
use std::sync::Arc;

use container_runtime_interface::{ContainerSpec, ContainerState, Result};
use nix::sys::signal::Signal;
use orchestrator_shared_types::ports::{CLUSTER_DNS_ZONE, OWNER_LABEL};
use orchestrator_shared_types::{ContainerId, PublishedPort};
use tokio::task::JoinHandle;
use tracing::warn;

use super::cni::{self, isolation};
use super::entry::{lock, Entry};
use super::lifecycle::create_error;
use super::process;
use super::{publish, YoukiRuntime};

/// The file in a container's directory mounted at its `/etc/resolv.conf`.
pub(super) const RESOLV_CONF: &str = "resolv.conf";

/// A bridged container's `/etc/resolv.conf`: the node's DNS server on the
/// bridge's gateway, workload names searched in the cluster's zone (`web`
/// is `web.univrs.internal`), names with a dot tried as they are first.
pub(super) fn resolv_conf(gateway: std::net::Ipv4Addr) -> String {
    format!(
        "# Written by the univrs orchestrator: the node's DNS server.\n\
         nameserver {gateway}\nsearch {CLUSTER_DNS_ZONE}\noptions ndots:1\n"
    )
}

/// A container's place on the bridge, as `attach_bridge` leaves it.
pub(super) struct Bridged {
    /// Its namespace's file.
    pub(super) netns: PathBuf,
    /// Its address.
    pub(super) address: Option<String>,
    /// The node ports it publishes.
    pub(super) published: Vec<PublishedPort>,
    /// The owner's isolation and the published ports, being made.
    pub(super) pending: Pending,
}

/// Steps of an attachment that run beside the container's creation: the
/// owner's isolation, which must be in place before the process starts
/// (no instance runs a moment without it), and the published ports (a
/// `portmap` ADD, tens of milliseconds of iptables calls), which the
/// started container follows: it is not Ready until they are in place,
/// and is killed if they cannot be. Each is awaited on the creation's
/// failure paths, and removal waits for the ports (`Entry::network_settled`),
/// so nothing is still adding rules when a container is removed.
#[derive(Default)]
pub(super) struct Pending {
    admit: Option<JoinHandle<cni::Result<()>>>,
    publish: Option<JoinHandle<cni::Result<()>>>,
}

/// What a step ended in (none: nothing to do).
pub(super) async fn outcome(
    step: Option<JoinHandle<cni::Result<()>>>,
) -> std::result::Result<(), String> {
    match step {
        None => Ok(()),
        Some(task) => match task.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("a network task failed: {e}")),
        },
    }
}

impl Pending {
    /// Waits for the owner's isolation.
    pub(super) async fn admitted(&mut self) -> std::result::Result<(), String> {
        outcome(self.admit.take()).await
    }

    /// Waits for the published ports.
    pub(super) async fn published(&mut self) -> std::result::Result<(), String> {
        outcome(self.publish.take()).await
    }

    /// The published ports being put in place, for the started container
    /// to follow (see `YoukiRuntime::ports_published`).
    pub(super) fn take_publish(&mut self) -> Option<JoinHandle<cni::Result<()>>> {
        self.publish.take()
    }

    /// Waits for both, whatever they end in (before removing a container
    /// whose creation failed).
    pub(super) async fn settle(&mut self) {
        let _ = self.admitted().await;
        let _ = self.published().await;
    }
}

impl YoukiRuntime {
    /// Takes the node ports the container publishes and attaches it to the
    /// node's bridge: its namespace, address and ports (or, `warm`, finds
    /// the warm attachment whose id it took, and publishes its ports beside
    /// the creation). Detached (and its ports given back) by `destroy`, on
    /// every path after this succeeds.
    pub(super) async fn attach_bridge(
        &self,
        spec: &ContainerSpec,
        id: &ContainerId,
        warm: bool,
    ) -> Result<Bridged> {
        let Some(cni) = &self.inner.cni else {
            return Err(create_error(
                spec,
                "bridge networking is not set up on this node (no CNI network configured)",
            ));
        };
        let published = self
            .inner
            .ports
            .take(id, &spec.config.ports)
            .map_err(|e| create_error(spec, e))?;
        // Published ports are added beside the creation (see `Pending`).
        let attached = if warm {
            cni.attached(id.as_str())
        } else {
            cni.attach(id.as_str(), Vec::new()).await
        };
        let attached = match attached {
            Ok(a) => a,
            Err(e) => {
                if warm {
                    if let Err(undo) = cni.detach(id.as_str()).await {
                        warn!(container = %id, error = %undo, "detaching a warm attachment");
                    }
                }
                self.inner.ports.release(id);
                return Err(create_error(spec, e));
            }
        };
        let address = attached.attachment.ipv4();
        let mut pending = Pending::default();
        // Only its owner's instances may reach it (and anyone its
        // published ports).
        let owner = spec
            .labels
            .get(OWNER_LABEL)
            .filter(|_| cni.config().isolate_owners);
        if let (Some(owner), Some(ip)) = (owner, address) {
            let (cni, cid, owner) = (Arc::clone(cni), id.to_string(), owner.clone());
            pending.admit = Some(tokio::spawn(async move {
                isolation::admit(cni.config(), &cid, &owner, ip).await
            }));
        }
        if !published.is_empty() {
            let (cni, cid, ports) = (
                Arc::clone(cni),
                id.to_string(),
                publish::mappings(&published),
            );
            pending.publish = Some(tokio::spawn(async move { cni.publish(&cid, ports).await }));
        }
        Ok(Bridged {
            netns: attached.netns.path().to_owned(),
            address: address.map(|ip| ip.to_string()),
            published,
            pending,
        })
    }

    /// Its published ports are in place (it is Ready if its probe says so),
    /// or could not be put there: it is killed, and says why when it exits.
    pub(super) fn ports_published(&self, entry: &Entry, done: std::result::Result<(), String>) {
        let changed = {
            let mut l = lock(&entry.live);
            l.ports_pending = false;
            match &done {
                Ok(()) => {
                    let ready = l.probe_ready;
                    let changed = l.state == ContainerState::Running && l.ready != ready;
                    l.ready = ready && l.state == ContainerState::Running;
                    changed
                }
                Err(_) => {
                    l.publish_failed = true;
                    false
                }
            }
        };
        if let Err(e) = &done {
            let id = lock(&entry.record).id.clone();
            warn!(container = %id, error = %e, "publishing the container's ports failed; killing it");
            if let Some((pid, _)) = entry.pid() {
                if let Err(e) = process::signal(pid, Signal::SIGKILL) {
                    warn!(pid, error = %e, "killing a container whose ports could not be published");
                }
            }
        }
        entry.network_settled.send_replace(true);
        if changed {
            self.publish(entry);
        }
    }

    /// Detaches the warm attachments (`CniConfig::warm`) and stops making
    /// them; containers attach at creation from then on. A daemon that
    /// stops without this leaves them to the next one, which detaches them.
    pub async fn drain_warm(&self) {
        if let Some(pool) = self.inner.warm.get() {
            pool.drain().await;
        }
    }

    /// The ids of the warm attachments ready now.
    pub fn warm_ready(&self) -> Vec<String> {
        self.inner.warm.get().map(|p| p.ready()).unwrap_or_default()
    }

    /// Starts making the warm attachments (`CniConfig::warm`), once those a
    /// previous daemon left are detached.
    pub(super) fn start_warm_pool(&self) {
        if let Some(cni) = self.inner.cni.as_ref().filter(|c| c.config().warm > 0) {
            let pool = cni::WarmPool::new(
                Arc::clone(cni),
                cni.config().warm,
                super::lifecycle::new_container_id,
            );
            pool.fill();
            let _ = self.inner.warm.set(pool);
        }
    }
}

/// Waits (up to 2 minutes) until nothing is being added to `entry`'s
/// network any more (its published ports), before it is removed.
pub(super) async fn network_settled(entry: &Entry, id: &ContainerId) {
    let mut settled = entry.network_settled.subscribe();
    if tokio::time::timeout(
        std::time::Duration::from_secs(120),
        settled.wait_for(|s| *s),
    )
    .await
    .is_err()
    {
        warn!(container = %id, "its published ports are still being added; removing it anyway");
    }
}
