//! `ui mcp`: the MCP server over stdio for an AI agent, acting as you — every
//! tool is a REST call signed with your identity, so the agent can do what
//! you can and nothing more (SPEC §12), within the automation policy the
//! daemon enforces for agents (pushed before serving, docs/AGENTS.md). Every
//! call names the agent (`X-Univrs-Agent`, `--agent`, default `mcp-stdio`).

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use mcp_server::{Api, ApiError};
use serde_json::Value;

use super::agent::check_agent_name;
use super::{automation, Context};
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
        _caller: &mcp_server::Caller,
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

/// Runs the MCP server on stdin/stdout until the client hangs up, after
/// pushing the user's automation policy (signed in person, without the agent
/// header): the daemon enforces it on every tool call.
pub fn run(ctx: &Context, args: &McpArgs) -> anyhow::Result<()> {
    check_agent_name(&args.agent)?;
    let dir = ctx.config_dir()?;
    // Check the policy files before asking for the passphrase.
    automation::local_agent_policy(&dir)?;
    super::trust_push::local_rules(&dir)?;
    let key = ctx.signing_key()?;
    let in_person = ctx.client_with_key(key.clone())?;
    let (policy, _) = automation::push(&in_person, &dir).with_context(|| {
        format!(
            "cannot serve MCP for agent {}: the daemon must hold your automation policy",
            args.agent
        )
    })?;
    // stdout carries the protocol: everything for people goes to stderr.
    eprintln!(
        "ui mcp: pushed your automation policy to {}: {}",
        in_person.server(),
        automation::summary(&policy)
    );
    if let Some(warning) = automation::disabled_warning(&policy) {
        eprintln!("ui mcp: {warning}");
    }
    super::trust_push::sync_and_say(&in_person, &dir, "ui mcp: ")?;
    let client = Arc::new(ctx.client_with_key(key)?.with_agent(args.agent.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    eprintln!(
        "ui mcp: serving MCP on stdio for {} as agent {}",
        client.server(),
        args.agent
    );
    runtime
        .block_on(mcp_server::serve_stdio(Arc::new(UiApi { client })))
        .context("serving MCP on stdio")
}
