//! [`OrchestratorMcp`]: the MCP tools (SPEC §12), each a call of the REST API
//! made for the request's [`Caller`] through [`Api`]. Lists are paginated
//! (`limit` ≤ 100, `cursor`) and logs bounded, so a big cluster cannot flood
//! an agent's context. Every failure — a bad argument, an unknown workload, a
//! refusal — is a tool error whose text names what was wrong; the server
//! keeps serving. A call held for the user's approval is not a failure: its
//! result says so (see [`crate::approval`]).

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool_handler, ErrorData, RoleServer, ServerHandler};
use serde_json::Value;

use crate::api::{Api, ApiError, Caller};
use crate::approval::{held, pending_approval};
use crate::args::{checked_segment, PageArgs};
use crate::context;

mod cluster;
mod nodes;
mod trust;
mod workloads;

/// The orchestrator's MCP server.
#[derive(Clone)]
pub struct OrchestratorMcp {
    api: Arc<dyn Api>,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for OrchestratorMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestratorMcp").finish_non_exhaustive()
    }
}

type ToolResult = Result<CallToolResult, ErrorData>;

/// A tool error: the call failed, the server goes on.
fn failed(text: impl Into<String>) -> ToolResult {
    Ok(CallToolResult::error(vec![ContentBlock::text(text.into())]))
}

/// A result: the API's JSON, compact.
fn answered(value: &Value) -> ToolResult {
    Ok(CallToolResult::success(vec![ContentBlock::text(
        value.to_string(),
    )]))
}

/// The API's answer as a result: its JSON (or text), or what the agent must
/// know about a call held for the user's approval.
fn answer(text: String) -> ToolResult {
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => match pending_approval(&v) {
            Some(approval) => answered(&held(approval)),
            None => answered(&v),
        },
        Err(_) => answered(&Value::String(text)),
    }
}

fn refused(e: ApiError) -> ToolResult {
    match e {
        ApiError::Refused {
            status,
            code,
            message,
        } => failed(format!(
            "{message} ({}, HTTP {status})",
            code.as_deref().unwrap_or("error")
        )),
        ApiError::Unreachable(why) => {
            failed(format!("cannot reach the orchestrator daemon: {why}"))
        }
    }
}

impl OrchestratorMcp {
    /// A server acting through `api`.
    pub fn new(api: Arc<dyn Api>) -> Self {
        Self {
            api,
            tool_router: Self::workload_tools()
                + Self::node_tools()
                + Self::cluster_tools()
                + Self::trust_tools(),
        }
    }

