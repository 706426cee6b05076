//! Pledges (MYCELIAL.md §3 "Ledger" 4, SPEC §17): when a node of one operator
//! starts an instance of another's workload, the control plane places a hold
//! on the owner's credit — price × requested CPU × the pledge period, capped
//! at the same price applied to the node's allocatable CPU — and settles it
//! for the share of the period the instance ran when the instance fails or
//! goes, releasing the rest. A pledge a full period old is settled in full
//! and placed again while the instance runs.
//!
//! The price is per CPU core-hour in milli-units (`--credit-price`); 0, the
//! default, places no pledges: a standalone node or a cluster of one
//! operator has nothing to charge. An instance on a node of its owner's own
//! operator is never charged. A pledge the owner cannot cover (past their
//! credit limit) is refused by the ledger and logged; the instance runs.
//!
//! Delivery is measured in time run; resources measured against those
//! promised feed honesty (H) rather than the price.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cluster_manager_interface::ClusterManager;
use mycelial::ledger::{ControlAction, Hold, LedgerError, Settle};
use mycelial::{NodeStanding, TrustSource};
use orchestrator_shared_types::{InstanceId, InstanceStatus, Node, NodeId, PublicKey, WorkloadId};
use state_store_interface::StateStore;
use tracing::{debug, info, warn};

use super::credits::CreditError;
use super::TrustService;
use orchestrator_core::events::ReconcileEvent;

/// Parts per million.
const PPM: i64 = 1_000_000;
/// CPU charged for an instance that requests none, in millicores.
const MIN_CPU_MILLIS: u64 = 100;

/// What pledges cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PledgeConfig {
    /// Milli-units per CPU core-hour; 0 places no pledges.
    pub price: i64,
    /// How long one pledge covers (renewed while the instance runs).
    pub period: Duration,
    /// Share of each payment that goes to the commons, in parts per million.
    pub fee_ppm: u32,
}

impl Default for PledgeConfig {
    /// No pledges (price 0); an hour per pledge and a 1 % fee once priced.
    fn default() -> Self {
        Self {
            price: 0,
            period: Duration::from_secs(3600),
            fee_ppm: 10_000,
        }
    }
}

impl PledgeConfig {
    /// `price` × `cpu_millis` cores × the period in hours, in milli-units
    /// (rounded down, at least 1).
    pub fn amount(&self, cpu_millis: u64) -> i64 {
        let period_ms = i128::try_from(self.period.as_millis()).unwrap_or(i128::MAX);
        let v = i128::from(self.price)
            .saturating_mul(i128::from(cpu_millis))
            .saturating_mul(period_ms)
            / (1000 * 3_600_000);
        i64::try_from(v).unwrap_or(i64::MAX).max(1)
    }
}

/// The scheduler's trust source on a control plane: standings from the
/// reputation engine; what an owner can pledge from the credit ledger's
/// headroom when instances are priced (without limit when they are not, or
/// before the ledger is loaded — the hold itself is still checked when it is
/// placed), and what a pledge costs: the amount held when the instance starts.
#[derive(Debug)]
pub struct PricedTrust {
    trust: Arc<TrustService>,
}

impl PricedTrust {
    /// Over `trust`.
    pub fn new(trust: Arc<TrustService>) -> Self {
        Self { trust }
    }
}

impl TrustSource for PricedTrust {
    fn standings(
        &self,
        user: &PublicKey,
        trusted: &[PublicKey],
        nodes: &[Node],
    ) -> Vec<NodeStanding> {
        self.trust.engine().standings(user, trusted, nodes)
    }

    fn pledge_headroom(&self, owner: &PublicKey) -> Option<i64> {
        if self.trust.pledges.price <= 0 {
            return None;
        }
        Some(self.trust.credits()?.headroom(owner))
    }

    fn pledge_cost(&self, node: &Node, cpu_millis: u64) -> i64 {
        let p = &self.trust.pledges;
        if p.price <= 0 {
            return 0;
        }
        p.amount(cpu_millis.max(MIN_CPU_MILLIS))
            .min(p.amount(node.resources_allocatable.cpu_millis.max(MIN_CPU_MILLIS)))
    }
}

/// The hold id of an instance's pledge.
fn hold_id(instance: &InstanceId) -> String {
    format!("instance-{instance}")
}

impl TrustService {
    /// Charges for instances by `pledges` (the default charges nothing).
    pub fn with_pledges(mut self, pledges: PledgeConfig) -> Self {
        self.pledges = pledges;
        self
    }

    /// Places, settles or releases pledges as instances start, fail and go.
    pub(super) async fn on_pledge_event(
        &self,
        store: &dyn StateStore,
        cluster: &dyn ClusterManager,
        event: &ReconcileEvent,
    ) {
        if self.pledges.price <= 0 {
            return;
        }
        match event {
            ReconcileEvent::InstanceStarted {
                workload,
                instance,
                node,
                ..
            } => {
                self.pledge(store, cluster, *workload, *instance, *node)
                    .await
            }
            ReconcileEvent::InstanceStatusChanged {
                instance,
                status: InstanceStatus::Failed | InstanceStatus::Succeeded,
                ..
            }
            | ReconcileEvent::InstanceRemoved { instance, .. } => {
                self.settle_pledge(instance, Utc::now()).await;
            }
            _ => {}
        }
    }

