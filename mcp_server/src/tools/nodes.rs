//! The node tools: list, read, cordon, drain.

use orchestrator_api::routes::{self, NodeAction};
use rmcp::{tool, tool_router};

use super::{failed, OrchestratorMcp, ToolResult};
use crate::api::Caller;
use crate::args::{NodeRef, PageArgs, Parameters};

#[tool_router(router = node_tools, vis = "pub(super)")]
impl OrchestratorMcp {
    /// Lists the cluster's nodes with their status and resources, a page at a time.
    #[tool(annotations(read_only_hint = true))]
    async fn list_nodes(
        &self,
        caller: Caller,
        Parameters(page): Parameters<PageArgs>,
    ) -> ToolResult {
        let page = match page {
            Ok(page) => page,
            Err(e) => return failed(e),
        };
        self.get_page(&caller, routes::NODES, &page).await
    }

    /// One node.
    #[tool(annotations(read_only_hint = true))]
    async fn get_node(&self, caller: Caller, Parameters(n): Parameters<NodeRef>) -> ToolResult {
        let n = match n {
            Ok(n) => n,
            Err(e) => return failed(e),
        };
        self.call_at(&caller, "GET", ("node", &n.node), routes::node, None)
            .await
    }

    /// Cordons a node: it keeps what it runs and takes nothing new.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true
    ))]
    async fn cordon_node(&self, caller: Caller, Parameters(n): Parameters<NodeRef>) -> ToolResult {
        let n = match n {
            Ok(n) => n,
            Err(e) => return failed(e),
        };
        let path = |id: &str| routes::node_action(id, NodeAction::Cordon);
        self.call_at(&caller, "POST", ("node", &n.node), path, None)
            .await
    }

    /// Drains a node: cordons it and moves its instances elsewhere.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true
    ))]
    async fn drain_node(&self, caller: Caller, Parameters(n): Parameters<NodeRef>) -> ToolResult {
        let n = match n {
            Ok(n) => n,
            Err(e) => return failed(e),
        };
        let path = |id: &str| routes::node_action(id, NodeAction::Drain);
        self.call_at(&caller, "POST", ("node", &n.node), path, None)
            .await
    }
}
