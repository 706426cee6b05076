//! Cluster managers of the orchestrator (SPEC §8), each an implementation of
//! [`cluster_manager_interface::ClusterManager`].
//!
//! - [`mock`]: [`MockClusterManager`], in-memory membership driven by the
//!   caller (tests and demos), and [`test_node`] to build member records.
//!
//! The gossip manager, built on `chitchat` (signed node records, phi-accrual
//! failure detection, seeds), comes in a later issue as another module. Both
//! pass the same contract suite (`cluster_manager_interface::testsuite`).

pub mod mock;

pub use mock::{test_node, MockClusterManager};
