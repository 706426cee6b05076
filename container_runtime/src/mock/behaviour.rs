//! What a mock container does, chosen per image.

use std::time::Duration;

/// How containers of an image behave in a [`MockRuntime`](super::MockRuntime).
///
/// Set with [`MockRuntime::set_image_behaviour`](super::MockRuntime::set_image_behaviour);
/// images without a behaviour run forever.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MockBehaviour {
    /// Starts and runs until stopped, removed, or ended by a test control.
    #[default]
    RunForever,
    /// Starts, then exits by itself `after` this long with `exit_code` (reason
    /// `Completed` for 0, `Error` otherwise). The timer is a tokio timer, so it
    /// follows `tokio::time::pause()` and `advance()`.
    ExitAfter {
        /// How long the process runs.
        after: Duration,
        /// The code it exits with.
        exit_code: i32,
    },
    /// Creation fails with [`RuntimeError::Create`](container_runtime_interface::RuntimeError::Create)
    /// and this reason; no container is left behind.
    FailCreate {
        /// Why creation fails.
        reason: String,
    },
    /// Pulling the image fails with
    /// [`RuntimeError::ImagePull`](container_runtime_interface::RuntimeError::ImagePull).
    FailPull,
}
