//! Container runtimes of the orchestrator (SPEC §9), each an implementation of
//! [`container_runtime_interface::ContainerRuntime`].
//!
//! - [`mock`]: [`MockRuntime`], an in-memory state machine for tests and demos
//!   (`--runtime mock`). Per-image behaviours, crashes, OOM kills, node
//!   partitions and log output are driven by the caller.
//!
//! - [`youki`] (feature `youki`, on by default, Linux): [`YoukiRuntime`], real
//!   containers on youki's `libcontainer` in-process, images pulled from OCI
//!   registries by a distribution client that trusts no size a registry
//!   declares (caps on manifests, configs, layers compressed and unpacked,
//!   entries and layers, a store quota; `youki::image`), cgroup limits, logs,
//!   exit codes and probes.
//!
//! Both pass the same contract suite (`container_runtime_interface::testsuite`).

pub mod mock;
#[cfg(all(feature = "youki", target_os = "linux"))]
pub mod youki;

pub use mock::{MockBehaviour, MockRuntime};
#[cfg(all(feature = "youki", target_os = "linux"))]
pub use youki::{YoukiConfig, YoukiRuntime};
