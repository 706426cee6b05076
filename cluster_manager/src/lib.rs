//! Cluster managers of the orchestrator (SPEC §8), each an implementation of
//! [`cluster_manager_interface::ClusterManager`].
//!
//! - [`gossip`]: [`ChitchatClusterManager`], membership gossiped over UDP with
//!   chitchat (signed node records, phi-accrual failure detection, seeds),
//!   configured by [`GossipConfig`] and counted in [`GossipStats`]; packets
//!   sealed with the cluster's [`Keyring`] when one is configured.
//! - [`mock`]: [`MockClusterManager`], in-memory membership driven by the
//!   caller (tests and demos), and [`test_node`] to build member records.
//!
//! Both pass the same contract suite (`cluster_manager_interface::testsuite`).

pub mod gossip;
pub mod mock;

pub use gossip::{ChitchatClusterManager, GossipConfig, GossipKey, GossipStats, Keyring};
pub use mock::{test_node, MockClusterManager};
