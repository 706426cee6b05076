//! One mock container: its status, its log buffer and its log followers.

use std::collections::VecDeque;

use chrono::Utc;
use container_runtime_interface::{ContainerState, ContainerStatus, LogLine};
use orchestrator_shared_types::ContainerConfig;
use tokio::sync::{mpsc, oneshot};

/// Lines kept per container; older lines are dropped first.
pub(super) const LOG_CAPACITY: usize = 10_000;

/// A container as the mock keeps it.
pub(super) struct MockContainer {
    /// What `get_container_status` returns.
    pub(super) status: ContainerStatus,
    /// Output so far, oldest first.
    pub(super) logs: VecDeque<LogLine>,
    /// Streams handed out by `follow_container_logs`; dropped when it exits.
    pub(super) followers: Vec<mpsc::UnboundedSender<LogLine>>,
    /// Dropping this wakes and ends the `ExitAfter` timer task.
    pub(super) exit_timer: Option<oneshot::Sender<()>>,
    /// A state change happened while its node was unreachable and has not
    /// been published yet.
    pub(super) unpublished: bool,
    /// The volumes it mounts.
    pub(super) volumes: Vec<container_runtime_interface::VolumeRef>,
}

impl MockContainer {
    /// A running container, with the lines its start writes.
    pub(super) fn started(status: ContainerStatus, config: &ContainerConfig) -> Self {
        let mut c = Self {
            status,
            logs: VecDeque::new(),
            followers: Vec::new(),
            exit_timer: None,
            unpublished: false,
            volumes: Vec::new(),
        };
        c.append(
            "stdout",
            format!("mock: started {} from {}", config.name, config.image),
        );
        if let Some(text) = echoed_text(config) {
            c.append("stdout", text);
        }
        c
    }

    /// Whether its process runs.
    pub(super) fn is_running(&self) -> bool {
        self.status.state == ContainerState::Running
    }

    /// Appends a line and hands it to every live follower.
    pub(super) fn append(&mut self, stream: &str, line: String) {
        let line = LogLine {
            timestamp: Utc::now(),
            stream: stream.to_owned(),
            line,
        };
        self.followers.retain(|f| f.send(line.clone()).is_ok());
        if self.logs.len() == LOG_CAPACITY {
            self.logs.pop_front();
        }
        self.logs.push_back(line);
    }

    /// Moves a running container to `Exited`, ends its followers and its timer.
    /// Returns false (and changes nothing) if it was not running.
    pub(super) fn exit(&mut self, exit_code: i32, reason: &str) -> bool {
        if !self.is_running() {
            return false;
        }
        self.status.state = ContainerState::Exited;
        self.status.exit_code = Some(exit_code);
        self.status.reason = Some(reason.to_owned());
        self.status.finished_at = Some(Utc::now());
        self.status.ready = false;
        self.followers.clear();
        self.exit_timer = None;
        true
    }

    /// The last `tail` lines, or all of them.
    pub(super) fn lines(&self, tail: Option<usize>) -> Vec<LogLine> {
        let skip = tail.map_or(0, |n| self.logs.len().saturating_sub(n));
        self.logs.iter().skip(skip).cloned().collect()
    }
}

/// What `echo ...` would print, if the container's command line is an echo.
fn echoed_text(config: &ContainerConfig) -> Option<String> {
    let argv: Vec<&str> = config
        .command
        .iter()
        .chain(&config.args)
        .map(String::as_str)
        .collect();
    let (program, rest) = argv.split_first()?;
    (*program == "echo" || program.ends_with("/echo")).then(|| rest.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(command: &[&str], args: &[&str]) -> ContainerConfig {
        ContainerConfig {
            name: "main".into(),
            image: "busybox".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Default::default(),
            secret_env: Vec::new(),
            secret_files: Vec::new(),
            volumes: Vec::new(),
            ports: Vec::new(),
            resources: Default::default(),
            liveness_probe: None,
            readiness_probe: None,
        }
    }

    #[test]
    fn echo_in_command_or_args_is_printed() {
        assert_eq!(
            echoed_text(&config(&["echo", "hi", "there"], &[])).as_deref(),
            Some("hi there")
        );
        assert_eq!(
            echoed_text(&config(&[], &["echo", "hi"])).as_deref(),
            Some("hi")
        );
        assert_eq!(
            echoed_text(&config(&["/bin/echo"], &["x"])).as_deref(),
            Some("x")
        );
        assert_eq!(echoed_text(&config(&["sleep", "10"], &[])), None);
        assert_eq!(echoed_text(&config(&[], &[])), None);
    }
}
