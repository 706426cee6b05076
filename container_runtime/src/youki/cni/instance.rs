//! An instance's network as one step each way: a namespace of its own
//! attached to the bridge, and detached in the order exact cleanup needs.

use tokio::task::spawn_blocking;
use tracing::{instrument, warn};

use super::network::{AttachRequest, CniNetwork};
use super::result::parse_result;
use super::{Attachment, CniError, NetNs, PortMapping, Result};

/// The interface an instance gets in its namespace.
pub const INSTANCE_IFNAME: &str = "eth0";

/// An attached instance: its namespace (for the container's spec) and what
/// the plugins gave it.
#[derive(Clone, Debug)]
pub struct InstanceNetwork {
    /// The namespace, named after the container id.
    pub netns: NetNs,
    /// Its addresses.
    pub attachment: Attachment,
}

impl CniNetwork {
    pub(super) fn instance_request(
        &self,
        container_id: &str,
        ports: Vec<PortMapping>,
    ) -> Result<AttachRequest> {
        let netns = NetNs::at(&self.config().netns_dir, container_id)?;
        Ok(AttachRequest {
            container_id: container_id.to_owned(),
            netns: netns.path().to_owned(),
            ifname: INSTANCE_IFNAME.to_owned(),
            port_mappings: ports,
            warm: false,
        })
    }

    /// Makes the namespace `container_id` in [`CniConfig::netns_dir`](super::CniConfig::netns_dir)
    /// and attaches it (ADD). On failure nothing is left: the chain is
    /// undone and the namespace removed.
    #[instrument(skip(self, ports), fields(network = %self.config().name))]
    pub async fn attach(
        &self,
        container_id: &str,
        ports: Vec<PortMapping>,
    ) -> Result<InstanceNetwork> {
        let req = self.instance_request(container_id, ports)?;
        self.attach_request(req).await
    }

    /// [`Self::attach`] of a request made by `instance_request`.
    pub(super) async fn attach_request(&self, req: AttachRequest) -> Result<InstanceNetwork> {
        // The record first: a daemon that dies while the namespace is made
        // leaves a record for the next one's `gc`, not a lost namespace.
        let kept = self.begin(&req)?;
        let dir = self.config().netns_dir.clone();
        let name = req.container_id.clone();
        let made = spawn_blocking(move || NetNs::create(&dir, &name))
            .await
            .map_err(|e| CniError::Netns {
                action: "creating",
                path: req.netns.clone(),
                source: std::io::Error::other(e),
            })
            .and_then(|r| r);
        let netns = match made {
            Ok(ns) => ns,
            Err(e) => {
                if let Err(rm) = self.forget(&req) {
                    warn!(error = %rm, "forgetting an attachment whose namespace failed");
                }
                return Err(e);
            }
        };
        match self.run_add(&req, kept).await {
            Ok(attachment) => Ok(InstanceNetwork { netns, attachment }),
            Err(e) => {
                if let Err(rm) = netns.remove() {
                    warn!(error = %rm, "removing the namespace of a failed attachment");
                }
                Err(e)
            }
        }
    }

    /// The attachment of `container_id` made earlier (a warm one it took),
    /// as [`Self::attach`] would have returned it.
    pub fn attached(&self, container_id: &str) -> Result<InstanceNetwork> {
        let req = self.instance_request(container_id, Vec::new())?;
        let not_attached = || CniError::NotAttached {
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
        };
        let result = self
            .kept(&req)?
            .and_then(|k| k.result)
            .ok_or_else(not_attached)?;
        Ok(InstanceNetwork {
            netns: NetNs::at(&self.config().netns_dir, container_id)?,
            attachment: parse_result("the kept result", result)?,
        })
    }

    /// Whether a record of the instance's attachment is kept (made, or being
    /// made when a daemon died).
    pub fn is_attached(&self, container_id: &str) -> bool {
        self.instance_request(container_id, Vec::new())
            .and_then(|req| self.kept(&req))
            .is_ok_and(|k| k.is_some())
    }

    /// CHECK of an attached instance.
    pub async fn check_instance(&self, container_id: &str) -> Result<()> {
        self.check(&self.instance_request(container_id, Vec::new())?)
            .await
    }

    /// Detaches the instance: DEL while its namespace still exists (bridge
    /// finds its masquerade rules through the interface in it), then the
    /// namespace is removed. Idempotent; after a daemon restart too, since
    /// the namespace is a mount and the ADD result a file, both outliving
    /// the daemon. A failed DEL keeps the namespace, so a retry can finish.
    #[instrument(skip(self), fields(network = %self.config().name))]
    pub async fn detach(&self, container_id: &str) -> Result<()> {
        let req = self.instance_request(container_id, Vec::new())?;
        self.del(&req).await?;
        NetNs::at(&self.config().netns_dir, container_id)?.remove()
    }
}

impl CniNetwork {
    /// Detaches every kept attachment whose container `keep` rejects — those
    /// a daemon that died left behind, also halfway through ADD — and removes
    /// their namespaces when they are this network's (named after the
    /// container id in [`CniConfig::netns_dir`](super::CniConfig::netns_dir)).
    /// Goes on past a failure; returns the ids detached, or the first failure.
    #[instrument(skip(self, keep), fields(network = %self.config().name))]
    pub async fn gc(&self, keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let mut detached = Vec::new();
        let mut first: Option<CniError> = None;
        for req in self.attachments()? {
            if keep(&req.container_id) {
                continue;
            }
            let ours = NetNs::at(&self.config().netns_dir, &req.container_id)
                .ok()
                .filter(|ns| ns.path() == req.netns);
            let done = match self.del(&req).await {
                Ok(()) => ours.map_or(Ok(()), |ns| ns.remove()),
                Err(e) => Err(e),
            };
            match done {
                Ok(()) => detached.push(req.container_id),
                Err(e) => {
                    warn!(container = %req.container_id, error = %e, "detaching a left-over attachment");
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(detached), Err)
    }
}
