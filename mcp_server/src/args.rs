//! Arguments of the tools. Each is checked before any request is sent, and a
//! bad one is answered with a tool error that names it: [`Parameters`] keeps
//! a deserialization failure for the tool to report, where `rmcp`'s own
//! wrapper would answer with a JSON-RPC error.

use std::borrow::Cow;

use orchestrator_api::routes::{self, Query};
use orchestrator_shared_types::{NodeId, PublicKey, WorkloadSpec};
use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::ErrorData;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A tool's arguments, or why they are wrong (a message naming the argument).
///
/// Named `Parameters` on purpose: `#[tool]` takes a tool's input schema from
/// the parameter whose type is called `Parameters`, and this one's schema is
/// `T`'s, so `tools/list` publishes exactly the schema of `T`.
#[derive(Debug)]
pub struct Parameters<T>(pub Result<T, String>);

impl<T: DeserializeOwned> Parameters<T> {
    /// Reads the arguments object of a call (none given = `{}`).
    pub fn parse(arguments: Option<serde_json::Map<String, serde_json::Value>>) -> Self {
        let arguments = serde_json::Value::Object(arguments.unwrap_or_default());
        // The named deserializers below prefix type errors with the field's
        // name; serde's own "missing field `x`" names it too.
        Self(serde_json::from_value(arguments).map_err(|e| e.to_string()))
    }
}

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        Ok(Self::parse(context.arguments.take()))
    }
}

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// Deserializers that put the field's name in front of a type error, so an
/// agent that sent `"replicas": "many"` is told which argument was wrong.
macro_rules! named {
    ($($fn_name:ident: $field:literal => $ty:ty),* $(,)?) => {$(
        fn $fn_name<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            <$ty>::deserialize(d).map_err(|e| serde::de::Error::custom(format!("{}: {e}", $field)))
        }
    )*};
}

named! {
    limit_arg: "limit" => Option<u32>,
    cursor_arg: "cursor" => Option<String>,
    workload_arg: "workload" => String,
    replicas_arg: "replicas" => u32,
    tail_arg: "tail" => Option<usize>,
    node_arg: "node" => String,
    manifest_arg: "manifest" => WorkloadSpec,
    node_id_arg: "node" => NodeId,
    trusted_arg: "trusted" => Option<Vec<PublicKey>>,
}

/// Most items one list call returns (an agent's context is finite).
pub const MAX_PAGE: u32 = 100;
/// Items a list call returns when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 20;
/// Most log lines one call returns.
pub const MAX_LOG_LINES: usize = 500;
/// Most bytes of log text one call returns.
pub const MAX_LOG_BYTES: usize = 64 * 1024;
/// Most trusted operators one reputation call passes.
pub const MAX_TRUSTED: usize = 50;

/// A page of a list.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PageArgs {
    /// Items to return, 1–100 (default 20).
    #[serde(default, deserialize_with = "limit_arg")]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page, to get the next one.
    #[serde(default, deserialize_with = "cursor_arg")]
    pub cursor: Option<String>,
}

impl PageArgs {
    /// The query parameters (`limit=…&cursor=…`), or the argument that is wrong.
    pub fn query_params(&self) -> Result<Query, String> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(format!("limit: {limit} is not between 1 and {MAX_PAGE}"));
        }
        let mut query = Query::new();
        query.push("limit", &limit.to_string());
        query.push_opt("cursor", self.cursor.as_deref().filter(|c| !c.is_empty()));
        Ok(query)
    }

    /// The query parameters as text (`limit=…&cursor=…`), or the argument
    /// that is wrong.
    pub fn params(&self) -> Result<String, String> {
        self.query_params().map(|q| q.params())
    }

    /// The query string (`?limit=…&cursor=…`), or the argument that is wrong.
    pub fn query(&self) -> Result<String, String> {
        self.params().map(|p| format!("?{p}"))
    }
}

/// One workload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WorkloadRef {
    /// The workload's name or id.
    #[serde(deserialize_with = "workload_arg")]
    pub workload: String,
}

/// A new workload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateArgs {
    /// The manifest: the same fields as the YAML manifest of `ui deploy`.
    #[serde(deserialize_with = "manifest_arg")]
    pub manifest: WorkloadSpec,
}

/// A changed workload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateArgs {
    /// The workload's name or id.
    #[serde(deserialize_with = "workload_arg")]
    pub workload: String,
    /// The whole new manifest (its `name` must be the workload's).
    #[serde(deserialize_with = "manifest_arg")]
    pub manifest: WorkloadSpec,
}

/// A new replica count.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ScaleArgs {
    /// The workload's name or id.
    #[serde(deserialize_with = "workload_arg")]
    pub workload: String,
    /// How many instances should run.
    #[serde(deserialize_with = "replicas_arg")]
    pub replicas: u32,
}

/// Which log lines.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LogsArgs {
    /// The workload's name or id.
    #[serde(deserialize_with = "workload_arg")]
    pub workload: String,
    /// The last N lines of every container, 1–500 (default 100).
    #[serde(default, deserialize_with = "tail_arg")]
    pub tail: Option<usize>,
}

/// One node.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NodeRef {
    /// The node's id (64 hex characters).
    #[serde(deserialize_with = "node_arg")]
    pub node: String,
}

