//! Workloads, instances and observations for the unit tests of compare and plan.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use orchestrator_shared_types::{
    InstanceStatus, NodeId, PublicKey, RestartPolicy, UpdateStrategy, WorkloadDefinition,
    WorkloadInstance, WorkloadSpec,
};

use super::compare::{Compared, Verdict};
use super::sense::{Containers, ObservedInstance};

/// A node id; `n` tells them apart.
pub fn node(n: u64) -> NodeId {
    cluster_manager::mock::test_node(n, 4000, 8 << 30).id
}

/// A workload of `replicas` at generation 2, with `strategy` and `policy`.
pub fn workload(
    replicas: u32,
    strategy: UpdateStrategy,
    policy: RestartPolicy,
) -> WorkloadDefinition {
    let spec: WorkloadSpec = serde_json::from_value(serde_json::json!({
        "name": "web",
        "replicas": replicas,
        "containers": [{"name": "main", "image": "example/app:1"}],
    }))
    .expect("a valid spec");
    let mut w = WorkloadDefinition::new(PublicKey([1; 32]), spec);
    w.spec.update_strategy = strategy;
    w.spec.restart_policy = policy;
    w.generation = 2;
    w
}

/// An update strategy.
pub fn strategy(max_surge: u32, max_unavailable: u32) -> UpdateStrategy {
    UpdateStrategy {
        max_surge,
        max_unavailable,
        ..UpdateStrategy::default()
    }
}

/// A record of `w` at `generation` on `node`, in `status`, last updated at `at`.
pub fn record(
    w: &WorkloadDefinition,
    generation: u64,
    node: NodeId,
    status: InstanceStatus,
    at: DateTime<Utc>,
) -> WorkloadInstance {
    let mut r = WorkloadInstance::pending(w.id, generation, node);
    r.transition(status, None, at)
        .expect("every status is one move from Pending");
    r.created_at = at;
    if status == InstanceStatus::Running {
        r.started_at = Some(at);
        r.ready = true;
        r.container_ids = vec![orchestrator_shared_types::ContainerId(format!(
            "c-{}",
            r.id
        ))];
    }
    r
}

/// An observation of `record`.
pub fn observed(
    record: WorkloadInstance,
    node_lost: bool,
    containers: Containers,
) -> ObservedInstance {
    ObservedInstance {
        record,
        node_lost,
        draining: false,
        containers,
    }
}

/// An instance after comparison, as plan sees it.
pub struct C {
    /// Generation of the record.
    pub generation: u64,
    /// Its node (1, 2, …).
    pub node: u64,
    /// Its status.
    pub status: InstanceStatus,
    /// Its verdict.
    pub verdict: Verdict,
    /// Whether its node is being drained.
    pub draining: bool,
    /// Restarts so far.
    pub restarts: u32,
}

impl C {
    /// A healthy running instance of `generation` on node `node`.
    pub fn running(generation: u64, node: u64) -> Self {
        Self {
            generation,
            node,
            status: InstanceStatus::Running,
            verdict: Verdict::Healthy,
            draining: false,
            restarts: 0,
        }
    }

    /// The same, with another status and verdict.
    pub fn with(self, status: InstanceStatus, verdict: Verdict) -> Self {
        Self {
            status,
            verdict,
            ..self
        }
    }

    /// The same, on a node being drained.
    pub fn draining(mut self) -> Self {
        self.draining = true;
        self
    }

    /// The same, with `restarts` restarts.
    pub fn restarts(mut self, restarts: u32) -> Self {
        self.restarts = restarts;
        self
    }

    /// The [`Compared`] of an instance of `w` (created `age` seconds ago, so
    /// that removal order is deterministic).
    pub fn build(&self, w: &WorkloadDefinition, age: i64) -> Compared {
        let at = Utc::now() - chrono::Duration::seconds(age);
        let mut r = record(w, self.generation, node(self.node), self.status, at);
        r.restarts = self.restarts;
        Compared {
            record: r,
            changed: false,
            was_lost: false,
            verdict: self.verdict.clone(),
            draining: self.draining,
        }
    }
}

/// The compared instances of `cs`, oldest first.
pub fn build_all(w: &WorkloadDefinition, cs: &[C]) -> Vec<Compared> {
    let n = cs.len() as i64;
    cs.iter()
        .enumerate()
        .map(|(i, c)| c.build(w, 100 + n - i as i64))
        .collect()
}
