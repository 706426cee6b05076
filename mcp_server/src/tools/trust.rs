//! Reputation and credit (issue 7), read-only: a node's reputation as you see
//! it, your credit balance and your ledger. Transfers and attestations are the
//! user's in person: no tool makes them, and the daemon refuses them to agents.

use orchestrator_api::routes;
use rmcp::{tool, tool_router};

use super::{failed, OrchestratorMcp, ToolResult};
use crate::api::Caller;
use crate::args::{PageArgs, Parameters, ReputationArgs};

#[tool_router(router = trust_tools, vis = "pub(super)")]
impl OrchestratorMcp {
    /// A node's reputation as you see it: uptime, reliability, honesty, age,
    /// the trust of its operator through the operators you trust, and the
    /// composite score (each 0–1).
    #[tool(annotations(read_only_hint = true))]
    async fn get_node_reputation(
        &self,
        caller: Caller,
        Parameters(a): Parameters<ReputationArgs>,
    ) -> ToolResult {
        match a.and_then(|a| a.path()) {
            Ok(path) => self.call(&caller, "GET", &path, None).await,
            Err(e) => failed(e),
        }
    }

    /// Your credit balance: what is available, reserved, and your credit limit.
    #[tool(annotations(read_only_hint = true))]
    async fn get_credit_balance(&self, caller: Caller) -> ToolResult {
        self.call(&caller, "GET", routes::CREDITS_BALANCE, None)
            .await
    }

    /// Your credit ledger (transfers, charges, earnings), oldest first, a page at a time.
    #[tool(annotations(read_only_hint = true))]
    async fn get_credit_history(
        &self,
        caller: Caller,
        Parameters(page): Parameters<PageArgs>,
    ) -> ToolResult {
        let page = match page {
            Ok(page) => page,
            Err(e) => return failed(e),
        };
        self.get_page(&caller, routes::CREDITS_HISTORY, &page).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use super::*;
    use crate::api::fake::FakeApi;

    fn args(v: Value) -> Option<serde_json::Map<String, Value>> {
        v.as_object().cloned()
    }

    fn text(result: &rmcp::model::CallToolResult) -> String {
        result.content[0].as_text().unwrap().text.clone()
    }

    #[tokio::test]
    async fn reputation_passes_the_trusted_operators() {
        let api = Arc::new(FakeApi::answering(json!({"composite": 0.5})));
        let mcp = OrchestratorMcp::new(api.clone());
        let (node, a, b) = ("ab".repeat(32), "01".repeat(32), "cd".repeat(32));
        let got = mcp
            .get_node_reputation(
                Caller::default(),
                Parameters::parse(args(json!({"node": node, "trusted": [a, b]}))),
            )
            .await
            .unwrap();
        assert_ne!(got.is_error, Some(true), "{}", text(&got));
        assert_eq!(text(&got), r#"{"composite":0.5}"#);
        let path = format!("/api/v1/nodes/{node}/reputation?trusted={a},{b}");
        assert_eq!(api.seen(), [("GET".to_owned(), path, None)]);

        // no trusted operators: no query
        mcp.get_node_reputation(
            Caller::default(),
            Parameters::parse(args(json!({"node": node}))),
        )
        .await
        .unwrap();
        let path = format!("/api/v1/nodes/{node}/reputation");
        assert_eq!(api.seen()[1], ("GET".to_owned(), path, None));
    }

    #[tokio::test]
    async fn a_bad_node_or_trusted_list_is_a_tool_error_naming_it() {
        let api = Arc::new(FakeApi::answering(json!({})));
        let mcp = OrchestratorMcp::new(api.clone());
        let too_many: Vec<String> = (0..51u8).map(|i| format!("{i:02x}").repeat(32)).collect();
        for (arguments, field) in [
            (json!({"node": "not-hex"}), "node:"),
            (json!({"node": "abcd"}), "node:"),
            (json!({"node": 7}), "node:"),
            (
                json!({"node": "ab".repeat(32), "trusted": ["zz"]}),
                "trusted:",
            ),
            (
                json!({"node": "ab".repeat(32), "trusted": "01"}),
                "trusted:",
            ),
            (
                json!({"node": "ab".repeat(32), "trusted": too_many}),
                "trusted:",
            ),
        ] {
            let got = mcp
                .get_node_reputation(Caller::default(), Parameters::parse(args(arguments)))
                .await
                .unwrap();
            assert_eq!(got.is_error, Some(true), "{}", text(&got));
            assert!(text(&got).starts_with(field), "{}", text(&got));
        }
        let got = mcp
            .get_node_reputation(Caller::default(), Parameters::parse(None))
            .await
            .unwrap();
        assert_eq!(text(&got), "missing field `node`");
        assert!(api.seen().is_empty(), "a bad call reached the API");
    }

    #[tokio::test]
    async fn balance_and_history_read_the_callers_account() {
        let api = Arc::new(FakeApi::answering(json!({"items": []})));
        let mcp = OrchestratorMcp::new(api.clone());
        mcp.get_credit_balance(Caller::default()).await.unwrap();
        let page = json!({"limit": 5, "cursor": "42"});
        mcp.get_credit_history(Caller::default(), Parameters::parse(args(page)))
            .await
            .unwrap();
        let bad = mcp
            .get_credit_history(
                Caller::default(),
                Parameters::parse(args(json!({"limit": 0}))),
            )
            .await
            .unwrap();
        assert!(text(&bad).starts_with("limit:"), "{}", text(&bad));
        let paths: Vec<String> = api.seen().into_iter().map(|(_, p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "/api/v1/credits/balance",
                "/api/v1/credits/history?limit=5&cursor=42"
            ]
        );
    }
}
