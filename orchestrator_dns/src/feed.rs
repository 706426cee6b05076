//! Keeping a [`NameTable`] in step with a state store.

use std::sync::Arc;
use std::time::Duration;

use state_store_interface::StateStore;
use state_store_interface::StoreChange;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{NameTable, Names};

/// Changes arriving within this window after the first are folded into one
/// rebuild (a rollout writes many instances at once).
const SETTLE: Duration = Duration::from_millis(20);

/// Rebuilt at least this often, whatever the change feed says.
const RESYNC: Duration = Duration::from_secs(30);

/// Rebuilds `table` from `store` now, then after every change of a workload
/// or an instance, until `cancel`: a name follows an instance's readiness
/// within the store's write plus one rebuild. A store that fails keeps the
/// last names and is asked again at the next change or resync.
pub async fn follow_store(
    store: Arc<dyn StateStore>,
    table: Arc<NameTable>,
    cancel: CancellationToken,
) {
    let mut changes = store.watch();
    rebuild(store.as_ref(), &table).await;
    loop {
        let relevant = tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(RESYNC) => true,
            changed = changes.recv() => match changed {
                Ok(change) => names_may_change(&change),
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => {
                    warn!("the store's change feed closed: names are rebuilt every {RESYNC:?}");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(RESYNC) => {}
                    }
                    changes = store.watch();
                    true
                }
            },
        };
        if !relevant {
            continue;
        }
        tokio::time::sleep(SETTLE).await;
        // What came in meanwhile is in the rebuild below.
        while !matches!(
            changes.try_recv(),
            Err(TryRecvError::Empty | TryRecvError::Closed)
        ) {}
        rebuild(store.as_ref(), &table).await;
    }
}

/// Whether `change` can change a name: workloads and instances can, nodes
/// cannot.
fn names_may_change(change: &StoreChange) -> bool {
    matches!(
        change,
        StoreChange::WorkloadPut(_)
            | StoreChange::WorkloadDeleted(_)
            | StoreChange::InstancePut { .. }
            | StoreChange::InstanceDeleted { .. }
    )
}

async fn rebuild(store: &dyn StateStore, table: &NameTable) {
    let workloads = match store.list_workloads().await {
        Ok(w) => w,
        Err(e) => return warn!(error = %e, "names: listing workloads"),
    };
    let instances = match store.list_instances().await {
        Ok(i) => i,
        Err(e) => return warn!(error = %e, "names: listing instances"),
    };
    table.replace(Names::build(&workloads, &instances));
}
