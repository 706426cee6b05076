//! The library API the front-ends call (REST, MCP, CLI): apply, scale, roll
//! back and delete workloads, and query workloads, instances and nodes.
//!
//! Every write is acknowledged only after the store made it durable; the
//! reconciler then acts on it through the store's change feed.
//!
//! - [`logs`]: reading and following a workload's container output.
//! - [`nodes`]: nodes, cordon and drain, cluster status and gauges.
//! - [`quota`]: per-owner quotas, checked before every write that grows usage.
//! - [`secrets`]: each user's sealed secrets (ciphertext only).
//! - [`trust`]: each user's pushed trust policy, enforced on all their workloads.
//! - [`volumes`]: each user's volumes: listing and deleting (wiping) them.

pub mod logs;
pub mod nodes;
pub mod quota;
pub mod secrets;
pub mod trust;
pub mod volumes;

use std::sync::Arc;

use chrono::Utc;
use orchestrator_shared_types::{
    Node, PublicKey, Revision, WorkloadDefinition, WorkloadId, WorkloadInstance, WorkloadSpec,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::ReconcilerConfig;
use crate::error::{Error, Result};
use crate::events::ReconcileEvent;
/// Counts of a workload's instances; the reconciler owns them.
pub use crate::reconciler::status::WorkloadStatus;
use crate::reconciler::{spawn_reconciler, Deps, PassOutcome, ReconcilerHandle};
use quota::{OwnerQuotas, OwnerUsage};

/// The record `spec` makes of `existing` (or a new one): a change of template
/// keeps the old one for rollback and bumps the generation.
fn merge(
    existing: Option<WorkloadDefinition>,
    owner: PublicKey,
    spec: WorkloadSpec,
) -> WorkloadDefinition {
    match existing {
        None => WorkloadDefinition::new(owner, spec),
        Some(mut w) => {
            if w.spec.template_differs(&spec) {
                w.previous = Some(Box::new(Revision {
                    generation: w.generation,
                    spec: w.spec.clone(),
                }));
                w.generation += 1;
            }
            w.spec = spec;
            w.updated_at = Utc::now();
            w
        }
    }
}

/// A running orchestrator: the reconciler plus the library API.
pub struct Orchestrator {
    deps: Deps,
    handle: ReconcilerHandle,
    /// Observes how long containers ran (see [`crate::run_duration`]).
    run_durations: tokio::task::JoinHandle<()>,
    /// Checked before writes that grow an owner's usage.
    quotas: OwnerQuotas,
}

impl Orchestrator {
    /// Loads state and starts reconciling. Stops when `cancel` fires or on
    /// [`Orchestrator::shutdown`].
    pub async fn start(
        config: ReconcilerConfig,
        deps: Deps,
        cancel: CancellationToken,
    ) -> Result<Self> {
        deps.store.initialize().await?;
        deps.cluster.initialize().await?;
        let local = deps.cluster.local_node().await?;
        deps.runtime.init_node(local.id).await?;
        // Subscribed before the reconciler can start or stop anything.
        let observer_cancel = cancel.child_token();
        let run_durations = crate::run_duration::spawn_run_duration_observer(
            &deps.runtime,
            Arc::clone(&deps.metrics),
            observer_cancel.clone(),
        );
        let quotas = config.quotas.clone();
        let handle = match spawn_reconciler(config, deps.clone(), cancel).await {
            Ok(handle) => handle,
            Err(e) => {
                observer_cancel.cancel();
                return Err(e);
            }
        };
        Ok(Self {
            deps,
            handle,
            run_durations,
            quotas,
        })
    }

    /// The components.
    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// Reconciler actions as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<ReconcileEvent> {
        self.handle.subscribe()
    }

    /// Whether the reconciler loop has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Runs one reconcile pass of `id` now (tests, tools): through the
    /// reconciler's queue, so that it never runs beside another pass of `id`.
    pub async fn reconcile_now(&self, id: WorkloadId) -> Result<PassOutcome> {
        self.handle.reconcile_now(id).await
    }

    /// The per-owner quotas this API enforces.
    pub fn quotas(&self) -> &OwnerQuotas {
        &self.quotas
    }

    /// What `owner`'s workloads hold against the quotas. Call with
    /// `workload_writes` held, so that no write comes in between.
    async fn usage(&self, owner: &PublicKey) -> Result<OwnerUsage> {
        // A scan of every workload: the store has no index by owner, and the
        // SQLite store answers from its cache.
        let all = self.deps.store.list_workloads().await?;
        Ok(OwnerUsage::of_owner(owner, &all))
    }

    /// Refuses replacing `owner`'s workloads `before` by `after` if that
    /// grows a usage above its quota.
    async fn check_quotas(
        &self,
        owner: &PublicKey,
        before: &[&WorkloadSpec],
        after: &[&WorkloadSpec],
    ) -> Result<()> {
        let usage = self.usage(owner).await?;
        quota::check(&self.quotas, usage, usage.replacing(before, after))
    }

    /// Creates the workload `spec.name` of `owner`, or updates it. A change of
    /// template (containers, placement, restart policy) starts a rolling update
    /// under a new generation; a change of replicas alone does not. Refused
    /// with [`Error::QuotaExceeded`] if it would grow one of `owner`'s usages
    /// above its quota.
    pub async fn apply_workload(
        &self,
        owner: PublicKey,
        spec: WorkloadSpec,
    ) -> Result<WorkloadDefinition> {
        spec.validate()?;
        let _guard = self.handle.ctx().workload_writes.lock().await;
        let store = &self.deps.store;
        let existing = store.get_workload_by_name(&owner, &spec.name).await?;
        let before: Vec<&WorkloadSpec> = existing.iter().map(|w| &w.spec).collect();
        self.check_quotas(&owner, &before, &[&spec]).await?;
        volumes::check(store.as_ref(), &self.quotas, &owner, &[&spec]).await?;
        secrets::check_exist(store.as_ref(), &owner, &[&spec]).await?;
        let w = merge(existing, owner, spec);
        store.put_workload(&w).await?;
        Ok(w)
    }

    /// Creates or updates many workloads of `owner` in one durable batch,
    /// all or nothing (quotas are checked for the batch as a whole).
    pub async fn apply_workloads(
        &self,
        owner: PublicKey,
        specs: Vec<WorkloadSpec>,
    ) -> Result<Vec<WorkloadDefinition>> {
        let _guard = self.handle.ctx().workload_writes.lock().await;
        let mut existing = Vec::with_capacity(specs.len());
        for spec in &specs {
            spec.validate()?;
            existing.push(
                self.deps
                    .store
                    .get_workload_by_name(&owner, &spec.name)
                    .await?,
            );
        }
        {
            let before: Vec<&WorkloadSpec> = existing.iter().flatten().map(|w| &w.spec).collect();
            let after: Vec<&WorkloadSpec> = specs.iter().collect();
            self.check_quotas(&owner, &before, &after).await?;
            volumes::check(self.deps.store.as_ref(), &self.quotas, &owner, &after).await?;
            secrets::check_exist(self.deps.store.as_ref(), &owner, &after).await?;
        }
        let out: Vec<WorkloadDefinition> = existing
            .into_iter()
            .zip(specs)
            .map(|(existing, spec)| merge(existing, owner, spec))
            .collect();
        self.deps.store.put_workloads_batch(&out).await?;
        Ok(out)
    }

    /// Asks the reconciler to look at `id` now.
    pub fn trigger(&self, id: WorkloadId) {
        self.handle.trigger(id);
    }

    async fn owned(&self, owner: &PublicKey, name: &str) -> Result<WorkloadDefinition> {
        self.deps
            .store
            .get_workload_by_name(owner, name)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "workload",
                name: name.to_owned(),
            })
    }

    /// Sets the replica count of `owner`'s workload `name`; refused with
    /// [`Error::QuotaExceeded`] above `owner`'s replica, CPU or memory quota.
    pub async fn scale(
        &self,
        owner: &PublicKey,
        name: &str,
        replicas: u32,
    ) -> Result<WorkloadDefinition> {
        if replicas > orchestrator_shared_types::validation::MAX_REPLICAS {
            return Err(Error::InvalidArgument {
                field: "replicas",
                message: format!(
                    "{replicas} is more than the maximum of {}",
                    orchestrator_shared_types::validation::MAX_REPLICAS
                ),
            });
        }
        let _guard = self.handle.ctx().workload_writes.lock().await;
        let mut w = self.owned(owner, name).await?;
        let mut scaled = w.spec.clone();
        scaled.replicas = replicas;
        self.check_quotas(owner, &[&w.spec], &[&scaled]).await?;
        w.spec = scaled;
        w.updated_at = Utc::now();
        self.deps.store.put_workload(&w).await?;
        Ok(w)
    }

    /// Returns `owner`'s workload `name` to its previous template (a new generation).
    pub async fn rollback(&self, owner: &PublicKey, name: &str) -> Result<WorkloadDefinition> {
        let _guard = self.handle.ctx().workload_writes.lock().await;
        let mut w = self.owned(owner, name).await?;
        let prev = w.previous.take().ok_or_else(|| Error::InvalidArgument {
            field: "name",
            message: format!("workload {name:?} has no previous template to roll back to"),
        })?;
        let mut restored = prev.spec;
        restored.replicas = w.spec.replicas;
        // The old template may request more per replica than the current one.
        self.check_quotas(owner, &[&w.spec], &[&restored]).await?;
        let failed = std::mem::replace(&mut w.spec, restored);
        w.previous = Some(Box::new(Revision {
            generation: w.generation,
            spec: failed,
        }));
        w.generation += 1;
        w.updated_at = Utc::now();
        self.deps.store.put_workload(&w).await?;
        Ok(w)
    }

    /// Deletes `owner`'s workload `name`; its instances are removed by the reconciler.
    pub async fn delete_workload(
        &self,
        owner: &PublicKey,
        name: &str,
    ) -> Result<WorkloadDefinition> {
        let _guard = self.handle.ctx().workload_writes.lock().await;
        let w = self.owned(owner, name).await?;
        self.deps.store.delete_workload(&w.id).await?;
        Ok(w)
    }

    /// A workload by id.
    pub async fn get_workload(&self, id: &WorkloadId) -> Result<Option<WorkloadDefinition>> {
        Ok(self.deps.store.get_workload(id).await?)
    }

    /// `owner`'s workload `name`.
    pub async fn get_workload_by_name(
        &self,
        owner: &PublicKey,
        name: &str,
    ) -> Result<Option<WorkloadDefinition>> {
        Ok(self.deps.store.get_workload_by_name(owner, name).await?)
    }

    /// Every workload.
    pub async fn list_workloads(&self) -> Result<Vec<WorkloadDefinition>> {
        Ok(self.deps.store.list_workloads().await?)
    }

    /// A workload's instances.
    pub async fn list_instances(&self, id: &WorkloadId) -> Result<Vec<WorkloadInstance>> {
        Ok(self.deps.store.list_instances_by_workload(id).await?)
    }

    /// Counts of a workload's instances by status, as the reconciler
    /// counted them (read through its status handle).
    pub async fn workload_status(&self, w: &WorkloadDefinition) -> Result<WorkloadStatus> {
        self.handle.statuses().workload_status(w).await
    }

    /// The reconciler's handle (for the other API modules).
    pub(crate) fn reconciler(&self) -> &ReconcilerHandle {
        &self.handle
    }

    /// Every node.
    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        Ok(self.deps.cluster.list_nodes().await?)
    }

    /// Stops the reconciler, letting in-flight passes finish.
    pub async fn shutdown(self) {
        self.handle.shutdown().await;
        if let Err(e) = self.run_durations.await {
            tracing::error!(error = %e, "container run-duration observer failed");
        }
    }
}

/// Shares an orchestrator between front-ends.
pub type SharedOrchestrator = Arc<Orchestrator>;
