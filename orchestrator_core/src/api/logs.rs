//! A workload's container output, read or followed across its instances.

use container_runtime_interface::{LogOptions, RuntimeError};
use futures::stream::{self, BoxStream, StreamExt};
use orchestrator_shared_types::{InstanceId, WorkloadDefinition};

use super::Orchestrator;
use crate::error::Result;

pub use orchestrator_api::LogEntry;

impl Orchestrator {
    /// Containers of `w`'s instances with their instance id and container name.
    async fn containers_of(
        &self,
        w: &WorkloadDefinition,
    ) -> Result<Vec<(InstanceId, String, orchestrator_shared_types::ContainerId)>> {
        let mut out = Vec::new();
        for inst in self.list_instances(&w.id).await? {
            for (i, id) in inst.container_ids.iter().enumerate() {
                let name = w
                    .spec
                    .containers
                    .get(i)
                    .map_or_else(|| format!("container-{i}"), |c| c.name.clone());
                out.push((inst.id, name, id.clone()));
            }
        }
        Ok(out)
    }

    /// The output so far of every container of `w`, oldest first; with `tail`,
    /// only the last `tail` lines of each container.
    pub async fn workload_logs(
        &self,
        w: &WorkloadDefinition,
        tail: Option<usize>,
    ) -> Result<Vec<LogEntry>> {
        let mut entries = Vec::new();
        for (instance, container, id) in self.containers_of(w).await? {
            match self
                .deps()
                .runtime
                .get_container_logs(&id, LogOptions { tail })
                .await
            {
                Ok(lines) => entries.extend(lines.into_iter().map(|l| LogEntry {
                    instance,
                    container: container.clone(),
                    timestamp: l.timestamp,
                    stream: l.stream,
                    line: l.line,
                })),
                // Removed between the listing and the read: nothing to show.
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        entries.sort_by_key(|e| e.timestamp);
        Ok(entries)
    }

    /// New output of the containers `w` runs now, as it is written.
    pub async fn follow_workload_logs(
        &self,
        w: &WorkloadDefinition,
    ) -> Result<BoxStream<'static, LogEntry>> {
        let mut streams = Vec::new();
        for (instance, container, id) in self.containers_of(w).await? {
            match self.deps().runtime.follow_container_logs(&id).await {
                Ok(s) => streams.push(
                    s.map(move |l| LogEntry {
                        instance,
                        container: container.clone(),
                        timestamp: l.timestamp,
                        stream: l.stream,
                        line: l.line,
                    })
                    .boxed(),
                ),
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stream::select_all(streams).boxed())
    }
}
