//! [`MockRuntime`]: an in-memory container runtime for tests and demos.
//!
//! From the outside it behaves like a real runtime: nodes must be initialised,
//! creation is idempotent per (instance, container name), containers start
//! `Running` and end `Exited` with an exit code and reason, every state change
//! is broadcast, and logs can be read and followed. Tests drive what a real
//! machine would do on its own:
//!
//! - [`MockRuntime::set_image_behaviour`]: per image, run forever, exit after a
//!   while, fail to create, or fail to pull ([`MockBehaviour`]);
//! - [`MockRuntime::exit_container`], [`MockRuntime::kill_container_oom`]: a
//!   crash or an OOM kill;
//! - [`MockRuntime::set_node_reachable`]: a partition or a dead node. While a
//!   node is unreachable every runtime call about it or its containers fails
//!   with [`RuntimeError::NodeUnreachable`], but its containers keep running
//!   (or exit) on the far side; state changes made there are published when the
//!   node becomes reachable again;
//! - [`MockRuntime::write_log`]: output written by a running container.
//!
//! State sits behind one `std::sync::Mutex` that is never held across an
//! `.await`; status events are sent while holding it, so subscribers see them
//! in the order the changes happened.

mod behaviour;
mod container;
mod runtime;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use container_runtime_interface::{ContainerStatus, Result, RuntimeError, VolumeRef};
use orchestrator_shared_types::{ContainerId, InstanceId, NodeId};
use tokio::sync::{broadcast, oneshot};

pub use behaviour::MockBehaviour;
use container::MockContainer;

/// Capacity of the status broadcast; a subscriber further behind than this lags.
pub const STATUS_CHANNEL_CAPACITY: usize = 1024;

/// Exit code and reason of a container stopped by the runtime (128 + SIGTERM).
const STOPPED: (i32, &str) = (143, "Killed");
/// Exit code and reason of an OOM kill (128 + SIGKILL).
const OOM_KILLED: (i32, &str) = (137, "OOMKilled");

/// An in-memory [`ContainerRuntime`](container_runtime_interface::ContainerRuntime).
///
/// Cloning gives another handle to the same runtime, so a test can keep one
/// while the code under test holds it as `Arc<dyn ContainerRuntime>`.
///
/// ```
/// # use std::time::Duration;
/// # use container_runtime::{MockBehaviour, MockRuntime};
/// # use container_runtime_interface::{ContainerRuntime, ContainerSpec, ContainerState};
/// # use orchestrator_shared_types::{ContainerConfig, InstanceId, NodeId, WorkloadId};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = MockRuntime::new();
/// runtime.set_image_behaviour("job:1", MockBehaviour::ExitAfter {
///     after: Duration::from_secs(5),
///     exit_code: 0,
/// });
/// let node = NodeId([1; 32]);
/// runtime.init_node(node).await?;
/// let config: ContainerConfig =
///     serde_json::from_str(r#"{"name": "main", "image": "web:1"}"#)?;
/// let spec = ContainerSpec {
///     instance_id: InstanceId::new(),
///     workload_id: WorkloadId::new(),
///     config,
///     labels: Default::default(),
///     volumes: Vec::new(),
///     secrets: Default::default(),
/// };
/// let id = runtime.create_container(node, &spec).await?;
/// assert_eq!(runtime.get_container_status(&id).await?.state, ContainerState::Running);
///
/// runtime.kill_container_oom(&id)?;
/// let status = runtime.get_container_status(&id).await?;
/// assert_eq!((status.exit_code, status.reason.as_deref()), (Some(137), Some("OOMKilled")));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MockRuntime {
    inner: Arc<Inner>,
    latency: Duration,
}

struct Inner {
    state: Mutex<State>,
    status_tx: broadcast::Sender<ContainerStatus>,
}

#[derive(Default)]
struct State {
    /// Nodes that went through `init_node`.
    nodes: HashSet<NodeId>,
    /// Nodes currently cut off.
    unreachable: HashSet<NodeId>,
    containers: HashMap<ContainerId, MockContainer>,
    /// Existing container per (instance, container name).
    by_key: HashMap<(InstanceId, String), ContainerId>,
    behaviours: HashMap<String, MockBehaviour>,
    /// Containers ever created.
    created: u64,
    /// Volumes made by a creation, per node, with their size in bytes.
    volumes: HashMap<(NodeId, VolumeRef), u64>,
}

impl Default for MockRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MockRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockRuntime")
            .field("containers", &self.container_count())
            .field("latency", &self.latency)
            .finish_non_exhaustive()
    }
}

