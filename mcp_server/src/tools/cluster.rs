//! The cluster as a whole, its recent events, and your calls waiting for
//! the user's approval.

use orchestrator_api::routes::{self, Query};
use orchestrator_api::ApprovalFilter;
use rmcp::{tool, tool_router};

use super::{failed, OrchestratorMcp, ToolResult};
use crate::api::Caller;
use crate::args::{PageArgs, Parameters};

#[tool_router(router = cluster_tools, vis = "pub(super)")]
impl OrchestratorMcp {
    /// The cluster at a glance: nodes, workloads, instances, resources, members.
    #[tool(annotations(read_only_hint = true))]
    async fn get_cluster_status(&self, caller: Caller) -> ToolResult {
        self.call(&caller, "GET", routes::CLUSTER_STATUS, None)
            .await
    }

    /// Recent cluster events (workloads, instances, nodes), oldest first, a page at a time.
    #[tool(annotations(read_only_hint = true))]
    async fn list_events(
        &self,
        caller: Caller,
        Parameters(page): Parameters<PageArgs>,
    ) -> ToolResult {
        let page = match page {
            Ok(page) => page,
            Err(e) => return failed(e),
        };
        self.get_page(&caller, routes::EVENTS_RECENT, &page).await
    }

    /// Calls of yours waiting for the user's approval, with their ids and state.
    #[tool(annotations(read_only_hint = true))]
    async fn list_pending_approvals(
        &self,
        caller: Caller,
        Parameters(page): Parameters<PageArgs>,
    ) -> ToolResult {
        let page = match page {
            Ok(page) => page,
            Err(e) => return failed(e),
        };
        let mut pending = Query::new();
        pending.push("state", ApprovalFilter::Pending.as_str());
        self.get_page(&caller, &pending.after(routes::APPROVALS), &page)
            .await
    }
}
