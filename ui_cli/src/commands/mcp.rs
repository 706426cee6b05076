//! `ui mcp`: the MCP server over stdio for an AI agent, acting as you — every
//! tool is a REST call signed with your identity, so the agent can do what
//! you can and nothing more (SPEC §12).

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use mcp_server::{Api, ApiError};
use serde_json::Value;

use super::Context;
use crate::cli::McpArgs;
use crate::client::{ApiClient, ClientError};

/// The signed REST client as the MCP server's [`Api`].
struct UiApi {
    client: Arc<ApiClient>,
}

#[async_trait]
impl Api for UiApi {
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, ApiError> {
        let client = Arc::clone(&self.client);
        let (method, path) = (method.to_owned(), path.to_owned());
        let result = tokio::task::spawn_blocking(move || {
            let bytes = body.map(|b| b.to_string().into_bytes());
            let answer = client.send(
                &method,
                &path,
                bytes.as_deref().map(|b| ("application/json", b)),
            )?;
            answer.text()
        })
        .await
        .map_err(|e| ApiError::Unreachable(format!("the request task failed: {e}")))?;
        result.map_err(|e| match e {
            ClientError::Api {
                status,
                code,
                message,
                ..
            } => ApiError::Refused {
                status,
                code,
                message,
            },
            other => ApiError::Unreachable(other.to_string()),
        })
    }
}

/// Runs the MCP server on stdin/stdout until the client hangs up.
pub fn run(ctx: &Context, args: &McpArgs) -> anyhow::Result<()> {
    let client = Arc::new(ctx.client()?.with_agent(args.agent.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    eprintln!("ui mcp: serving MCP on stdio for {}", client.server());
    runtime
        .block_on(mcp_server::serve_stdio(Arc::new(UiApi { client })))
        .context("serving MCP on stdio")
}
