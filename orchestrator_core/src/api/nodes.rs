//! Nodes, cordon and drain, the cluster's status, and the gauges of `/metrics`.

use container_runtime_interface::ResourceUsage;
use orchestrator_shared_types::{InstanceStatus, Node, NodeId, NodeStatus, Resources};

use super::Orchestrator;
use crate::error::{Error, Result};

pub use orchestrator_api::{ClusterStatus, NetworkHealthView};

fn status_name(s: InstanceStatus) -> &'static str {
    match s {
        InstanceStatus::Pending => "Pending",
        InstanceStatus::Running => "Running",
        InstanceStatus::Succeeded => "Succeeded",
        InstanceStatus::Failed => "Failed",
        InstanceStatus::Unknown => "Unknown",
    }
}

impl Orchestrator {
    /// A node by id.
    pub async fn get_node(&self, id: &NodeId) -> Result<Option<Node>> {
        Ok(self.deps().cluster.get_node(id).await?)
    }

    /// Cordons (`true`) or uncordons a node. Uncordoning also drops the
    /// intent to drain it: what has not moved yet stays.
    pub async fn set_unschedulable(&self, id: &NodeId, unschedulable: bool) -> Result<Node> {
        let node = self
            .deps()
            .cluster
            .set_unschedulable(id, unschedulable)
            .await?;
        if !unschedulable {
            self.reconciler().undrain(*id).await;
        }
        Ok(node)
    }

    /// Cordons a node and asks the reconciler to move its instances
    /// elsewhere. Returns once the node is cordoned and the intent recorded;
    /// each workload's own pass then replaces its instances there, never
    /// more than its `max_unavailable` at once (see [`crate::reconciler::drain`]).
    pub async fn drain_node(&self, id: &NodeId) -> Result<Node> {
        let node = self.set_unschedulable(id, true).await?;
        let workloads = self.reconciler().drain(*id).await?;
        tracing::info!(node = %id.short(), workloads, "drain requested");
        Ok(node)
    }

    /// Counts of nodes, workloads and instances, and the cluster's resources.
    pub async fn cluster_status(&self) -> Result<ClusterStatus> {
        let deps = self.deps();
        let (nodes, workloads, instances) = tokio::try_join!(
            async { deps.cluster.list_nodes().await.map_err(Error::from) },
            async { deps.store.list_workloads().await.map_err(Error::from) },
            async { deps.store.list_instances().await.map_err(Error::from) },
        )?;
        let members = deps.cluster.peers().await?;
        let mut status = ClusterStatus {
            nodes_down: nodes
                .iter()
                .filter(|n| n.status == NodeStatus::Down)
                .count() as u64,
            control_plane: cluster_manager_interface::find_control_plane(
                &nodes,
                &deps.cluster.pinned_control_planes(),
            )
            .map(|n| n.id),
            members,
            nodes_total: nodes.len() as u64,
            nodes_ready: nodes
                .iter()
                .filter(|n| n.status == NodeStatus::Ready)
                .count() as u64,
            workloads_total: workloads.len() as u64,
            instances_total: instances.len() as u64,
            ..ClusterStatus::default()
        };
        for s in InstanceStatus::ALL {
            status.instances.insert(status_name(s).to_owned(), 0);
        }
        for i in &instances {
            *status
                .instances
                .entry(status_name(i.status).to_owned())
                .or_default() += 1;
        }
        let health = orchestrator_shared_types::health::network_health(&nodes, chrono::Utc::now());
        status.network_health = NetworkHealthView {
            decentralization: health.decentralization,
            bootstrap_ratio: health.bootstrap_ratio,
            operator_diversity: health.operator_diversity,
            operators: health.operators,
        };
        for n in &nodes {
            status.capacity = status.capacity.saturating_add(n.resources_capacity);
            status.allocatable = status.allocatable.saturating_add(n.resources_allocatable);
        }
        let requests: std::collections::HashMap<_, _> = workloads
            .iter()
            .map(|w| (w.id, w.spec.instance_request()))
            .collect();
        for i in &instances {
            let holds = !matches!(i.status, InstanceStatus::Succeeded | InstanceStatus::Failed);
            if let (true, Some(r)) = (holds, requests.get(&i.workload_id)) {
                let used = status.requested.entry(i.node_id).or_default();
                *used = used.saturating_add(*r);
            }
        }
        Ok(status)
    }

    /// Sets the gauges of `/metrics` from the current state.
    pub async fn refresh_gauges(&self) -> Result<()> {
        let s = self.cluster_status().await?;
        let m = &self.deps().metrics;
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        m.workloads.set(gauge(s.workloads_total));
        m.instances.set(gauge(s.instances_total));
        m.nodes.set(gauge(s.nodes_total));
        m.nodes_ready.set(gauge(s.nodes_ready));
        m.containers
            .set(gauge(s.instances.get("Running").copied().unwrap_or(0)));
        m.set_instances_by_status(s.instances.iter().map(|(k, v)| (k.as_str(), gauge(*v))));
        m.cluster_capacity_cpu_cores
            .set(s.capacity.cpu_millis as f64 / 1000.0);
        m.network_decentralization
            .set(s.network_health.decentralization);
        m.network_bootstrap_ratio
            .set(s.network_health.bootstrap_ratio);
        m.network_operator_diversity
            .set(s.network_health.operator_diversity);
        m.cluster_capacity_memory_bytes
            .set(gauge(s.capacity.memory_bytes));
        // What Ready nodes can still take: allocatable minus what is reserved.
        let free = self
            .list_nodes()
            .await?
            .iter()
            .filter(|n| n.status == NodeStatus::Ready)
            .fold(Resources::ZERO, |acc, n| {
                let reserved = self.deps().scheduler.reserved(&n.id);
                acc.saturating_add(n.resources_allocatable.saturating_sub(reserved))
            });
        m.cluster_allocatable_cpu_cores
            .set(free.cpu_millis as f64 / 1000.0);
        m.cluster_allocatable_memory_bytes
            .set(gauge(free.memory_bytes));
        // Usage as the runtime measures it (cgroups), summed over the nodes it serves.
        let mut usage = ResourceUsage::default();
        for n in self.list_nodes().await? {
            if let Ok(Some(u)) = self.deps().runtime.usage(n.id).await {
                usage.cpu_seconds += u.cpu_seconds;
                usage.memory_bytes = usage.memory_bytes.saturating_add(u.memory_bytes);
            }
        }
        m.containers_cpu_usage_seconds.set(usage.cpu_seconds);
        m.containers_memory_usage_bytes
            .set(gauge(usage.memory_bytes));
        Ok(())
    }
}
