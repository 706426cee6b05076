//! Case: many writers at once.

use std::sync::Arc;

use orchestrator_shared_types::{NodeId, WorkloadId};

use super::{init, instance, owner, workload};
use crate::{StateStore, StoreError};

/// Many tasks writing at once all land; clashing names let exactly one through.
pub async fn case_concurrent_writers(store: Arc<dyn StateStore>) {
    const TASKS: usize = 50;
    const PER_TASK: usize = 20;
    init(&*store).await;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let w = WorkloadId::new();
            let node = NodeId([u8::try_from(t % 7).unwrap(); 32]);
            for _ in 0..PER_TASK {
                store.put_instance(&instance(w, node)).await.unwrap();
            }
            // Ten names, five tasks each: exactly one per name may win.
            let named = workload(owner(1), &format!("race-{}", t % 10));
            let won = match store.put_workload(&named).await {
                Ok(()) => true,
                Err(StoreError::NameTaken { .. }) => false,
                Err(e) => panic!("concurrent put_workload: {e}"),
            };
            (w, won)
        }));
    }
    let mut wins = 0;
    for task in tasks {
        let (w, won) = task.await.expect("a writer task panicked");
        wins += usize::from(won);
        assert_eq!(
            store.list_instances_by_workload(&w).await.unwrap().len(),
            PER_TASK,
            "every instance of a concurrent writer lands"
        );
    }
    assert_eq!(
        store.list_instances().await.unwrap().len(),
        TASKS * PER_TASK,
        "all writes land"
    );
    assert_eq!(wins, 10, "exactly one writer per clashing name wins");
    assert_eq!(
        store.list_workloads().await.unwrap().len(),
        10,
        "one workload per name"
    );
}
