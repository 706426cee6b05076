//! [`RoutingRuntime`]: one `ContainerRuntime` over every node of the cluster.
//! Calls about this node go to the local runtime; calls about another node go
//! to its agent through [`AgentClient`]. Container ids are routed
//! (`NODEHEX:local-id`, see [`super::routed_id`]) so that every call finds its
//! node from the id alone.
//!
//! Status changes: the local runtime's are forwarded as they happen; other
//! nodes' are published when this runtime creates or stops a container there,
//! and found by listing their containers every `poll_interval` and publishing
//! what changed, so an exit on a worker reaches the reconciler within that
//! interval. One record of the last status published per remote container
//! keeps the two sources from repeating each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use cluster_manager_interface::ClusterManager;
use container_runtime_interface::{
    ContainerRuntime, ContainerSpec, ContainerStatus, LogLine, LogOptions, ResourceUsage, Result,
    RuntimeError, VolumeRef,
};
use futures::stream::BoxStream;
use orchestrator_shared_types::admission::MemberList;
use orchestrator_shared_types::{ContainerId, Node, NodeId, NodeStatus};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::client::AgentClient;
use crate::wire::CreateContainer;
use crate::{routed_id, split_routed_id};

/// Status changes buffered per subscriber.
const STATUS_CHANNEL_CAPACITY: usize = 4096;

/// Routes container calls to the node that runs the container.
pub struct RoutingRuntime {
    local_id: NodeId,
    local: Arc<dyn ContainerRuntime>,
    cluster: Arc<dyn ClusterManager>,
    client: AgentClient,
    status: Publisher,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// Publishes remote status changes once each.
#[derive(Clone)]
struct Publisher {
    tx: broadcast::Sender<ContainerStatus>,
    seen: Arc<Mutex<HashMap<NodeId, Seen>>>,
}

impl Publisher {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Seen>> {
        // Every change is one map operation: a panic cannot leave it half-done.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes `s` (routed) unless it is the last status published for it.
    fn publish(&self, s: ContainerStatus) {
        let mut seen = self.lock();
        let node = seen.entry(s.node_id).or_default();
        if node.get(&s.id) != Some(&s) {
            node.insert(s.id.clone(), s.clone());
            // Nobody listening is fine.
            let _unheard = self.tx.send(s);
        }
    }

    /// Replaces what is known of `node` by `list`, publishing what changed.
    fn publish_list(&self, node: NodeId, list: Vec<ContainerStatus>) {
        let mut seen = self.lock();
        let before = seen.remove(&node).unwrap_or_default();
        let mut now = Seen::with_capacity(list.len());
        for s in list {
            if before.get(&s.id) != Some(&s) {
                let _unheard = self.tx.send(s.clone());
            }
            now.insert(s.id.clone(), s);
        }
        seen.insert(node, now);
    }

    fn forget(&self, node: &NodeId, id: &ContainerId) {
        if let Some(n) = self.lock().get_mut(node) {
            n.remove(id);
        }
    }

    fn retain_nodes(&self, live: &[Node]) {
        self.lock().retain(|id, _| live.iter().any(|n| n.id == *id));
    }
}

impl std::fmt::Debug for RoutingRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingRuntime")
            .field("local_id", &self.local_id)
            .finish_non_exhaustive()
    }
}

/// What a status poll compares.
type Seen = HashMap<ContainerId, ContainerStatus>;

impl RoutingRuntime {
    /// Routes between `local` (this node's runtime) and the agents of the
    /// other members of `cluster`, polling their containers every
    /// `poll_interval`. Call [`RoutingRuntime::shutdown`] to stop the
    /// background tasks.
    pub fn new(
        local: Arc<dyn ContainerRuntime>,
        cluster: Arc<dyn ClusterManager>,
        client: AgentClient,
        poll_interval: Duration,
    ) -> Self {
        let local_id = client.node_id();
        let (tx, _) = broadcast::channel(STATUS_CHANNEL_CAPACITY);
        let status = Publisher {
            tx,
            seen: Arc::default(),
        };
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(forward_local(
            local.subscribe_status(),
            status.tx.clone(),
            local_id,
            cancel.clone(),
        ));
        tasks.spawn(poll_remote(
            Arc::clone(&cluster),
            client.clone(),
            local_id,
            status.clone(),
            poll_interval,
            cancel.clone(),
        ));
        tasks.close();
        Self {
            local_id,
            local,
            cluster,
            client,
            status,
            cancel,
            tasks,
        }
    }