impl MockRuntime {
    /// An empty runtime: no nodes, no containers, every image runs forever.
    pub fn new() -> Self {
        let (status_tx, _) = broadcast::channel(STATUS_CHANNEL_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                status_tx,
            }),
            latency: Duration::ZERO,
        }
    }

    /// The same runtime, with every `create_container` taking `latency` longer
    /// (for demos and benchmarks). The delay is a tokio sleep before any state
    /// is touched.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Makes containers created from `image` from now on behave as `behaviour`.
    pub fn set_image_behaviour(&self, image: &str, behaviour: MockBehaviour) {
        self.inner
            .lock()
            .behaviours
            .insert(image.to_owned(), behaviour);
    }

    /// Ends a running container's process with `exit_code` (reason `Completed`
    /// for 0, `Error` otherwise), as if it exited or crashed by itself. Does
    /// nothing to a container that already exited. Works while its node is
    /// unreachable.
    pub fn exit_container(&self, id: &ContainerId, exit_code: i32) -> Result<()> {
        self.inner.exit(id, exit_code, exit_reason(exit_code))
    }

    /// Ends a running container as the kernel's OOM killer would: code 137,
    /// reason `OOMKilled`. Works while its node is unreachable.
    pub fn kill_container_oom(&self, id: &ContainerId) -> Result<()> {
        self.inner.exit(id, OOM_KILLED.0, OOM_KILLED.1)
    }

    /// Cuts `node` off (`false`) or reconnects it (`true`).
    ///
    /// While it is cut off, every runtime call about it or its containers fails
    /// with [`RuntimeError::NodeUnreachable`]; its containers keep their state.
    /// State changes that happened meanwhile are published on reconnection.
    pub fn set_node_reachable(&self, node: NodeId, reachable: bool) {
        let mut state = self.inner.lock();
        if !reachable {
            state.unreachable.insert(node);
            return;
        }
        if !state.unreachable.remove(&node) {
            return;
        }
        let mut pending: Vec<&mut MockContainer> = state
            .containers
            .values_mut()
            .filter(|c| c.status.node_id == node && c.unpublished)
            .collect();
        pending.sort_by_key(|c| c.status.finished_at);
        for c in pending {
            c.unpublished = false;
            self.inner.publish(c.status.clone());
        }
    }

    /// Appends `line` to a running container's stdout, as if its process wrote
    /// it; followers receive it. Fails for unknown or exited containers.
    pub fn write_log(&self, id: &ContainerId, line: &str) -> Result<()> {
        let mut state = self.inner.lock();
        let c = state
            .containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound(id.clone()))?;
        if !c.is_running() {
            return Err(RuntimeError::Operation {
                operation: "writing the log of",
                id: id.clone(),
                reason: "the container is not running".to_owned(),
            });
        }
        c.append("stdout", line.to_owned());
        Ok(())
    }

    /// How many containers were ever created successfully (removed ones included).
    pub fn created_count(&self) -> u64 {
        self.inner.lock().created
    }

    /// How many containers run now, on every node.
    pub fn running_count(&self) -> usize {
        self.inner
            .lock()
            .containers
            .values()
            .filter(|c| c.is_running())
            .count()
    }

    /// How many containers exist now (running or exited, not removed).
    pub fn container_count(&self) -> usize {
        self.inner.lock().containers.len()
    }

    /// The volumes on `node` (made by a creation, not yet deleted), with
    /// their size in bytes, sorted by owner and name.
    pub fn volumes_on(&self, node: NodeId) -> Vec<(VolumeRef, u64)> {
        let mut v: Vec<(VolumeRef, u64)> = self
            .inner
            .lock()
            .volumes
            .iter()
            .filter(|((n, _), _)| *n == node)
            .map(|((_, v), size)| (v.clone(), *size))
            .collect();
        v.sort_by(|a, b| (a.0.owner, &a.0.name).cmp(&(b.0.owner, &b.0.name)));
        v
    }

    /// Every container on `node`, sorted by id, whether or not the node is
    /// reachable (the view from the node itself).
    pub fn containers_on(&self, node: NodeId) -> Vec<ContainerStatus> {
        self.inner.lock().statuses_on(node)
    }
}

/// `Completed` for exit code 0, `Error` otherwise.
fn exit_reason(exit_code: i32) -> &'static str {
    if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (every
        // change is a single insert or field update), so carry on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, status: ContainerStatus) {
        // An error only means nobody subscribes right now, which is fine.
        if self.status_tx.send(status).is_err() {
            tracing::trace!("no status subscribers");
        }
    }

    /// Publishes a container's status, or keeps it for later while its node
    /// is unreachable. Call with the state lock held.
    fn publish_or_defer(&self, unreachable: &HashSet<NodeId>, c: &mut MockContainer) {
        if unreachable.contains(&c.status.node_id) {
            c.unpublished = true;
        } else {
            self.publish(c.status.clone());
        }
    }

    /// Ends a running container; a no-op if it already exited.
    fn exit(&self, id: &ContainerId, exit_code: i32, reason: &str) -> Result<()> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let c = state
            .containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound(id.clone()))?;
        if c.exit(exit_code, reason) {
            tracing::debug!(container = %id, exit_code, reason, "mock container exited");
            self.publish_or_defer(&state.unreachable, c);
        }
        Ok(())
    }

    /// Starts the `ExitAfter` timer of container `id`.
    fn spawn_exit_timer(
        self: &Arc<Self>,
        id: ContainerId,
        after: Duration,
        exit_code: i32,
    ) -> oneshot::Sender<()> {
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        let weak: Weak<Inner> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(after) => {}
                // The container exited or was removed first.
                _ = cancel_rx => return,
            }
            if let Some(inner) = weak.upgrade() {
                if let Err(e) = inner.exit(&id, exit_code, exit_reason(exit_code)) {
                    tracing::debug!(container = %id, error = %e, "mock exit timer found no container");
                }
            }
        });
        cancel_tx
    }
}

impl State {
    /// Fails unless `node` is initialised and reachable.
    fn check_node(&self, node: NodeId) -> Result<()> {
        if self.unreachable.contains(&node) {
            return Err(RuntimeError::NodeUnreachable(node));
        }
        if !self.nodes.contains(&node) {
            return Err(RuntimeError::UnknownNode(node));
        }
        Ok(())
    }

    /// The container `id`, if it exists and its node is reachable.
    fn reachable_container(&mut self, id: &ContainerId) -> Result<&mut MockContainer> {
        let c = self
            .containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound(id.clone()))?;
        if self.unreachable.contains(&c.status.node_id) {
            return Err(RuntimeError::NodeUnreachable(c.status.node_id));
        }
        Ok(c)
    }

    fn statuses_on(&self, node: NodeId) -> Vec<ContainerStatus> {
        let mut out: Vec<ContainerStatus> = self
            .containers
            .values()
            .filter(|c| c.status.node_id == node)
            .map(|c| c.status.clone())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}
