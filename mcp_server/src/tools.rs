//! [`OrchestratorMcp`]: the MCP tools (SPEC §12), each a call of the REST API
//! made as the user through [`Api`]. Lists are paginated (`limit` ≤ 100,
//! `cursor`) and logs bounded, so a big cluster cannot flood an agent's
//! context. Every failure — a bad argument, an unknown workload, a refusal —
//! is a tool error whose text names what was wrong; the server keeps serving.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Value};

use crate::api::{Api, ApiError};
use crate::args::{
    checked_segment, CreateArgs, LogsArgs, NodeRef, PageArgs, ScaleArgs, UpdateArgs, WorkloadRef,
    MAX_LOG_BYTES, MAX_LOG_LINES,
};
use crate::context;

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
            tool_router: Self::tool_router(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> ToolResult {
        match self.api.request(method, path, body).await {
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v) => answered(&v),
                Err(_) => answered(&Value::String(text)),
            },
            Err(e) => refused(e),
        }
    }

    /// `method` on the path `path` makes of argument `field`'s value, checked
    /// and encoded as a path segment.
    async fn call_at(
        &self,
        method: &str,
        (field, value): (&str, &str),
        path: impl FnOnce(&str) -> String,
        body: Option<Value>,
    ) -> ToolResult {
        match checked_segment(field, value) {
            Ok(segment) => self.call(method, &path(&segment), body).await,
            Err(e) => failed(e),
        }
    }

    async fn get_page(&self, base: &str, page: &PageArgs) -> ToolResult {
        match page.query() {
            Ok(q) => self.call("GET", &format!("{base}{q}"), None).await,
            Err(e) => failed(e),
        }
    }
}

#[tool_router]
impl OrchestratorMcp {
    /// Lists your workloads with their replica counts, a page at a time.
    #[tool(annotations(read_only_hint = true))]
    async fn list_workloads(&self, Parameters(page): Parameters<PageArgs>) -> ToolResult {
        self.get_page("/api/v1/workloads", &page).await
    }

    /// One workload: its manifest, generation and instance counts.
    #[tool(annotations(read_only_hint = true))]
    async fn get_workload(&self, Parameters(w): Parameters<WorkloadRef>) -> ToolResult {
        let path = |r: &str| format!("/api/v1/workloads/{r}");
        self.call_at("GET", ("workload", &w.workload), path, None)
            .await
    }

    /// Creates a workload from a manifest (or updates yours of the same name).
    #[tool(annotations(read_only_hint = false, destructive_hint = false))]
    async fn create_workload(&self, Parameters(a): Parameters<CreateArgs>) -> ToolResult {
        match serde_json::to_value(&a.manifest) {
            Ok(body) => self.call("POST", "/api/v1/workloads", Some(body)).await,
            Err(e) => failed(format!("manifest: {e}")),
        }
    }

    /// Replaces a workload's manifest; a changed template rolls out.
    #[tool(annotations(read_only_hint = false, destructive_hint = true))]
    async fn update_workload(&self, Parameters(a): Parameters<UpdateArgs>) -> ToolResult {
        let body = match serde_json::to_value(&a.manifest) {
            Ok(body) => body,
            Err(e) => return failed(format!("manifest: {e}")),
        };
        let path = |r: &str| format!("/api/v1/workloads/{r}");
        self.call_at("PUT", ("workload", &a.workload), path, Some(body))
            .await
    }

    /// Sets how many instances of a workload run.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true
    ))]
    async fn scale_workload(&self, Parameters(a): Parameters<ScaleArgs>) -> ToolResult {
        let body = json!({"replicas": a.replicas});
        let path = |r: &str| format!("/api/v1/workloads/{r}/scale");
        self.call_at("POST", ("workload", &a.workload), path, Some(body))
            .await
    }

    /// Deletes a workload and stops all its instances.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true
    ))]
    async fn delete_workload(&self, Parameters(w): Parameters<WorkloadRef>) -> ToolResult {
        let path = |r: &str| format!("/api/v1/workloads/{r}");
        self.call_at("DELETE", ("workload", &w.workload), path, None)
            .await
    }

    /// The last lines of a workload's container output (at most 500 lines, 64 KiB).
    #[tool(annotations(read_only_hint = true))]
    async fn get_workload_logs(&self, Parameters(a): Parameters<LogsArgs>) -> ToolResult {
        let tail = a.tail.unwrap_or(100);
        if !(1..=MAX_LOG_LINES).contains(&tail) {
            return failed(format!("tail: {tail} is not between 1 and {MAX_LOG_LINES}"));
        }
        let r = match checked_segment("workload", &a.workload) {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let text = match self
            .api
            .request(
                "GET",
                &format!("/api/v1/workloads/{r}/logs?tail={tail}"),
                None,
            )
            .await
        {
            Ok(t) => t,
            Err(e) => return refused(e),
        };
        let mut lines = Vec::new();
        let mut bytes = 0;
        let mut truncated = false;
        for line in text.lines().rev() {
            bytes += line.len();
            if bytes > MAX_LOG_BYTES {
                truncated = true;
                break;
            }
            lines.push(serde_json::from_str::<Value>(line).unwrap_or_else(|_| json!(line)));
        }
        lines.reverse();
        answered(&json!({"lines": lines, "truncated": truncated}))
    }

    /// Lists the cluster's nodes with their status and resources, a page at a time.
    #[tool(annotations(read_only_hint = true))]
    async fn list_nodes(&self, Parameters(page): Parameters<PageArgs>) -> ToolResult {
        self.get_page("/api/v1/nodes", &page).await
    }

    /// One node.
    #[tool(annotations(read_only_hint = true))]
    async fn get_node(&self, Parameters(n): Parameters<NodeRef>) -> ToolResult {
        let path = |id: &str| format!("/api/v1/nodes/{id}");
        self.call_at("GET", ("node", &n.node), path, None).await
    }

    /// Cordons a node: it keeps what it runs and takes nothing new.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true
    ))]
    async fn cordon_node(&self, Parameters(n): Parameters<NodeRef>) -> ToolResult {
        let path = |id: &str| format!("/api/v1/nodes/{id}/cordon");
        self.call_at("POST", ("node", &n.node), path, None).await
    }

    /// Drains a node: cordons it and moves its instances elsewhere.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true
    ))]
    async fn drain_node(&self, Parameters(n): Parameters<NodeRef>) -> ToolResult {
        let path = |id: &str| format!("/api/v1/nodes/{id}/drain");
        self.call_at("POST", ("node", &n.node), path, None).await
    }

    /// The cluster at a glance: nodes, workloads, instances, resources, members.
    #[tool(annotations(read_only_hint = true))]
    async fn get_cluster_status(&self) -> ToolResult {
        self.call("GET", "/api/v1/cluster/status", None).await
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
            "Drive a Univrs orchestrator cluster as the user whose identity runs this server: \
                 list, create, scale and delete workloads, read their logs, and inspect nodes. \
                 Lists are paginated: pass next_cursor back as cursor.",
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        context::list_resources(self.api.as_ref()).await
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
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(context::read_resource(self.api.as_ref(), &request.uri)
            .await?
            .into())
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
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        Ok(
            context::get_prompt(self.api.as_ref(), &request.name, request.arguments.as_ref())
                .await?
                .into(),
        )
    }
}
