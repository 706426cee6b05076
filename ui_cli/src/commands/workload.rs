//! `ui scale` and `ui delete`.

use serde_json::json;

use super::Context;
use crate::cli::{DeleteArgs, ScaleArgs};
use crate::client::segment;
use crate::output::emit;
use crate::views::{view, Workload};

/// `ui scale <name> <n>`: `POST /api/v1/workloads/{name}/scale`, unless
/// `policy/limits.toml` refuses it.
pub fn scale(ctx: &Context, args: &ScaleArgs) -> anyhow::Result<()> {
    let limits = super::limits::load(&ctx.config_dir()?)?;
    let client = ctx.client()?;
    super::limits::check_scale(&limits, &client, &args.name, args.replicas)?;
    let path = format!("/api/v1/workloads/{}/scale", segment(&args.name));
    let answer = client.post_json(&path, &json!({ "replicas": args.replicas }))?;
    let w: Workload = view(&answer, "workload")?;
    emit(
        ctx.output(),
        &answer,
        &format!(
            "workload {} scaled to {} replicas ({} running)",
            w.name(),
            w.spec.replicas,
            w.status.running
        ),
    );
    Ok(())
}

/// `ui delete <name>`: `DELETE /api/v1/workloads/{name}`.
pub fn delete(ctx: &Context, args: &DeleteArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let answer = client.delete(&format!("/api/v1/workloads/{}", segment(&args.name)))?;
    let w: Workload = view(&answer, "workload")?;
    emit(
        ctx.output(),
        &answer,
        &format!("workload {} deleted", w.name()),
    );
    Ok(())
}
