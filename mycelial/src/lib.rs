//! The mycelial model (MYCELIAL.md §3, SPEC §17): reputation earned from
//! evidence, trust personalised per user, hard trust rules, and a zero-sum
//! mutual-credit ledger. Pure logic with no I/O: deterministic for a given log,
//! so two schedulers fed the same log decide the same.
//!
//! - [`rules`]: a workload owner's [`TrustRules`] checked against one node.
//! - [`sample`]: weighted sampling (`C² × fit`) with a seeded generator.
//! - [`ledger`]: the zero-sum mutual-credit ledger, a state machine over signed entries.
//! - [`NodeStanding`], [`TrustSource`]: what the scheduler asks of reputation.
//! - [`evidence`]: signed observations and attestations, and the append-only
//!   [`evidence::EvidenceLog`] that verifies them on receipt (no score is an entry).
//! - [`reputation`]: uptime, reliability, honesty and age of a node from its evidence,
//!   each the median of the votes of its observer operators.
//! - [`trust`]: attestation trust personalised per user (EigenTrust from the
//!   user's seeds) and the qualifying-attester rules.
//! - [`engine`]: [`engine::Reputation`], the [`TrustSource`] over the log, with
//!   per-node [`engine::Components`] and [`engine::NetworkHealth`].

pub mod engine;
pub mod evidence;
pub mod ledger;
pub mod reputation;
pub mod rules;
pub mod sample;
pub mod trust;

pub use orchestrator_shared_types::TrustRules;
use orchestrator_shared_types::{Node, PublicKey};

/// How one node looks to one user.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeStanding {
    /// Composite reputation `C = U·R·H·(0.65 + 0.35·max(A, T̂))`, 0–1.
    pub composite: f64,
    /// Qualifying attestations of the node's operator, for this user.
    pub qualifying_attestations: u32,
}

impl NodeStanding {
    /// The standing of a node nobody knows anything about.
    pub const UNKNOWN: NodeStanding = NodeStanding {
        composite: 0.0,
        qualifying_attestations: 0,
    };
}

/// Where the scheduler learns reputation: computed locally from the signed
/// evidence log, never taken from what nodes say of themselves.
pub trait TrustSource: Send + Sync + 'static {
    /// The standing of each of `nodes` (same order) as seen by `user`, whose
    /// trusted operators (`trusted`) seed the attestation trust.
    fn standings(
        &self,
        user: &PublicKey,
        trusted: &[PublicKey],
        nodes: &[Node],
    ) -> Vec<NodeStanding>;

    /// How much `owner` can still set aside for pledges (MYCELIAL.md §3
    /// "Ledger" 4), in the units of [`TrustSource::pledge_cost`]; `None` when
    /// pledges are not priced, so the owner may place anywhere. The default
    /// answers `None`.
    ///
    /// The scheduler asks at most once per call, and spends this headroom on
    /// the instances it places on other operators' nodes in that call: a
    /// node another operator runs is eligible only while the pledge of an
    /// instance there does not exceed what is left.
    fn pledge_headroom(&self, owner: &PublicKey) -> Option<i64> {
        let _ = owner;
        None
    }

    /// What the pledge of an instance requesting `cpu_millis` on `node`
    /// costs its owner, in the units of [`TrustSource::pledge_headroom`]. The
    /// scheduler asks only for nodes another operator runs, and only when the
    /// headroom is `Some`; a negative cost counts as 0. The default answers 0.
    fn pledge_cost(&self, node: &Node, cpu_millis: u64) -> i64 {
        let _ = (node, cpu_millis);
        0
    }
}
