//! A container's place on the node's bridge: its namespace, address and
//! published ports, its owner's isolation, and the `resolv.conf` naming the
//! node's DNS server.

use container_runtime_interface::{ContainerSpec, Result};
use orchestrator_shared_types::ports::{CLUSTER_DNS_ZONE, OWNER_LABEL};
use orchestrator_shared_types::{ContainerId, PublishedPort};
use tracing::warn;

use super::cni::isolation;
use super::lifecycle::create_error;
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

impl YoukiRuntime {
    /// Takes the node ports the container publishes and attaches it to the
    /// node's bridge: its namespace, address and ports. Detached (and its
    /// ports given back) by `destroy`, on every path after this succeeds.
    pub(super) async fn attach_bridge(
        &self,
        spec: &ContainerSpec,
        id: &ContainerId,
    ) -> Result<(std::path::PathBuf, Option<String>, Vec<PublishedPort>)> {
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
        let attached = match cni.attach(id.as_str(), publish::mappings(&published)).await {
            Ok(a) => a,
            Err(e) => {
                self.inner.ports.release(id);
                return Err(create_error(spec, e));
            }
        };
        let address = attached.attachment.ipv4();
        // Only its owner's instances may reach it (and anyone its
        // published ports).
        let owner = spec
            .labels
            .get(OWNER_LABEL)
            .filter(|_| cni.config().isolate_owners);
        if let (Some(owner), Some(ip)) = (owner, address) {
            if let Err(e) = isolation::admit(cni.config(), id.as_str(), owner, ip).await {
                if let Err(undo) = cni.detach(id.as_str()).await {
                    warn!(container = %id, error = %undo, "detaching after a failed isolation");
                }
                self.inner.ports.release(id);
                return Err(create_error(spec, e));
            }
        }
        Ok((
            attached.netns.path().to_owned(),
            address.map(|ip| ip.to_string()),
            published,
        ))
    }
}
