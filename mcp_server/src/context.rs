//! Resources (the cluster's status, each of your workloads) and prompts
//! (`diagnose_workload`) of the MCP server: what an agent can read into its
//! context without calling a tool.

use orchestrator_api::routes::{self, Query};
use orchestrator_api::{Page, Workload};
use rmcp::model::{
    GetPromptResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, Prompt,
    PromptArgument, PromptMessage, ReadResourceResult, Resource, ResourceContents,
    ResourceTemplate, Role,
};
use rmcp::ErrorData;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::{Api, ApiError, Caller};
use crate::approval::{held, pending_approval};

/// URI of the cluster's status.
pub const CLUSTER_STATUS_URI: &str = "univrs://cluster/status";
/// URI prefix of a workload (`univrs://workloads/NAME`).
pub const WORKLOAD_URI_PREFIX: &str = "univrs://workloads/";
/// Most workloads listed as resources (the rest through the template).
const MAX_LISTED: usize = 100;

fn api_failed(e: ApiError) -> ErrorData {
    match e {
        ApiError::Refused {
            status: 404,
            message,
            ..
        } => ErrorData::resource_not_found(message, None),
        ApiError::Refused { message, .. } => ErrorData::invalid_params(message, None),
        ApiError::Unreachable(why) => {
            ErrorData::internal_error(format!("cannot reach the orchestrator daemon: {why}"), None)
        }
    }
}

/// `GET path` for `caller`. A read held for the user's approval is an error
/// that says so (with the approval as its data): there is nothing to read yet.
async fn get(api: &dyn Api, caller: &Caller, path: &str) -> Result<String, ErrorData> {
    let text = api
        .request(caller, "GET", path, None)
        .await
        .map_err(api_failed)?;
    let answer = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
    match pending_approval(&answer) {
        Some(approval) => {
            let told = held(approval);
            let message = told["message"].as_str().unwrap_or_default().to_owned();
            Err(ErrorData::invalid_request(message, Some(told)))
        }
        None => Ok(text),
    }
}

/// The cluster status and up to 100 of the caller's workloads.
pub async fn list_resources(
    api: &dyn Api,
    caller: &Caller,
) -> Result<ListResourcesResult, ErrorData> {
    let mut items = vec![Resource::new(CLUSTER_STATUS_URI, "cluster-status")
        .with_description("Nodes, workloads, instances and resources of the cluster")
        .with_mime_type("application/json")];
    let mut query = Query::new();
    query.push("limit", &MAX_LISTED.to_string());
    let page = api
        .request(caller, "GET", &query.after(routes::WORKLOADS), None)
        .await
        .map_err(api_failed)?;
    // A listing held for approval has no items: the cluster status alone.
    // A workload this version cannot read is left out, not the others.
    let page: Page<Value> = serde_json::from_str(&page).unwrap_or(Page {
        items: Vec::new(),
        next_cursor: None,
    });
    let workloads = page
        .items
        .iter()
        .filter_map(|w| Workload::deserialize(w).ok());
    for w in workloads {
        let name = w.name();
        items.push(
            Resource::new(format!("{WORKLOAD_URI_PREFIX}{name}"), name)
                .with_description("A workload: manifest, generation and instance counts")
                .with_mime_type("application/json"),
        );
    }
    Ok(ListResourcesResult::with_all_items(items))
}

/// The template of a workload's URI.
pub fn list_templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![ResourceTemplate::new(
        format!("{WORKLOAD_URI_PREFIX}{{workload}}"),
        "workload",
    )
    .with_description("One of your workloads, by name or id")
    .with_mime_type("application/json")])
}

/// Reads a resource by URI.
pub async fn read_resource(
    api: &dyn Api,
    caller: &Caller,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let path = if uri == CLUSTER_STATUS_URI {
        routes::CLUSTER_STATUS.to_owned()
    } else if let Some(name) = uri
        .strip_prefix(WORKLOAD_URI_PREFIX)
        .filter(|n| !n.is_empty())
    {
        routes::workload(name)
    } else {
        return Err(ErrorData::resource_not_found(
            format!("uri: {uri:?} is neither {CLUSTER_STATUS_URI} nor {WORKLOAD_URI_PREFIX}NAME"),
            None,
        ));
    };
    let text = get(api, caller, &path).await?;
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        text, uri,
    )
    .with_mime_type("application/json")]))
}

/// The prompts.
pub fn list_prompts() -> ListPromptsResult {
    ListPromptsResult::with_all_items(vec![Prompt::new(
        "diagnose_workload",
        Some("Find out why a workload is not running as it should, and propose a fix"),
        Some(vec![PromptArgument::new("workload")
            .with_description("The workload's name or id")
            .with_required(true)]),
    )])
}

/// Builds a prompt; its context is read now, as the caller.
pub async fn get_prompt(
    api: &dyn Api,
    caller: &Caller,
    name: &str,
    arguments: Option<&Map<String, Value>>,
) -> Result<GetPromptResult, ErrorData> {
    if name != "diagnose_workload" {
        return Err(ErrorData::invalid_params(
            format!("name: no prompt {name:?} (there is diagnose_workload)"),
            None,
        ));
    }
    let workload = arguments
        .and_then(|a| a.get("workload"))
        .and_then(Value::as_str)
        .filter(|w| !w.trim().is_empty())
        .ok_or_else(|| {
            ErrorData::invalid_params("workload: a workload name or id is required", None)
        })?;
    let record = get(api, caller, &routes::workload(workload)).await?;
    let mut first = Query::new();
    first.push("limit", "50");
    let instances = get(
        api,
        caller,
        &first.after(&routes::workload_instances(workload)),
    )
    .await?;
    let text = format!(
        "Diagnose the workload {workload:?} of the Univrs orchestrator and propose a fix.\n\n\
         Its record (manifest, generation, instance counts):\n{record}\n\n\
         Its instances (status, node, restarts, last exit code, reason):\n{instances}\n\n\
         Steps: compare `status` with `spec.replicas`; read the reasons of instances that are \
         not Running (Failed with OOMKilled → raise the memory limit; ImagePullFailed → fix the \
         image; Error with a non-zero exit code → read the logs); call get_workload_logs with \
         tail 100; call list_nodes to see whether its nodes are Ready; then say what is wrong \
         and which tool call (update_workload, scale_workload, …) would fix it. Do not change \
         anything before the user agrees."
    );
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(
        Role::User,
        text,
    )]))
}
