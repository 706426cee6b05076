//! `ui network ...` and `ui cluster ...`.

use clap::Subcommand;

/// `ui network ...`: answered by the node asked, not forwarded, so running it
/// against each node shows how each one sees the cluster.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// This node's role, control plane, peer counts and gossip settings.
    Status,
    /// Every peer this node knows, live or dead.
    Peers,
    /// Have this node probe every peer's /health and report what answered.
    Discover,
}

/// `ui cluster ...`: admission, answered by the control plane.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print a join token for a new node (`orchestrator_daemon --join TOKEN`).
    /// The token is a secret: it admits one node and carries the gossip key.
    JoinToken {
        /// How long it is valid, e.g. 30m, 1h, 2d (at most 7d).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The role it admits: worker or control-plane.
        #[arg(long, default_value = "worker")]
        role: String,
    },
    /// Every admitted member: node, role, operator, when, by which token.
    Members,
    /// Remove a member: every node drops it from the cluster.
    Remove {
        /// The node id (hex).
        node: String,
    },
}
