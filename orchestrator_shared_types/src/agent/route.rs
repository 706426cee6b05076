//! Which MCP tool a REST request amounts to (docs/AGENTS.md, "Tools and REST
//! calls"). Any request without a tool is the user's alone: an agent is refused it.

/// The tool a request amounts to, from its method (any case) and path (query
/// ignored, one trailing slash tolerated); `None` for anything an agent may
/// not do (uncordoning, approving, the audit log, `/api/v1/agent/...`,
/// transferring credits, attesting, ...).
pub fn tool_for_request(method: &str, path: &str) -> Option<&'static str> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = path.strip_suffix('/').unwrap_or(path);
    let rest = path.strip_prefix("/api/v1/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let method = method.to_ascii_uppercase();
    let tool = match (method.as_str(), segments.as_slice()) {
        ("GET", ["workloads"]) => "list_workloads",
        ("POST", ["workloads"]) => "create_workload",
        ("GET", ["workloads", _] | ["workloads", _, "instances"]) => "get_workload",
        ("PUT", ["workloads", _]) => "update_workload",
        ("DELETE", ["workloads", _]) => "delete_workload",
        ("POST", ["workloads", _, "scale"]) => "scale_workload",
        ("GET", ["workloads", _, "logs"]) => "get_workload_logs",
        ("GET", ["nodes"]) => "list_nodes",
        ("GET", ["nodes", _]) => "get_node",
        ("POST", ["nodes", _, "cordon"]) => "cordon_node",
        ("POST", ["nodes", _, "drain"]) => "drain_node",
        ("GET", ["cluster", "status"]) => "get_cluster_status",
        ("GET", ["events", "recent"]) => "list_events",
        ("GET", ["approvals"] | ["approvals", _]) => "list_pending_approvals",
        ("GET", ["nodes", _, "reputation"] | ["reputation"]) => "get_node_reputation",
        ("GET", ["credits", "balance"]) => "get_credit_balance",
        ("GET", ["credits", "history"]) => "get_credit_history",
        _ => return None,
    };
    Some(tool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::TOOLS;

    #[test]
    fn every_row_of_the_table() {
        let rows = [
            ("GET", "/api/v1/workloads", "list_workloads"),
            ("POST", "/api/v1/workloads", "create_workload"),
            ("GET", "/api/v1/workloads/web", "get_workload"),
            ("GET", "/api/v1/workloads/web/instances", "get_workload"),
            ("PUT", "/api/v1/workloads/web", "update_workload"),
            ("DELETE", "/api/v1/workloads/web", "delete_workload"),
            ("POST", "/api/v1/workloads/web/scale", "scale_workload"),
            ("GET", "/api/v1/workloads/web/logs", "get_workload_logs"),
            ("GET", "/api/v1/nodes", "list_nodes"),
            ("GET", "/api/v1/nodes/abcd", "get_node"),
            ("POST", "/api/v1/nodes/abcd/cordon", "cordon_node"),
            ("POST", "/api/v1/nodes/abcd/drain", "drain_node"),
            ("GET", "/api/v1/cluster/status", "get_cluster_status"),
            ("GET", "/api/v1/events/recent", "list_events"),
            ("GET", "/api/v1/approvals", "list_pending_approvals"),
            ("GET", "/api/v1/approvals/0123", "list_pending_approvals"),
            (
                "GET",
                "/api/v1/nodes/abcd/reputation",
                "get_node_reputation",
            ),
            ("GET", "/api/v1/credits/balance", "get_credit_balance"),
            ("GET", "/api/v1/credits/history", "get_credit_history"),
        ];
        for (method, path, tool) in rows {
            assert_eq!(
                tool_for_request(method, path),
                Some(tool),
                "{method} {path}"
            );
        }
        // Every tool is reachable by some request.
        for t in TOOLS {
            assert!(rows.iter().any(|(_, _, tool)| tool == t), "{t}");
        }
    }

    #[test]
    fn method_case_query_and_trailing_slash_do_not_matter() {
        assert_eq!(
            tool_for_request("get", "/api/v1/workloads?limit=10&cursor=x"),
            Some("list_workloads")
        );
        assert_eq!(
            tool_for_request("Post", "/api/v1/workloads/web/scale/"),
            Some("scale_workload")
        );
        assert_eq!(
            tool_for_request("GET", "/api/v1/workloads/web/logs?follow=true&tail=5"),
            Some("get_workload_logs")
        );
        assert_eq!(
            tool_for_request("GET", "/api/v1/approvals?state=pending"),
            Some("list_pending_approvals")
        );
        assert_eq!(
            tool_for_request("DELETE", "/api/v1/workloads/a%2Fb"),
            Some("delete_workload")
        );
        assert_eq!(
            tool_for_request("get", "/api/v1/nodes/abcd/reputation?trusted=01,02"),
            Some("get_node_reputation")
        );
        assert_eq!(
            tool_for_request("GET", "/api/v1/reputation?trusted=01"),
            Some("get_node_reputation")
        );
        assert_eq!(
            tool_for_request("GET", "/api/v1/credits/history?limit=5&cursor=42"),
            Some("get_credit_history")
        );
        assert_eq!(
            tool_for_request("GET", "/api/v1/credits/balance/"),
            Some("get_credit_balance")
        );
    }

    #[test]
    fn the_users_own_requests_have_no_tool() {
        for (method, path) in [
            ("POST", "/api/v1/nodes/abcd/uncordon"),
            ("GET", "/api/v1/audit"),
            ("GET", "/api/v1/audit/verify"),
            ("GET", "/api/v1/agent/policy"),
            ("PUT", "/api/v1/agent/policy"),
            ("GET", "/api/v1/trust/policy"),
            ("PUT", "/api/v1/trust/policy"),
            ("POST", "/api/v1/agent/tokens/0123/revoke"),
            ("POST", "/api/v1/agent/tokens/revoke-all"),
            ("GET", "/api/v1/secrets"),
            ("GET", "/api/v1/secrets/db"),
            ("PUT", "/api/v1/secrets/db"),
            ("DELETE", "/api/v1/secrets/db"),
            ("POST", "/api/v1/approvals/0123/approve"),
            ("POST", "/api/v1/approvals/0123/deny"),
            ("POST", "/api/v1/approvals"),
            ("DELETE", "/api/v1/nodes/abcd"),
            ("PATCH", "/api/v1/workloads/web"),
            ("GET", "/api/v1/workloads/web/other"),
            ("GET", "/api/v1/workloads//logs"),
            ("GET", "/api/v1/workloads//"),
            ("GET", "/api/v2/workloads"),
            ("GET", "/health"),
            ("GET", "/mcp"),
            ("GET", ""),
            ("GET", "/api/v1/"),
            ("GET", "/api/v1/events"),
            ("GET", "/api/v1/cluster/status/x"),
            // credit and trust: transfers and attestations are the user's in person
            ("POST", "/api/v1/credits/transfer"),
            ("GET", "/api/v1/credits/transfer"),
            ("POST", "/api/v1/attestations"),
            ("GET", "/api/v1/attestations"),
            ("POST", "/api/v1/credits/balance"),
            ("GET", "/api/v1/credits"),
            ("GET", "/api/v1/credits/other"),
            ("POST", "/api/v1/nodes/abcd/reputation"),
            ("PUT", "/api/v1/nodes/abcd/reputation"),
            ("GET", "/api/v1/nodes//reputation"),
            ("GET", "/api/v1/nodes/abcd/reputation/x"),
        ] {
            assert_eq!(tool_for_request(method, path), None, "{method} {path}");
        }
    }
}
