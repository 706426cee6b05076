//! AI agents acting for a user (docs/AGENTS.md): the contract between the `ui`
//! CLI, which issues tokens and pushes policies, and the daemon, which verifies
//! and enforces them.
//!
//! - [`TOOLS`], [`READ_ONLY_TOOLS`]: the MCP tool names, and which change nothing.
//! - [`token`]: agent tokens (`univrs-agent-v1.<claims>.<signature>`), signed
//!   with the user's Ed25519 key: [`issue_token`], [`verify_token`].
//! - [`policy`]: the automation policy the daemon holds per user
//!   ([`AgentPolicy`]) and its [`Decision`] for a tool.
//! - [`route`]: which tool a REST request amounts to ([`tool_for_request`]).

pub mod policy;
pub mod route;
pub mod token;

pub use policy::{AgentPolicy, Decision, UnknownDecision};
pub use route::tool_for_request;
pub use token::{
    decode_unverified, issue_token, verify_token, TokenClaims, TokenError, SIGNING_CONTEXT,
    TOKEN_PREFIX, TOKEN_VERSION,
};

/// Header naming the agent on a request signed by the user (`ui mcp`).
pub const HEADER_AGENT: &str = "x-univrs-agent";

/// Every MCP tool name, in the order of docs/AGENTS.md's table.
pub const TOOLS: &[&str] = &[
    "list_workloads",
    "create_workload",
    "get_workload",
    "update_workload",
    "delete_workload",
    "scale_workload",
    "get_workload_logs",
    "list_nodes",
    "get_node",
    "cordon_node",
    "drain_node",
    "get_cluster_status",
    "list_events",
    "list_pending_approvals",
    "get_node_reputation",
    "get_credit_balance",
    "get_credit_history",
];

/// The tools that change nothing.
pub const READ_ONLY_TOOLS: &[&str] = &[
    "list_workloads",
    "get_workload",
    "get_workload_logs",
    "list_nodes",
    "get_node",
    "get_cluster_status",
    "list_events",
    "list_pending_approvals",
    "get_node_reputation",
    "get_credit_balance",
    "get_credit_history",
];

/// The entry of a token's `tools` that allows every tool.
pub const ALL_TOOLS: &str = "*";

/// The longest agent name, in characters.
pub const AGENT_NAME_MAX: usize = 64;

/// Whether `tool` is one of [`TOOLS`].
pub fn is_known_tool(tool: &str) -> bool {
    TOOLS.contains(&tool)
}

/// Whether `tool` is one of [`READ_ONLY_TOOLS`].
pub fn is_read_only_tool(tool: &str) -> bool {
    READ_ONLY_TOOLS.contains(&tool)
}

/// Whether `name` is a valid agent name: 1 to [`AGENT_NAME_MAX`] characters of
/// `[A-Za-z0-9._-]`.
pub fn is_valid_agent_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= AGENT_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_tools_are_tools_and_every_tool_is_listed_once() {
        for t in READ_ONLY_TOOLS {
            assert!(is_known_tool(t), "{t}");
        }
        let mut sorted = TOOLS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), TOOLS.len());
        assert_eq!(TOOLS.len(), 17);
        assert_eq!(READ_ONLY_TOOLS.len(), 11);
        assert!(!is_known_tool(ALL_TOOLS));
        assert!(is_read_only_tool("list_events"));
        assert!(!is_read_only_tool("drain_node"));
        for t in [
            "get_node_reputation",
            "get_credit_balance",
            "get_credit_history",
        ] {
            assert!(is_known_tool(t) && is_read_only_tool(t), "{t}");
        }
        // Transfers and attestations are the user's alone: no tool.
        for t in ["transfer_credits", "attest_operator", "uncordon_node"] {
            assert!(!is_known_tool(t), "{t}");
        }
    }

    #[test]
    fn agent_names() {
        for ok in ["mcp-stdio", "a", "Claude_3.5", &"x".repeat(64)] {
            assert!(is_valid_agent_name(ok), "{ok}");
        }
        for bad in ["", "has space", "slash/y", "é", &"x".repeat(65), "a\n"] {
            assert!(!is_valid_agent_name(bad), "{bad:?}");
        }
    }
}
