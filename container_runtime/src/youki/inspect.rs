//! Reading a container's cgroup and process: limits in force and usage.

use orchestrator_shared_types::ContainerId;

use super::entry::lock;
use super::{cgroup, Usage, YoukiRuntime};

impl YoukiRuntime {
    /// The cgroup path (`/univrs/<id>`) of a container.
    pub fn cgroups_path(&self, id: &ContainerId) -> Option<String> {
        self.entry(id).map(|e| lock(&e.record).cgroups_path.clone())
    }

    /// The host pid of a container's init while it runs.
    pub fn pid(&self, id: &ContainerId) -> Option<i32> {
        let e = self.entry(id)?;
        if !e.is_running() {
            return None;
        }
        e.pid().map(|(p, _)| p)
    }

    /// The container's memory limit in force, in bytes, read from its cgroup.
    pub fn memory_limit(&self, id: &ContainerId) -> Option<u64> {
        cgroup::memory_limit(self.inner.layout, &self.cgroups_path(id)?)
    }

    /// The container's pids limit in force, read from its cgroup.
    pub fn pids_limit(&self, id: &ContainerId) -> Option<u64> {
        cgroup::pids_limit(self.inner.layout, &self.cgroups_path(id)?)
    }

    /// What the container uses now (cgroup counters).
    pub fn usage(&self, id: &ContainerId) -> Option<Usage> {
        cgroup::usage(self.inner.layout, &self.cgroups_path(id)?)
    }

    /// CPU and memory used by every running container of this runtime.
    pub fn total_usage(&self) -> Usage {
        let paths: Vec<String> = lock(&self.inner.containers)
            .values()
            .filter(|e| e.is_running())
            .map(|e| lock(&e.record).cgroups_path.clone())
            .collect();
        paths
            .iter()
            .filter_map(|p| cgroup::usage(self.inner.layout, p))
            .fold(Usage::default(), |a, u| Usage {
                cpu_nanos: a.cpu_nanos.saturating_add(u.cpu_nanos),
                memory_bytes: a.memory_bytes.saturating_add(u.memory_bytes),
            })
    }
}