    /// Stops the background tasks and waits for them.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tasks.wait().await;
    }

    /// The live member `id`, or why it cannot be reached.
    async fn member(&self, id: &NodeId) -> Result<Node> {
        match self.cluster.get_node(id).await {
            Ok(Some(n)) if n.status != NodeStatus::Down => Ok(n),
            Ok(Some(_)) => Err(RuntimeError::NodeUnreachable(*id)),
            Ok(None) => Err(RuntimeError::UnknownNode(*id)),
            Err(_) => Err(RuntimeError::NodeUnreachable(*id)),
        }
    }

    /// A status `node` (another node) reported, routed and vetted.
    fn remote(&self, s: ContainerStatus, node: NodeId) -> ContainerStatus {
        route_remote(s, node, self.cluster.member_list().as_ref())
    }

    /// Splits a routed id, or says it names no container.
    fn split(id: &ContainerId) -> Result<(NodeId, ContainerId)> {
        split_routed_id(id).ok_or_else(|| RuntimeError::NotFound(id.clone()))
    }
}

fn route_status(mut s: ContainerStatus, node: NodeId) -> ContainerStatus {
    s.id = routed_id(&node, &s.id);
    s.node_id = node;
    s
}

/// [`route_status`] of a status another node reported, whose address is
/// kept only if it lies in the subnet the signed member list gives that
/// node: a node cannot claim an address of another's subnet, which would
/// put it in its owner's names and, across nodes, among the addresses the
/// owner's instances accept (`Overlay::allow_owners`).
fn route_remote(s: ContainerStatus, node: NodeId, members: Option<&MemberList>) -> ContainerStatus {
    let mut s = route_status(s, node);
    let subnet = members
        .and_then(|l| l.members.iter().find(|m| m.node_id == node))
        .and_then(|m| m.subnet);
    if let (Some(subnet), Some(address)) = (subnet, s.address.as_deref()) {
        let inside = address
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| subnet.contains(a));
        if !inside {
            warn!(node = %node, container = %s.id, address, %subnet,
                "a node reported an instance address outside its subnet; ignored");
            s.address = None;
        }
    }
    s
}

