//! Container runtimes of the orchestrator (SPEC §9), each an implementation of
//! [`container_runtime_interface::ContainerRuntime`].
//!
//! - [`mock`]: [`MockRuntime`], an in-memory state machine for tests and demos
//!   (`--runtime mock`). Per-image behaviours, crashes, OOM kills, node
//!   partitions and log output are driven by the caller.
//!
//! The real runtime, built on youki's `libcontainer` (image pull, rootfs,
//! cgroups, log capture), comes in a later issue as another module behind a
//! Linux-only cargo feature. Both pass the same contract suite
//! (`container_runtime_interface::testsuite`).

pub mod mock;

pub use mock::{MockBehaviour, MockRuntime};
