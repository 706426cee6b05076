//! The libcontainer calls of a container's life, run on the forked worker
//! (see `worker`): create and start, and delete.

use std::fs::File;
use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use tracing::warn;

use super::executor::ForkSafeExecutor;
use super::process;

/// Creates and starts container `id` from the bundle `dir` (on the worker).
pub(super) fn libcontainer_create(
    id: &str,
    state_root: &Path,
    dir: &Path,
    stdout: File,
    stderr: File,
    executor: ForkSafeExecutor,
) -> std::result::Result<(i32, Option<u64>), String> {
    let stdin = File::open("/dev/null").map_err(|e| format!("opening /dev/null: {e}"))?;
    let mut container = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .with_root_path(state_root)
        .map_err(|e| e.to_string())?
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr)
        .with_executor(executor)
        .validate_id()
        .map_err(|e| e.to_string())?
        .as_init(dir)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| e.to_string())?;
    let pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| "libcontainer reported no pid".to_owned())?;
    let ticks = process::start_ticks(pid);
    container.start().map_err(|e| e.to_string())?;
    Ok((pid, ticks))
}

/// Deletes libcontainer's state of `id` (killing what is left, removing the
/// cgroup), on the worker. A container libcontainer does not know is fine.
pub(super) fn libcontainer_delete(id: &str, state_root: &Path) -> std::result::Result<(), String> {
    let dir = state_root.join(id);
    if !dir.exists() {
        return Ok(());
    }
    match Container::load(dir.clone()) {
        Ok(mut c) => c.delete(true).map_err(|e| e.to_string()),
        Err(e) => {
            warn!(container = id, error = %e, "libcontainer state unreadable; removing it");
            std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())
        }
    }
}