    async fn call(
        &self,
        caller: &Caller,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> ToolResult {
        match self.api.request(caller, method, path, body).await {
            Ok(text) => answer(text),
            Err(e) => refused(e),
        }
    }

    /// `method` on the path `path` makes of argument `field`'s value, once
    /// checked (a route of `orchestrator_api::routes`, which encodes it as a
    /// path segment).
    async fn call_at(
        &self,
        caller: &Caller,
        method: &str,
        (field, value): (&str, &str),
        path: impl FnOnce(&str) -> String,
        body: Option<Value>,
    ) -> ToolResult {
        match checked_segment(field, value) {
            Ok(_) => self.call(caller, method, &path(value), body).await,
            Err(e) => failed(e),
        }
    }

    /// `GET base` with the page's query parameters (after base's own, if any).
    async fn get_page(&self, caller: &Caller, base: &str, page: &PageArgs) -> ToolResult {
        match page.query_params() {
            Ok(q) => self.call(caller, "GET", &q.after(base), None).await,
            Err(e) => failed(e),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for OrchestratorMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new(
            "univrs-orchestrator",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Drive a Univrs orchestrator cluster as the user you act for: list, create, scale \
                 and delete workloads, read their logs and the cluster's events, inspect \
                 nodes and their reputation, and read the user's credit balance and ledger. \
                 Lists are paginated: pass next_cursor back as cursor. A call the user \
                 must approve first answers pending_approval and does nothing until then; \
                 list_pending_approvals shows where it stands.",
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = Caller::from_extensions(&ctx.extensions);
        context::list_resources(self.api.as_ref(), &caller).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(context::list_templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = Caller::from_extensions(&ctx.extensions);
        Ok(
            context::read_resource(self.api.as_ref(), &caller, &request.uri)
                .await?
                .into(),
        )
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(context::list_prompts())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let caller = Caller::from_extensions(&ctx.extensions);
        let arguments = request.arguments.as_ref();
        Ok(
            context::get_prompt(self.api.as_ref(), &caller, &request.name, arguments)
                .await?
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use rmcp::handler::server::common::schema_for_input;

    use super::*;
    use crate::args::{CreateArgs, ReputationArgs, ScaleArgs};
    use serde_json::json;

    /// An API never called.
    struct NoApi;

    #[async_trait::async_trait]
    impl Api for NoApi {
        async fn request(
            &self,
            _: &Caller,
            method: &str,
            path: &str,
            _: Option<Value>,
        ) -> Result<String, ApiError> {
            unreachable!("{method} {path}")
        }
    }

    #[test]
    fn every_tool_is_listed_with_the_schema_of_its_arguments() {
        let router = OrchestratorMcp::new(Arc::new(NoApi)).tool_router;
        let mut names: Vec<String> = router
            .list_all()
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "cordon_node",
                "create_workload",
                "delete_workload",
                "drain_node",
                "get_cluster_status",
                "get_credit_balance",
                "get_credit_history",
                "get_node",
                "get_node_reputation",
                "get_workload",
                "get_workload_logs",
                "list_events",
                "list_nodes",
                "list_pending_approvals",
                "list_workloads",
                "scale_workload",
                "update_workload",
            ]
        );
        let schema = |name: &str| router.get(name).unwrap().input_schema.clone();
        // Our `Parameters` publishes its arguments' schema, exactly.
        assert_eq!(
            schema("scale_workload"),
            schema_for_input::<ScaleArgs>().unwrap()
        );
        assert_eq!(
            schema("scale_workload")["properties"]["replicas"]["type"],
            "integer"
        );
        assert_eq!(
            schema("create_workload"),
            schema_for_input::<CreateArgs>().unwrap()
        );
        assert_eq!(
            schema("list_events"),
            schema_for_input::<PageArgs>().unwrap()
        );
        assert_eq!(
            schema("get_credit_history"),
            schema_for_input::<PageArgs>().unwrap()
        );
        assert_eq!(
            schema("get_node_reputation"),
            schema_for_input::<ReputationArgs>().unwrap()
        );
        for name in [
            "list_events",
            "list_pending_approvals",
            "get_node_reputation",
            "get_credit_balance",
            "get_credit_history",
        ] {
            let tool = router.get(name).unwrap();
            let hints = tool.annotations.as_ref().unwrap();
            assert_eq!(hints.read_only_hint, Some(true), "{name}");
        }
    }

    #[test]
    fn the_tools_and_their_hints_are_the_shared_lists() {
        use orchestrator_shared_types::agent::{is_read_only_tool, TOOLS};
        let router = OrchestratorMcp::new(Arc::new(NoApi)).tool_router;
        let tools = router.list_all();
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        names.sort_unstable();
        let mut shared = TOOLS.to_vec();
        shared.sort_unstable();
        assert_eq!(names, shared);
        for tool in &tools {
            let hints = tool.annotations.as_ref().unwrap();
            let read_only = is_read_only_tool(&tool.name);
            assert_eq!(hints.read_only_hint, Some(read_only), "{}", tool.name);
        }
    }

    #[test]
    fn a_held_call_is_a_result_not_an_error() {
        let body = json!({"pending_approval": {"id": "ab12", "tool": "scale_workload"}});
        let result = answer(body.to_string()).unwrap();
        assert_ne!(result.is_error, Some(true));
        let text = result.content[0].as_text().unwrap().text.clone();
        let told: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(told["pending_approval"]["id"], "ab12");
        assert!(told["message"]
            .as_str()
            .unwrap()
            .contains("ui approvals approve ab12"));
    }
}
