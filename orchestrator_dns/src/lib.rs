//! Discovery by name (issue 16 §5, SPEC §9): a DNS server in each daemon
//! that an instance's `resolv.conf` points at.
//!
//! - **Names of workloads.** `NAME` and `NAME.univrs.internal` ([`ZONE`])
//!   answer with A records of the Ready instances of the workload `NAME` —
//!   of the owner of the instance that asks, found by the query's source
//!   address. A workload of another owner does not resolve (NXDOMAIN, the
//!   same answer as a name that does not exist), and neither does any
//!   cluster name for a client that is not an instance. TTL 1 s, so that a
//!   name follows readiness within a second. An instance that asks the
//!   moment it starts, before the store has its address, is found through
//!   the node's runtime ([`LocalInstances`]).
//! - **Every other name** goes to the node's upstream resolvers (the host's
//!   `/etc/resolv.conf`), through hickory's resolver.
//! - **Where the answers come from**: a [`NameTable`], which
//!   [`follow_store`] keeps in step with a [`StateStore`]'s change feed (a
//!   control plane, or a standalone node).
//!
//! Why hickory-dns: the DNS protocol (parsing hostile packets, UDP and TCP
//! framing, truncation, EDNS) is exactly what not to write ourselves;
//! `hickory-server`'s `RequestHandler` gives us the request with its source
//! address and leaves the answer to us, which is what per-owner names need
//! (its authoritative `Catalog` answers the same to everyone).
//!
//! [`StateStore`]: state_store_interface::StateStore

mod feed;
mod server;
mod table;

pub use feed::follow_store;
pub use server::{DnsServer, DnsServerConfig, DnsServerError, LocalInstances};
pub use table::{Answer, Directory, NameTable, Names};

/// The cluster's zone: `web.univrs.internal` is the workload `web` (of the
/// asking instance's owner).
pub const ZONE: &str = orchestrator_shared_types::ports::CLUSTER_DNS_ZONE;

/// The TTL of a cluster name's answers, in seconds.
pub const TTL_SECONDS: u32 = 1;