/// A node's reputation, as seen through the operators you trust.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReputationArgs {
    /// The node's id (64 hex characters).
    #[serde(deserialize_with = "node_id_arg")]
    pub node: NodeId,
    /// Operators you trust (public keys, 64 hex characters each; at most 50):
    /// attestations count for you through them. None: yours count alone.
    #[serde(default, deserialize_with = "trusted_arg")]
    #[schemars(length(max = 50))]
    pub trusted: Option<Vec<PublicKey>>,
}

impl ReputationArgs {
    /// The request's path and query (`?trusted=HEX,HEX` when some operators
    /// are trusted), or the argument that is wrong.
    pub fn path(&self) -> Result<String, String> {
        let trusted = self.trusted.as_deref().unwrap_or_default();
        if trusted.len() > MAX_TRUSTED {
            return Err(format!(
                "trusted: {} keys, at most {MAX_TRUSTED}",
                trusted.len()
            ));
        }
        Ok(routes::node_reputation(&self.node.to_hex(), trusted))
    }
}

/// `name` checked as a path segment: not empty, percent-encoded.
pub fn checked_segment(field: &str, value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    Ok(segment(value))
}

pub use orchestrator_api::routes::segment;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_errors_name_the_argument() {
        let e = serde_json::from_value::<ScaleArgs>(
            serde_json::json!({"workload": "w", "replicas": "many"}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("replicas:"), "{e}");
        let e = serde_json::from_value::<PageArgs>(serde_json::json!({"limit": -1}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("limit:"), "{e}");
        let p: PageArgs = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(p.limit, None);
    }

    #[test]
    fn bad_arguments_are_kept_with_their_name() {
        let args = |v: serde_json::Value| v.as_object().cloned();
        let Parameters(r) =
            Parameters::<ScaleArgs>::parse(args(json!({"workload": "w", "replicas": "many"})));
        let e = r.unwrap_err();
        assert!(e.starts_with("replicas:"), "{e}");
        let Parameters(r) = Parameters::<ScaleArgs>::parse(args(json!({"replicas": 2})));
        assert_eq!(r.unwrap_err(), "missing field `workload`");
        let Parameters(r) = Parameters::<CreateArgs>::parse(args(json!({"manifest": 3})));
        assert!(r.unwrap_err().starts_with("manifest:"));
        // no arguments at all: an empty object
        let Parameters(r) = Parameters::<PageArgs>::parse(None);
        assert_eq!(r.unwrap().limit, None);
    }

    #[test]
    fn the_published_schema_is_the_arguments_schema() {
        use rmcp::handler::server::common::schema_for_input;
        let wrapped = schema_for_input::<Parameters<ScaleArgs>>().unwrap();
        assert_eq!(wrapped, schema_for_input::<ScaleArgs>().unwrap());
        assert_eq!(wrapped["properties"]["replicas"]["type"], "integer");
        assert_eq!(
            schema_for_input::<Parameters<CreateArgs>>().unwrap(),
            schema_for_input::<CreateArgs>().unwrap()
        );
    }

    #[test]
    fn reputation_arguments_are_checked_keys() {
        let node = "ab".repeat(32);
        let key = |i: u8| format!("{i:02x}").repeat(32);
        let parsed = |v: serde_json::Value| serde_json::from_value::<ReputationArgs>(v);
        let a = parsed(json!({"node": node.to_uppercase(), "trusted": [key(1), key(2)]})).unwrap();
        assert_eq!(
            a.path().unwrap(),
            format!(
                "/api/v1/nodes/{node}/reputation?trusted={},{}",
                key(1),
                key(2)
            )
        );
        for none in [
            json!({"node": node}),
            json!({"node": node, "trusted": null}),
        ] {
            let path = parsed(none).unwrap().path().unwrap();
            assert_eq!(path, format!("/api/v1/nodes/{node}/reputation"));
        }
        let e = parsed(json!({"node": "x/y"})).unwrap_err().to_string();
        assert!(
            e.starts_with("node:") && e.contains("not a valid node id"),
            "{e}"
        );
        let e = parsed(json!({"node": node, "trusted": ["01"]}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("trusted:") && e.contains("public key"), "{e}");
        let fifty: Vec<String> = (0..50).map(key).collect();
        assert!(parsed(json!({"node": node, "trusted": fifty}))
            .unwrap()
            .path()
            .is_ok());
        let too_many: Vec<String> = (0..51).map(key).collect();
        let e = parsed(json!({"node": node, "trusted": too_many}))
            .unwrap()
            .path()
            .unwrap_err();
        assert_eq!(e, "trusted: 51 keys, at most 50");

        use rmcp::handler::server::common::schema_for_input;
        let schema = serde_json::to_value(schema_for_input::<ReputationArgs>().unwrap()).unwrap();
        assert_eq!(schema["required"], json!(["node"]), "{schema}");
        assert_eq!(schema["properties"]["trusted"]["maxItems"], 50, "{schema}");
    }

    #[test]
    fn pages_are_bounded_and_cursors_encoded() {
        assert_eq!(PageArgs::default().query().unwrap(), "?limit=20");
        let p = PageArgs {
            limit: Some(100),
            cursor: Some("a b/c".into()),
        };
        assert_eq!(p.query().unwrap(), "?limit=100&cursor=a%20b%2Fc");
        let err = PageArgs {
            limit: Some(101),
            cursor: None,
        }
        .query()
        .unwrap_err();
        assert!(err.starts_with("limit:"), "{err}");
        assert!(checked_segment("workload", " ")
            .unwrap_err()
            .starts_with("workload:"));
    }
}
