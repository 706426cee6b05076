//! What the page changes, each a form `POST`ed by the page (the guard has
//! checked its origin and token) and made as a signed call to the daemon;
//! the answer is a redirect back to the page, with what happened or why it
//! was refused in its query (`notice` or `error`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use orchestrator_api::routes::{NodeAction, Verdict};
use serde::Deserialize;

use super::live::call;
use super::State as Shared;

fn back(to: &str, outcome: Result<String, String>) -> Response {
    let (key, text) = match outcome {
        Ok(t) => ("notice", t),
        Err(t) => ("error", t),
    };
    let q = orchestrator_api::routes::segment(&text);
    Redirect::to(&format!("{to}?{key}={q}")).into_response()
}

/// The scale form.
#[derive(Deserialize)]
pub struct ScaleForm {
    replicas: String,
}

/// `POST /workloads/{name}/scale`.
pub async fn scale(
    State(dash): State<Shared>,
    Path(name): Path<String>,
    Form(form): Form<ScaleForm>,
) -> Response {
    let to = format!("/workloads/{}", orchestrator_api::routes::segment(&name));
    let Ok(n) = form.replicas.trim().parse::<u32>() else {
        return back(
            &to,
            Err(format!("{:?} is not a number of replicas", form.replicas)),
        );
    };
    let target = name.clone();
    let done = call(&dash, move |c| c.scale_workload(&target, n)).await;
    back(&to, done.map(|_| format!("{name} scaled to {n} replicas")))
}

/// `POST /workloads/{name}/delete`.
pub async fn delete(State(dash): State<Shared>, Path(name): Path<String>) -> Response {
    let target = name.clone();
    match call(&dash, move |c| c.delete_workload(&target)).await {
        Ok(_) => back("/workloads", Ok(format!("{name} deleted"))),
        Err(e) => back(
            &format!("/workloads/{}", orchestrator_api::routes::segment(&name)),
            Err(e),
        ),
    }
}

/// `POST /nodes/{id}/{cordon|uncordon|drain}`.
pub async fn node(
    State(dash): State<Shared>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let action = match action.as_str() {
        "cordon" => NodeAction::Cordon,
        "uncordon" => NodeAction::Uncordon,
        "drain" => NodeAction::Drain,
        other => return back("/nodes", Err(format!("{other:?} is not a node action"))),
    };
    let target = id.clone();
    let done = call(&dash, move |c| c.node_action(&target, action)).await;
    let short: String = id.chars().take(12).collect();
    back(
        "/nodes",
        done.map(|_| format!("node {short}: {}", action.as_str())),
    )
}

/// `POST /approvals/{id}/{approve|deny}`.
pub async fn approval(
    State(dash): State<Shared>,
    Path((id, verdict)): Path<(String, String)>,
) -> Response {
    let verdict = match verdict.as_str() {
        "approve" => Verdict::Approve,
        "deny" => Verdict::Deny,
        other => return back("/agents", Err(format!("{other:?} is not a decision"))),
    };
    let target = id.clone();
    let done = call(&dash, move |c| c.decide_approval(&target, verdict)).await;
    let word = match verdict {
        Verdict::Approve => "approved",
        Verdict::Deny => "denied",
    };
    back("/agents", done.map(|_| format!("call {id} {word}")))
}
