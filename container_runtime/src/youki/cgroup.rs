//! Reading a container's cgroup: usage for metrics, OOM kills, limits, and the
//! pre-flight check that cgroups are there at all. libcgroups writes the
//! limits (through libcontainer); these are plain reads of cgroupfs.

use std::path::{Path, PathBuf};

/// Where cgroupfs is mounted.
pub const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// Which cgroup hierarchy the host runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1 controllers (possibly beside a v2 `unified` mount: hybrid).
    V1,
    /// The unified cgroup v2 hierarchy.
    V2,
}

/// The host's layout, or why there is none usable.
pub fn layout() -> Result<Layout, String> {
    let root = Path::new(CGROUP_MOUNT);
    if root.join("cgroup.controllers").exists() {
        return Ok(Layout::V2);
    }
    let needed = ["memory", "pids", "cpu"];
    let missing: Vec<&str> = needed
        .into_iter()
        .filter(|c| !root.join(c).is_dir())
        .collect();
    if missing.is_empty() {
        Ok(Layout::V1)
    } else {
        Err(format!(
            "no cgroup v2 at {CGROUP_MOUNT} and cgroup v1 controllers missing: {}",
            missing.join(", ")
        ))
    }
}

/// The directory of `controller` for `cgroups_path` (`/univrs/<id>`).
pub fn dir(layout: Layout, controller: &str, cgroups_path: &str) -> PathBuf {
    let rel = cgroups_path.trim_start_matches('/');
    match layout {
        Layout::V2 => Path::new(CGROUP_MOUNT).join(rel),
        Layout::V1 => Path::new(CGROUP_MOUNT).join(controller).join(rel),
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next() == Some(key))
            .then(|| parts.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

/// Resources a container uses now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time consumed, in nanoseconds.
    pub cpu_nanos: u64,
    /// Memory in use, in bytes.
    pub memory_bytes: u64,
}

/// The container's usage, `None` if its cgroup is gone.
pub fn usage(layout: Layout, cgroups_path: &str) -> Option<Usage> {
    match layout {
        Layout::V2 => {
            let d = dir(layout, "", cgroups_path);
            let cpu_nanos = keyed(&d.join("cpu.stat"), "usage_usec")?.saturating_mul(1000);
            let memory_bytes = read_trimmed(&d.join("memory.current"))?.parse().ok()?;
            Some(Usage {
                cpu_nanos,
                memory_bytes,
            })
        }
        Layout::V1 => {
            let cpu = dir(layout, "cpuacct", cgroups_path).join("cpuacct.usage");
            let mem = dir(layout, "memory", cgroups_path).join("memory.usage_in_bytes");
            Some(Usage {
                cpu_nanos: read_trimmed(&cpu)?.parse().ok()?,
                memory_bytes: read_trimmed(&mem)?.parse().ok()?,
            })
        }
    }
}

/// Whether the kernel's OOM killer killed a process of the cgroup.
pub fn oom_killed(layout: Layout, cgroups_path: &str) -> bool {
    let d = dir(layout, "memory", cgroups_path);
    let count = match layout {
        Layout::V2 => keyed(&d.join("memory.events"), "oom_kill"),
        Layout::V1 => keyed(&d.join("memory.oom_control"), "oom_kill"),
    };
    count.is_some_and(|n| n > 0)
}

/// The memory limit in force, in bytes (`None`: unlimited or no cgroup).
pub fn memory_limit(layout: Layout, cgroups_path: &str) -> Option<u64> {
    let d = dir(layout, "memory", cgroups_path);
    let file = match layout {
        Layout::V2 => "memory.max",
        Layout::V1 => "memory.limit_in_bytes",
    };
    read_trimmed(&d.join(file))?.parse().ok()
}

/// The pids limit in force (`None`: `max` or no cgroup).
pub fn pids_limit(layout: Layout, cgroups_path: &str) -> Option<u64> {
    read_trimmed(&dir(layout, "pids", cgroups_path).join("pids.max"))?
        .parse()
        .ok()
}

/// Why the youki runtime cannot run on this host.
pub fn preflight() -> std::result::Result<Layout, String> {
    let mut missing = Vec::new();
    if !nix::unistd::Uid::effective().is_root() {
        missing.push("root privileges (the daemon runs as a regular user)".to_owned());
    }
    let layout = match layout() {
        Ok(l) => Some(l),
        Err(e) => {
            missing.push(e);
            None
        }
    };
    match (layout, missing.is_empty()) {
        (Some(l), true) => Ok(l),
        _ => Err(missing.join("; ")),
    }
}