    /// Places the pledge of `instance` on `node`, unless one is open or
    /// nothing is charged.
    async fn pledge(
        &self,
        store: &dyn StateStore,
        cluster: &dyn ClusterManager,
        workload: WorkloadId,
        instance: InstanceId,
        node: NodeId,
    ) {
        let Some(credits) = self.credits() else {
            return;
        };
        let id = hold_id(&instance);
        if credits.hold_placed(&id).await.is_some() {
            return;
        }
        let (w, n) = match (
            store.get_workload(&workload).await,
            cluster.get_node(&node).await,
        ) {
            (Ok(Some(w)), Ok(Some(n))) => (w, n),
            (w, n) => {
                debug!(%instance, workload = ?w.err(), node = ?n.err(), "no pledge: workload or node unknown");
                return;
            }
        };
        if w.owner == n.operator {
            return;
        }
        let cpu = w.spec.instance_request().cpu_millis.max(MIN_CPU_MILLIS);
        let capacity = self
            .pledges
            .amount(n.resources_allocatable.cpu_millis.max(MIN_CPU_MILLIS));
        let hold = Hold {
            id,
            payer: w.owner,
            provider: n.operator,
            amount: self.pledges.amount(cpu).min(capacity),
            capacity,
            reference: format!("workload {} instance {instance}", w.spec.name),
        };
        let amount = hold.amount;
        match credits.apply_control(ControlAction::Hold(hold)).await {
            Ok(_) => info!(%instance, amount, "pledge placed"),
            Err(CreditError::Refused(LedgerError::DuplicateHold { .. })) => {}
            Err(e) => {
                warn!(%instance, amount, error = %e, "pledge refused; the instance runs unpledged")
            }
        }
    }

    /// Settles the open pledge of `instance` for the share of its period
    /// that passed by `now`.
    async fn settle_pledge(&self, instance: &InstanceId, now: DateTime<Utc>) {
        let Some(credits) = self.credits() else {
            return;
        };
        let id = hold_id(instance);
        let Some(placed) = credits.hold_placed(&id).await else {
            return;
        };
        let ran = (now - placed).num_milliseconds().max(0);
        let period = i64::try_from(self.pledges.period.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let delivered = u32::try_from(
            (i128::from(ran) * i128::from(PPM) / i128::from(period)).min(i128::from(PPM)),
        )
        .unwrap_or(0);
        let settle = ControlAction::Settle(Settle {
            hold: id,
            delivered_ppm: delivered,
            fee_ppm: self.pledges.fee_ppm,
        });
        match credits.apply_control(settle).await {
            Ok(_) => info!(%instance, delivered_ppm = delivered, "pledge settled"),
            Err(e) => warn!(%instance, error = %e, "settling a pledge"),
        }
    }

    /// Settles pledges a full period old; pledges again for instances that
    /// still run, releases those of instances that are gone.
    pub(super) async fn renew_pledges(&self, store: &dyn StateStore, cluster: &dyn ClusterManager) {
        let Some(credits) = self.credits() else {
            return;
        };
        if self.pledges.price <= 0 {
            return;
        }
        let now = Utc::now();
        let period =
            chrono::Duration::from_std(self.pledges.period).unwrap_or(chrono::Duration::MAX);
        for (hold, placed) in credits.open_holds().await {
            if now - placed < period {
                continue;
            }
            let Some(instance) = hold
                .id
                .strip_prefix("instance-")
                .and_then(|i| i.parse::<InstanceId>().ok())
            else {
                continue;
            };
            match store.get_instance(&instance).await {
                Ok(Some(i)) if i.status == InstanceStatus::Running => {
                    self.settle_pledge(&instance, now).await;
                    self.pledge(store, cluster, i.workload_id, instance, i.node_id)
                        .await;
                }
                Ok(_) => self.settle_pledge(&instance, now).await,
                Err(e) => warn!(%instance, error = %e, "reading an instance to renew its pledge"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_follow_price_cpu_and_period() {
        let p = PledgeConfig {
            price: 2_000,
            ..PledgeConfig::default()
        };
        assert_eq!(p.amount(500), 1_000, "half a core for an hour at 2 units");
        assert_eq!(p.amount(4_000), 8_000);
        let short = PledgeConfig {
            period: Duration::from_secs(60),
            ..p
        };
        assert_eq!(
            short.amount(1_000),
            33,
            "a minute of one core, rounded down"
        );
        assert_eq!(short.amount(0), 1, "never zero");
        let huge = PledgeConfig {
            price: i64::MAX,
            ..p
        };
        assert_eq!(huge.amount(u64::MAX), i64::MAX, "saturates");
    }
}
