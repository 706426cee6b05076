//! Processes outside libcontainer's view: waiting for a container's init (or
//! an exec probe) to exit, telling whether a pid is still the process we
//! started, and signalling it.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The exit code of a wait status: the code, or 128 + the signal number.
fn code_of(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Blocks until child `pid` exits and returns its exit code.
///
/// libcontainer clones a container's init with `CLONE_PARENT` and no exit
/// signal, so it is our child but not one that sends `SIGCHLD`: it can only be
/// waited for with `__WALL`.
pub fn wait_child(pid: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL)) {
            Ok(status) => {
                if let Some(code) = code_of(status) {
                    return Some(code);
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!(pid, error = %e, "waiting for a container process");
                return None;
            }
        }
    }
}

/// Like [`wait_child`], but gives up after `timeout`: `Err(())` if it still runs.
pub fn wait_child_timeout(pid: i32, timeout: Duration) -> Result<Option<i32>, ()> {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match waitpid(
            Pid::from_raw(pid),
            Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG),
        ) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status) => {
                if let Some(code) = code_of(status) {
                    return Ok(Some(code));
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return Ok(None),
        }
        if std::time::Instant::now() >= deadline {
            return Err(());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The start time of `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), which tells a process from a later one with the same pid.
pub fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `ticks` (and not a zombie).
pub fn is_alive(pid: i32, ticks: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next();
    let started = fields.nth(18).and_then(|t| t.parse::<u64>().ok());
    state != Some("Z") && started == Some(ticks)
}

/// Sends `signal` to `pid`; a process already gone is not an error.
pub fn signal(pid: i32, signal: Signal) -> Result<(), Errno> {
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}
