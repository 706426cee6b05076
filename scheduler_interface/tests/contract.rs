//! The scheduler contract suite against `SimpleScheduler`, in both strategies,
//! and against `MycelialScheduler`.

use std::sync::Arc;

use mycelial::{NodeStanding, TrustSource};
use orchestrator_shared_types::{Node, PublicKey};
use scheduler_interface::testsuite;
use scheduler_interface::{
    MycelialScheduler, MycelialSchedulerConfig, Scheduler, ScoringStrategy, SimpleScheduler,
    SimpleSchedulerConfig,
};

fn make(strategy: ScoringStrategy) -> impl Fn() -> Arc<dyn Scheduler> {
    move || {
        Arc::new(SimpleScheduler::new(SimpleSchedulerConfig {
            strategy,
            ..SimpleSchedulerConfig::for_test()
        })) as Arc<dyn Scheduler>
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_scheduler_spread_keeps_the_contract() {
    testsuite::run_all(make(ScoringStrategy::Spread)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_scheduler_binpack_keeps_the_contract() {
    testsuite::run_all(make(ScoringStrategy::BinPack)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_scheduler_with_tiny_sample_keeps_the_contract() {
    testsuite::run_all(|| {
        Arc::new(SimpleScheduler::new(SimpleSchedulerConfig {
            sample_size: 1,
            seed: None,
            ..SimpleSchedulerConfig::default()
        })) as Arc<dyn Scheduler>
    })
    .await;
}

/// Every node in good standing: composite 1 and 3 qualifying attestations.
struct AllGood;

impl TrustSource for AllGood {
    fn standings(&self, _: &PublicKey, _: &[PublicKey], nodes: &[Node]) -> Vec<NodeStanding> {
        let good = NodeStanding {
            composite: 1.0,
            qualifying_attestations: 3,
        };
        vec![good; nodes.len()]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mycelial_scheduler_keeps_the_contract() {
    testsuite::run_all(|| {
        Arc::new(MycelialScheduler::new(
            MycelialSchedulerConfig::for_test(),
            Arc::new(AllGood),
        )) as Arc<dyn Scheduler>
    })
    .await;
}
