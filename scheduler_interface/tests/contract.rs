//! The scheduler contract suite against `SimpleScheduler`, in both strategies.

use std::sync::Arc;

use scheduler_interface::testsuite;
use scheduler_interface::{Scheduler, ScoringStrategy, SimpleScheduler, SimpleSchedulerConfig};

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
