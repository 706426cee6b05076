//! The daemon's scheduler: simple or mycelial (`--scheduler`), and the
//! reputation the mycelial one reads.

use std::sync::Arc;

use mycelial::{NodeStanding, TrustSource};
use orchestrator_shared_types::{Node, PublicKey};
use scheduler_interface::{
    MycelialScheduler, MycelialSchedulerConfig, Scheduler, ScoringStrategy, SimpleScheduler,
    SimpleSchedulerConfig,
};
use tracing::info;

use super::config::{DaemonConfig, SchedulerKind, Scoring};

/// Reputation with no evidence at all: every node is unknown (composite 0,
/// no qualifying attestations). Not a stand-in that pretends: it is what the
/// daemon honestly knows until the reputation engine feeds it. Rules that
/// need reputation or attestations exclude every node; workloads without
/// rules are placed uniformly among the nodes that fit.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvidence;

impl TrustSource for NoEvidence {
    fn standings(&self, _: &PublicKey, _: &[PublicKey], nodes: &[Node]) -> Vec<NodeStanding> {
        vec![NodeStanding::UNKNOWN; nodes.len()]
    }
}

/// Where the mycelial scheduler learns reputation and credit: the control
/// plane's reputation engine, fed by its evidence log, and its credit ledger
/// (`crate::trust`).
pub(super) fn trust_source(
    _config: &DaemonConfig,
    trust: &Arc<orchestrator_trust::TrustService>,
) -> Arc<dyn TrustSource> {
    Arc::new(orchestrator_trust::pledge::PricedTrust::new(Arc::clone(
        trust,
    )))
}

/// The scheduler `config` names; `trust` gives the mycelial one its standings.
pub(super) fn open_scheduler(
    config: &DaemonConfig,
    trust: Arc<dyn TrustSource>,
) -> Arc<dyn Scheduler> {
    match config.scheduler {
        SchedulerKind::Simple => {
            let strategy = match config.scoring {
                Scoring::Spread => ScoringStrategy::Spread,
                Scoring::Binpack => ScoringStrategy::BinPack,
            };
            Arc::new(SimpleScheduler::new(SimpleSchedulerConfig {
                strategy,
                ..SimpleSchedulerConfig::default()
            }))
        }
        SchedulerKind::Mycelial => {
            let seed = rand::random();
            info!(seed, "scheduler: mycelial");
            Arc::new(MycelialScheduler::new(
                MycelialSchedulerConfig::with_seed(seed),
                trust,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use scheduler_interface::testsuite::{ready_node, request, workload};
    use scheduler_interface::ScheduleDecision;

    use super::*;

    fn config(scheduler: SchedulerKind) -> DaemonConfig {
        DaemonConfig {
            scheduler,
            ..DaemonConfig::for_test(PathBuf::from("/nonexistent"))
        }
    }

    #[tokio::test]
    async fn mycelial_without_evidence_places_rule_less_work_and_names_reputation_rules() {
        let s = open_scheduler(&config(SchedulerKind::Mycelial), Arc::new(NoEvidence));
        let nodes = vec![ready_node(4000, 4096), ready_node(4000, 4096)];
        let w = Arc::new(workload(
            "free",
            orchestrator_shared_types::Resources::new(100, 1 << 20),
        ));
        let d = s.schedule(&request(&w, 4), &nodes).await.unwrap();
        assert!(
            d.iter()
                .all(|d| matches!(d, ScheduleDecision::AssignNode(_))),
            "{d:?}"
        );
        let mut picky = (*w).clone();
        picky.spec.trust.min_reputation = 0.5;
        let d = s
            .schedule(&request(&Arc::new(picky), 1), &nodes)
            .await
            .unwrap();
        assert!(
            matches!(&d[0], ScheduleDecision::NoPlacement(r) if r.contains("trust.min_reputation")),
            "{d:?}"
        );
    }

    #[tokio::test]
    async fn the_simple_scheduler_refuses_what_the_trust_rules_exclude() {
        let s = open_scheduler(&config(SchedulerKind::Simple), Arc::new(NoEvidence));
        let nodes = vec![ready_node(4000, 4096)];
        let mut w = workload(
            "picky",
            orchestrator_shared_types::Resources::new(100, 1 << 20),
        );
        // It weighs no reputation: a minimum is refused, never assumed met.
        w.spec.trust.min_reputation = 0.5;
        let d = s
            .schedule(&request(&Arc::new(w.clone()), 1), &nodes)
            .await
            .unwrap();
        assert!(
            matches!(&d[0], ScheduleDecision::NoPlacement(r) if r.contains("trust rules need reputation")),
            "{d:?}"
        );
        // ... unless the node's operator is one the owner trusts.
        w.spec.trust.trusted_operators = vec![nodes[0].operator];
        let d = s
            .schedule(&request(&Arc::new(w.clone()), 1), &nodes)
            .await
            .unwrap();
        assert_eq!(d, vec![ScheduleDecision::AssignNode(nodes[0].id)]);
        // A denied operator is excluded.
        w.spec.trust = orchestrator_shared_types::TrustRules {
            denied_operators: vec![nodes[0].operator],
            ..Default::default()
        };
        let d = s.schedule(&request(&Arc::new(w), 1), &nodes).await.unwrap();
        assert!(
            matches!(&d[0], ScheduleDecision::NoPlacement(r) if r.contains("excluded by the owner's trust rules")),
            "{d:?}"
        );
    }
}
