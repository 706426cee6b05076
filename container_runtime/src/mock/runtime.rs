//! The [`ContainerRuntime`] implementation of [`MockRuntime`].

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use container_runtime_interface::{
    ContainerRuntime, ContainerSpec, ContainerState, ContainerStatus, LogLine, LogOptions, Result,
    RuntimeError, VolumeRef,
};
use futures::stream::{self, BoxStream, StreamExt};
use orchestrator_shared_types::{ContainerId, NodeId};
use tokio::sync::{broadcast, mpsc};
use tracing::instrument;

use super::container::MockContainer;
use super::{MockBehaviour, MockRuntime, STOPPED};

#[async_trait]
impl ContainerRuntime for MockRuntime {
    #[instrument(skip(self), fields(node = %node.short()))]
    async fn init_node(&self, node: NodeId) -> Result<()> {
        let mut state = self.inner.lock();
        if state.unreachable.contains(&node) {
            return Err(RuntimeError::NodeUnreachable(node));
        }
        state.nodes.insert(node);
        Ok(())
    }

    #[instrument(
        skip(self, spec),
        fields(node = %node.short(), instance = %spec.instance_id, name = %spec.config.name)
    )]
    async fn create_container(&self, node: NodeId, spec: &ContainerSpec) -> Result<ContainerId> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        // It opens nothing (it runs no process), but it is given what the
        // real runtime would need.
        spec.sealed_secrets()?;
        let mut guard = self.inner.lock();
        let state = &mut *guard;
        state.check_node(node)?;
        let key = (spec.instance_id, spec.config.name.clone());
        if let Some(existing) = state.by_key.get(&key) {
            return Err(RuntimeError::AlreadyExists(existing.clone()));
        }
        let image = &spec.config.image;
        let exit_after = match state.behaviours.get(image).cloned().unwrap_or_default() {
            MockBehaviour::RunForever => None,
            MockBehaviour::ExitAfter { after, exit_code } => Some((after, exit_code)),
            MockBehaviour::FailPull => {
                return Err(RuntimeError::ImagePull {
                    image: image.clone(),
                    reason: "mock: pulling this image is set to fail".to_owned(),
                });
            }
            MockBehaviour::FailCreate { reason } => {
                return Err(RuntimeError::Create {
                    instance: spec.instance_id,
                    name: spec.config.name.clone(),
                    reason,
                });
            }
        };

        let id = ContainerId(format!("mock-{}", uuid::Uuid::new_v4().simple()));
        let status = ContainerStatus {
            id: id.clone(),
            node_id: node,
            instance_id: spec.instance_id,
            workload_id: spec.workload_id,
            name: spec.config.name.clone(),
            state: ContainerState::Running,
            exit_code: None,
            reason: None,
            started_at: Some(Utc::now()),
            finished_at: None,
            // The mock runs no probes: a running container is ready.
            ready: true,
            // Nor networks.
            address: None,
            ports: Vec::new(),
        };
        let mut container = MockContainer::started(status.clone(), &spec.config);
        for v in &spec.volumes {
            state
                .volumes
                .entry((node, v.volume.clone()))
                .or_insert(v.size_bytes);
            container.volumes.push(v.volume.clone());
        }
        if let Some((after, exit_code)) = exit_after {
            container.exit_timer = Some(self.inner.spawn_exit_timer(id.clone(), after, exit_code));
        }
        state.containers.insert(id.clone(), container);
        state.by_key.insert(key, id.clone());
        state.created += 1;
        self.inner.publish(status);
        tracing::debug!(container = %id, image = %image, "mock container started");
        Ok(id)
    }

    #[instrument(skip(self), fields(container = %id))]
    async fn stop_container(&self, id: &ContainerId, _grace: Duration) -> Result<()> {
        // The mock process "handles" SIGTERM at once, so the grace never runs out.
        let mut guard = self.inner.lock();
        let state = &mut *guard;
        let c = state.reachable_container(id)?;
        if c.exit(STOPPED.0, STOPPED.1) {
            self.inner.publish(c.status.clone());
        }
        Ok(())
    }

    #[instrument(skip(self), fields(container = %id))]
    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        let mut guard = self.inner.lock();
        let state = &mut *guard;
        let c = state.reachable_container(id)?;
        if c.exit(STOPPED.0, STOPPED.1) {
            self.inner.publish(c.status.clone());
        }
        if let Some(c) = state.containers.remove(id) {
            state.by_key.remove(&(c.status.instance_id, c.status.name));
        }
        Ok(())
    }

    async fn get_container_status(&self, id: &ContainerId) -> Result<ContainerStatus> {
        let mut state = self.inner.lock();
        Ok(state.reachable_container(id)?.status.clone())
    }

    async fn list_containers(&self, node: NodeId) -> Result<Vec<ContainerStatus>> {
        let state = self.inner.lock();
        state.check_node(node)?;
        Ok(state.statuses_on(node))
    }

    async fn get_container_logs(&self, id: &ContainerId, opts: LogOptions) -> Result<Vec<LogLine>> {
        let mut state = self.inner.lock();
        Ok(state.reachable_container(id)?.lines(opts.tail))
    }

    async fn follow_container_logs(&self, id: &ContainerId) -> Result<BoxStream<'static, LogLine>> {
        let mut state = self.inner.lock();
        let c = state.reachable_container(id)?;
        if !c.is_running() {
            return Ok(stream::empty().boxed());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        c.followers.push(tx);
        Ok(stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|line| (line, rx))
        })
        .boxed())
    }

    fn subscribe_status(&self) -> broadcast::Receiver<ContainerStatus> {
        self.inner.status_tx.subscribe()
    }

    async fn delete_volume(&self, node: NodeId, volume: &VolumeRef) -> Result<()> {
        let mut state = self.inner.lock();
        state.check_node(node)?;
        let users = state
            .containers
            .values()
            .filter(|c| c.status.node_id == node && c.volumes.contains(volume))
            .count();
        if users > 0 {
            return Err(RuntimeError::VolumeInUse {
                volume: volume.to_string(),
                containers: users,
            });
        }
        state.volumes.remove(&(node, volume.clone()));
        Ok(())
    }
}
