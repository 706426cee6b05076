//! The streamable-HTTP transport end to end: [`mcp_server::http_service`]
//! mounted in an axum router at `/mcp` on 127.0.0.1:0, driven by rmcp's own
//! client through both lifecycles (the `initialize` session of 2025-11-25
//! and the stateless requests of 2026-07-28), with a fake [`Api`].

// The helpers, like the tests, fail by panicking.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mcp_server::{http_service, Api, ApiError, Caller};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The agent token the client sends (`Authorization: Bearer TOKEN`).
const TOKEN: &str = "univrs-agent-v1.e30.c2ln";

/// One call the fake API received.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    method: String,
    path: String,
    body: Option<Value>,
}

/// Answers every call with `answer` and remembers it.
struct FakeApi {
    answer: String,
    seen: Mutex<Vec<Seen>>,
}

impl FakeApi {
    fn answering(answer: Value) -> Arc<Self> {
        Arc::new(Self {
            answer: answer.to_string(),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Api for FakeApi {
    async fn request(
        &self,
        caller: &Caller,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, ApiError> {
        self.seen.lock().unwrap().push(Seen {
            authorization: caller.authorization.clone(),
            method: method.to_owned(),
            path: path.to_owned(),
            body,
        });
        Ok(self.answer.clone())
    }
}

/// The daemon's side: the service nested at `/mcp` and served on a free port.
struct Daemon {
    url: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Daemon {
    async fn start(api: Arc<FakeApi>) -> Self {
        let shutdown = CancellationToken::new();
        let router =
            axum::Router::new().nest_service("/mcp", http_service(api, shutdown.child_token()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await
                    .unwrap();
            }
        });
        Self {
            url,
            shutdown,
            task,
        }
    }

    /// An agent connected with `lifecycle`, sending the token.
    async fn agent(
        &self,
        lifecycle: ClientLifecycleMode,
    ) -> RunningService<RoleClient, ClientConfig> {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(self.url.as_str()).auth_header(TOKEN),
        );
        ClientConfig::default()
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

fn session() -> ClientLifecycleMode {
    ClientLifecycleMode::Initialize
}

fn stateless() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

async fn call(
    agent: &RunningService<RoleClient, ClientConfig>,
    tool: &'static str,
    arguments: Value,
) -> CallToolResult {
    let arguments = arguments.as_object().cloned().unwrap();
    agent
        .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments))
        .await
        .unwrap()
}

fn text_of(result: &CallToolResult) -> String {
    result.content[0].as_text().unwrap().text.clone()
}

/// Lists the tools, fails on a bad argument, then scales with the caller's
/// credentials forwarded.
async fn drive(lifecycle: ClientLifecycleMode, version: ProtocolVersion) {
    let api = FakeApi::answering(json!({"spec": {"name": "web", "replicas": 3}}));
    let daemon = Daemon::start(Arc::clone(&api)).await;
    let agent = daemon.agent(lifecycle).await;
    assert_eq!(agent.peer_info().unwrap().protocol_version, version);

    let tools = agent.list_all_tools().await.unwrap();
    assert_eq!(
        tools.len(),
        17,
        "{:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    for name in [
        "get_node_reputation",
        "get_credit_balance",
        "get_credit_history",
    ] {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let hints = tool.annotations.as_ref().unwrap();
        assert_eq!(hints.read_only_hint, Some(true), "{name}");
    }
    let scale = tools.iter().find(|t| t.name == "scale_workload").unwrap();
    assert_eq!(
        scale.input_schema["properties"]["replicas"]["type"],
        "integer"
    );

    let bad = call(
        &agent,
        "scale_workload",
        json!({"workload": "web", "replicas": "many"}),
    )
    .await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text_of(&bad).contains("replicas"), "{}", text_of(&bad));
    assert!(api.seen().is_empty(), "a bad call reached the API");

    let scaled = call(
        &agent,
        "scale_workload",
        json!({"workload": "web", "replicas": 3}),
    )
    .await;
    assert_ne!(scaled.is_error, Some(true), "{}", text_of(&scaled));
    let seen = api.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/api/v1/workloads/web/scale");
    assert_eq!(seen[0].body, Some(json!({"replicas": 3})));
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    agent.cancel().await.unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn an_initialized_session_forwards_each_calls_credentials() {
    drive(session(), ProtocolVersion::V_2025_11_25).await;
}

#[tokio::test]
async fn stateless_requests_forward_each_calls_credentials() {
    drive(stateless(), ProtocolVersion::V_2026_07_28).await;
}

#[tokio::test]
async fn a_call_held_for_approval_is_a_result_naming_the_approval() {
    let approval = json!({
        "id": "0123456789abcdef0123456789abcdef", "user": "ab", "agent": "claude",
        "tool": "delete_workload", "method": "DELETE", "path": "/api/v1/workloads/web",
        "body": null, "state": "pending", "created_at": "2026-11-30T10:00:00Z",
        "decided_at": null, "result": null,
    });
    let api = FakeApi::answering(json!({"pending_approval": approval}));
    let daemon = Daemon::start(Arc::clone(&api)).await;
    for lifecycle in [session(), stateless()] {
        let agent = daemon.agent(lifecycle).await;
        let held = call(&agent, "delete_workload", json!({"workload": "web"})).await;
        assert_ne!(held.is_error, Some(true), "{}", text_of(&held));
        let told: Value = serde_json::from_str(&text_of(&held)).unwrap();
        assert_eq!(told["pending_approval"], approval);
        let message = told["message"].as_str().unwrap();
        assert!(
            message.contains("ui approvals approve 0123456789abcdef0123456789abcdef"),
            "{message}"
        );
        assert!(
            message.starts_with("delete_workload needs the user's approval"),
            "{message}"
        );
        agent.cancel().await.unwrap();
    }
    daemon.stop().await;
}

#[tokio::test]
async fn remote_host_names_are_served() {
    // The daemon is reached by its own name or address, not only loopback.
    let api = FakeApi::answering(json!({}));
    let router =
        axum::Router::new().nest_service("/mcp", http_service(api, CancellationToken::new()));
    let request = axum::http::Request::post("/mcp")
        .header("host", "orchestrator.example.net:9090")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"}}})
            .to_string(),
        ))
        .unwrap();
    let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
    assert_eq!(response.status(), 200);
}
