//! The workload tools: list, read, create, update, scale, delete, logs.

use orchestrator_api::{routes, ScaleRequest};
use rmcp::{tool, tool_router};
use serde_json::{json, Value};

use super::{answered, failed, refused, OrchestratorMcp, ToolResult};
use crate::api::Caller;
use crate::approval::{held, pending_approval};
use crate::args::{
    checked_segment, CreateArgs, LogsArgs, PageArgs, Parameters, ScaleArgs, UpdateArgs,
    WorkloadRef, MAX_LOG_BYTES, MAX_LOG_LINES,
};

#[tool_router(router = workload_tools, vis = "pub(super)")]
impl OrchestratorMcp {
    /// Lists your workloads with their replica counts, a page at a time.
    #[tool(annotations(read_only_hint = true))]
    async fn list_workloads(
        &self,
        caller: Caller,
        Parameters(page): Parameters<PageArgs>,
    ) -> ToolResult {
        let page = match page {
            Ok(page) => page,
            Err(e) => return failed(e),
        };
        self.get_page(&caller, routes::WORKLOADS, &page).await
    }

    /// One workload: its manifest, generation and instance counts, and its
    /// instances (node, status, address, published ports, restarts, reason).
    #[tool(annotations(read_only_hint = true))]
    async fn get_workload(
        &self,
        caller: Caller,
        Parameters(w): Parameters<WorkloadRef>,
    ) -> ToolResult {
        let w = match w {
            Ok(w) => w,
            Err(e) => return failed(e),
        };
        if let Err(e) = checked_segment("workload", &w.workload) {
            return failed(e);
        }
        let record = match self
            .api
            .request(&caller, "GET", &routes::workload(&w.workload), None)
            .await
        {
            Ok(text) => text,
            Err(e) => return refused(e),
        };
        let Ok(Value::Object(mut record)) = serde_json::from_str::<Value>(&record) else {
            return answered(&Value::String(record));
        };
        if let Some(approval) = pending_approval(&Value::Object(record.clone())) {
            return answered(&held(approval));
        }
        let path = format!("{}?limit=100", routes::workload_instances(&w.workload));
        match self.api.request(&caller, "GET", &path, None).await {
            Ok(text) => {
                let page: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let instances = page.get("data").cloned().unwrap_or(json!([]));
                record.insert("instances".into(), instances);
                answered(&Value::Object(record))
            }
            Err(e) => refused(e),
        }
    }

    /// Creates a workload from a manifest (or updates yours of the same name).
    #[tool(annotations(read_only_hint = false, destructive_hint = false))]
    async fn create_workload(
        &self,
        caller: Caller,
        Parameters(a): Parameters<CreateArgs>,
    ) -> ToolResult {
        let a = match a {
            Ok(a) => a,
            Err(e) => return failed(e),
        };
        match serde_json::to_value(&a.manifest) {
            Ok(body) => {
                self.call(&caller, "POST", routes::WORKLOADS, Some(body))
                    .await
            }
            Err(e) => failed(format!("manifest: {e}")),
        }
    }

    /// Replaces a workload's manifest; a changed template rolls out.
    #[tool(annotations(read_only_hint = false, destructive_hint = true))]
    async fn update_workload(
        &self,
        caller: Caller,
        Parameters(a): Parameters<UpdateArgs>,
    ) -> ToolResult {
        let a = match a {
            Ok(a) => a,
            Err(e) => return failed(e),
        };
        let body = match serde_json::to_value(&a.manifest) {
            Ok(body) => body,
            Err(e) => return failed(format!("manifest: {e}")),
        };
        let path = routes::workload;
        self.call_at(&caller, "PUT", ("workload", &a.workload), path, Some(body))
            .await
    }

    /// Sets how many instances of a workload run.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true
    ))]
    async fn scale_workload(
        &self,
        caller: Caller,
        Parameters(a): Parameters<ScaleArgs>,
    ) -> ToolResult {
        let a = match a {
            Ok(a) => a,
            Err(e) => return failed(e),
        };
        let body = match serde_json::to_value(ScaleRequest {
            replicas: a.replicas,
        }) {
            Ok(body) => body,
            Err(e) => return failed(format!("replicas: {e}")),
        };
        let path = routes::workload_scale;
        self.call_at(&caller, "POST", ("workload", &a.workload), path, Some(body))
            .await
    }

    /// Deletes a workload and stops all its instances.
    #[tool(annotations(
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true
    ))]
    async fn delete_workload(
        &self,
        caller: Caller,
        Parameters(w): Parameters<WorkloadRef>,
    ) -> ToolResult {
        let w = match w {
            Ok(w) => w,
            Err(e) => return failed(e),
        };
        let path = routes::workload;
        self.call_at(&caller, "DELETE", ("workload", &w.workload), path, None)
            .await
    }

    /// The last lines of a workload's container output (at most 500 lines, 64 KiB).
    #[tool(annotations(read_only_hint = true))]
    async fn get_workload_logs(
        &self,
        caller: Caller,
        Parameters(a): Parameters<LogsArgs>,
    ) -> ToolResult {
        let a = match a {
            Ok(a) => a,
            Err(e) => return failed(e),
        };
        let tail = a.tail.unwrap_or(100);
        if !(1..=MAX_LOG_LINES).contains(&tail) {
            return failed(format!("tail: {tail} is not between 1 and {MAX_LOG_LINES}"));
        }
        if let Err(e) = checked_segment("workload", &a.workload) {
            return failed(e);
        }
        let text = match self
            .api
            .request(
                &caller,
                "GET",
                &routes::workload_logs(&a.workload, Some(tail), false),
                None,
            )
            .await
        {
            Ok(t) => t,
            Err(e) => return refused(e),
        };
        // the logs are lines of JSON; a held call's answer is one object
        if let Some(approval) = serde_json::from_str::<Value>(&text)
            .ok()
            .as_ref()
            .and_then(pending_approval)
        {
            return answered(&held(approval));
        }
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
}