async fn forward_local(
    mut rx: broadcast::Receiver<ContainerStatus>,
    tx: broadcast::Sender<ContainerStatus>,
    node: NodeId,
    cancel: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => break,
            next = rx.recv() => next,
        };
        match next {
            Ok(s) => {
                // Nobody listening is fine.
                let _unheard = tx.send(route_status(s, node));
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                debug!(missed = n, "local status changes lagged");
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Lists the containers of every other live member each `period` and
/// publishes the statuses that changed.
async fn poll_remote(
    cluster: Arc<dyn ClusterManager>,
    client: AgentClient,
    local: NodeId,
    publisher: Publisher,
    period: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Ok(nodes) = cluster.list_nodes().await else {
            continue;
        };
        let live: Vec<Node> = nodes
            .into_iter()
            .filter(|n| n.id != local && n.status != NodeStatus::Down)
            .collect();
        publisher.retain_nodes(&live);
        let polls = live.iter().map(|n| async {
            let result = tokio::select! {
                () = cancel.cancelled() => None,
                r = client.list(n) => Some(r),
            };
            (n.id, result)
        });
        for (node, result) in futures::future::join_all(polls).await {
            if let Some(Ok(list)) = result {
                let members = cluster.member_list();
                publisher.publish_list(
                    node,
                    list.into_iter()
                        .map(|s| route_remote(s, node, members.as_ref()))
                        .collect(),
                );
            }
        }
    }
}

#[async_trait]
impl ContainerRuntime for RoutingRuntime {
    async fn init_node(&self, node: NodeId) -> Result<()> {
        if node == self.local_id {
            return self.local.init_node(node).await;
        }
        let member = self.member(&node).await?;
        self.client.init(&member).await
    }

    async fn create_container(&self, node: NodeId, spec: &ContainerSpec) -> Result<ContainerId> {
        let inner = if node == self.local_id {
            self.local.create_container(node, spec).await
        } else {
            let member = self.member(&node).await?;
            let req = CreateContainer {
                instance_id: spec.instance_id,
                workload_id: spec.workload_id,
                config: spec.config.clone(),
                labels: spec.labels.clone(),
                volumes: spec.volumes.clone(),
                secrets: spec.secrets.clone(),
            };
            // The agent's AlreadyExists already carries a routed id.
            let inner = self.client.create(&member, &req).await?;
            if let Ok(s) = self.client.status(&member, &inner).await {
                self.status.publish(self.remote(s, node));
            }
            return Ok(routed_id(&node, &inner));
        };
        match inner {
            Ok(id) => Ok(routed_id(&node, &id)),
            Err(RuntimeError::AlreadyExists(id)) => {
                Err(RuntimeError::AlreadyExists(routed_id(&node, &id)))
            }
            Err(e) => Err(e),
        }
    }

    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<()> {
        let (node, inner) = Self::split(id)?;
        if node == self.local_id {
            return self
                .local
                .stop_container(&inner, grace)
                .await
                .map_err(|e| reroute(e, node));
        }
        let member = self.member(&node).await?;
        self.client.stop(&member, &inner, grace).await?;
        if let Ok(s) = self.client.status(&member, &inner).await {
            self.status.publish(self.remote(s, node));
        }
        Ok(())
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        let (node, inner) = Self::split(id)?;
        if node == self.local_id {
            return self
                .local
                .remove_container(&inner)
                .await
                .map_err(|e| reroute(e, node));
        }
        let member = self.member(&node).await?;
        self.client.remove(&member, &inner).await?;
        self.status.forget(&node, id);
        Ok(())
    }

    async fn get_container_status(&self, id: &ContainerId) -> Result<ContainerStatus> {
        let (node, inner) = Self::split(id)?;
        if node == self.local_id {
            let status = self
                .local
                .get_container_status(&inner)
                .await
                .map_err(|e| reroute(e, node))?;
            return Ok(route_status(status, node));
        }
        let member = self.member(&node).await?;
        let status = self.client.status(&member, &inner).await?;
        Ok(self.remote(status, node))
    }

    async fn list_containers(&self, node: NodeId) -> Result<Vec<ContainerStatus>> {
        if node == self.local_id {
            let list = self.local.list_containers(node).await?;
            return Ok(list.into_iter().map(|s| route_status(s, node)).collect());
        }
        let member = self.member(&node).await?;
        let list = self.client.list(&member).await?;
        let members = self.cluster.member_list();
        Ok(list
            .into_iter()
            .map(|s| route_remote(s, node, members.as_ref()))
            .collect())
    }

    async fn get_container_logs(&self, id: &ContainerId, opts: LogOptions) -> Result<Vec<LogLine>> {
        let (node, inner) = Self::split(id)?;
        if node == self.local_id {
            return self
                .local
                .get_container_logs(&inner, opts)
                .await
                .map_err(|e| reroute(e, node));
        }
        let member = self.member(&node).await?;
        self.client.logs(&member, &inner, opts.tail).await
    }

    async fn follow_container_logs(&self, id: &ContainerId) -> Result<BoxStream<'static, LogLine>> {
        let (node, inner) = Self::split(id)?;
        if node == self.local_id {
            return self
                .local
                .follow_container_logs(&inner)
                .await
                .map_err(|e| reroute(e, node));
        }
        let member = self.member(&node).await?;
        self.client.follow(&member, &inner).await
    }

    fn subscribe_status(&self) -> broadcast::Receiver<ContainerStatus> {
        self.status.tx.subscribe()
    }

    async fn usage(&self, node: NodeId) -> Result<Option<ResourceUsage>> {
        if node == self.local_id {
            return self.local.usage(node).await;
        }
        let member = self.member(&node).await?;
        self.client.usage(&member).await
    }

    async fn container_usage(&self, id: &ContainerId) -> Result<Option<ResourceUsage>> {
        let (node, inner) = Self::split(id)?;
        if node == self.local_id {
            return self
                .local
                .container_usage(&inner)
                .await
                .map_err(|e| reroute(e, node));
        }
        let member = self.member(&node).await?;
        self.client.container_usage(&member, &inner).await
    }

    async fn delete_volume(&self, node: NodeId, volume: &VolumeRef) -> Result<()> {
        if node == self.local_id {
            return self.local.delete_volume(node, volume).await;
        }
        let member = self.member(&node).await?;
        self.client.delete_volume(&member, volume).await
    }
}

impl Drop for RoutingRuntime {
    /// Stops the background tasks (without waiting; see [`RoutingRuntime::shutdown`]).
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Puts the node back into the container ids a local error names.
fn reroute(e: RuntimeError, node: NodeId) -> RuntimeError {
    match e {
        RuntimeError::NotFound(id) => RuntimeError::NotFound(routed_id(&node, &id)),
        RuntimeError::AlreadyExists(id) => RuntimeError::AlreadyExists(routed_id(&node, &id)),
        other => other,
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
