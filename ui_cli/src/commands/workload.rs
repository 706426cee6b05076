//! `ui scale` and `ui delete`.

use super::Context;
use crate::cli::{DeleteArgs, ScaleArgs};
use crate::output::emit;

/// `ui scale <name> <n>`: `POST /api/v1/workloads/{name}/scale`, unless
/// `policy/limits.toml` refuses it.
pub fn scale(ctx: &Context, args: &ScaleArgs) -> anyhow::Result<()> {
    let limits = super::limits::load(&ctx.config_dir()?)?;
    let client = ctx.client()?;
    super::limits::check_scale(&limits, &client, &args.name, args.replicas)?;
    let answer = client.scale_workload(&args.name, args.replicas)?;
    let w = &answer.data;
    emit(
        ctx.output(),
        &answer.raw,
        &format!(
            "workload {} scaled to {} replicas ({} running)",
            w.name(),
            w.replicas(),
            w.status.running
        ),
    );
    Ok(())
}

/// `ui delete <name>`: `DELETE /api/v1/workloads/{name}`.
pub fn delete(ctx: &Context, args: &DeleteArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let answer = client.delete_workload(&args.name)?;
    emit(
        ctx.output(),
        &answer.raw,
        &format!("workload {} deleted", answer.data.name()),
    );
    Ok(())
}
