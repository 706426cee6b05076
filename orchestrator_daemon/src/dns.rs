//! The node's DNS server (`orchestrator_dns`) for its bridged instances, on
//! the bridge's gateway, port 53: the address every bridged instance's
//! `/etc/resolv.conf` names. Names of workloads come from the state store
//! where this node holds it (a standalone node, a control plane), and from
//! the control plane's directory on a worker (`crate::directory`); other
//! names go to the host's resolvers.

use std::net::SocketAddr;
use std::sync::Arc;

use std::net::Ipv4Addr;

use container_runtime_interface::ContainerRuntime;
use orchestrator_dns::{follow_store, DnsServer, DnsServerConfig, LocalInstances, NameTable};
use orchestrator_shared_types::{NodeId, WorkloadId};
use state_store_interface::StateStore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use crate::config::{DaemonConfig, RuntimeKind};

/// The DNS port instances query.
const DNS_PORT: u16 = 53;

/// Starts the DNS server when this node has a bridge (youki runtime with its
/// CNI plugins), answering from `table`, which `store`'s workloads keep
/// when given (else someone else fills it: a worker's directory); it stops
/// with `cancel`. A server that cannot bind is logged, not fatal: the
/// node's instances then resolve nothing, and the log says why.
pub(crate) async fn start(
    config: &DaemonConfig,
    (table, store): (Arc<NameTable>, Option<Arc<dyn StateStore>>),
    (runtime, node): (Arc<dyn ContainerRuntime>, NodeId),
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) {
    let (RuntimeKind::Youki, Some(cni)) = (config.runtime, &config.youki.cni) else {
        return;
    };
    let addr = SocketAddr::new(cni.subnet.gateway().into(), DNS_PORT);
    if let Some(store) = store {
        tasks.spawn(follow_store(
            store,
            Arc::clone(&table),
            cancel.child_token(),
        ));
    }
    let cfg = DnsServerConfig {
        listen: vec![addr],
        upstream: true,
        local: Some(Arc::new(RuntimeInstances { runtime, node })),
    };
    match DnsServer::start(&cfg, table).await {
        Ok(server) => {
            info!(%addr, "DNS server for the bridge's instances (workload names, then the host's resolvers)");
            let cancel = cancel.child_token();
            tasks.spawn(async move {
                cancel.cancelled().await;
                server.stop().await;
            });
        }
        Err(e) => error!(error = %e, "no DNS server: bridged instances will resolve no name"),
    }
}

/// The node's instances as its runtime knows them (an instance's address is
/// there from its start, before the store hears of it).
struct RuntimeInstances {
    runtime: Arc<dyn ContainerRuntime>,
    node: NodeId,
}

#[async_trait::async_trait]
impl LocalInstances for RuntimeInstances {
    async fn workload_at(&self, addr: Ipv4Addr) -> Option<WorkloadId> {
        let addr = addr.to_string();
        let containers = self.runtime.list_containers(self.node).await.ok()?;
        containers
            .into_iter()
            .find(|c| c.address.as_deref() == Some(addr.as_str()))
            .map(|c| c.workload_id)
    }
}
