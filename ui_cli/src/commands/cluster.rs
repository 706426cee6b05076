//! `ui cluster join-token | members | remove` (and `ui node remove`): admission, for an admin (the
//! control plane answers; a worker forwards).

use chrono::TimeDelta;
use orchestrator_api::{JoinRole, JoinTokenRequest};
use serde_json::json;

use super::agent::parse_duration_within;
use super::Context;
use crate::cli::ClusterCommand;
use crate::output::{emit, Table};

/// Longest token lifetime the daemon accepts.
const MAX_TTL: TimeDelta = TimeDelta::days(7);

/// Runs `ui cluster ...`.
pub fn run(ctx: &Context, cmd: &ClusterCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match cmd {
        ClusterCommand::JoinToken { ttl, role } => {
            let ttl = parse_duration_within(ttl, MAX_TTL)?;
            let role: JoinRole = role.parse().map_err(anyhow::Error::msg)?;
            let issued = client
                .issue_join_token(&JoinTokenRequest {
                    ttl_seconds: Some(u64::try_from(ttl.num_seconds()).unwrap_or(0)),
                    role: Some(role),
                })?
                .data;
            let text = format!(
                "{}\n\njoin token {} for a {}, valid until {}. Keep it secret: it admits one \
                 node and carries the gossip key. On the new node:\n  orchestrator_daemon ... \
                 --join TOKEN",
                issued.token,
                issued.id,
                issued.role.as_str(),
                issued.expires_at
            );
            emit(ctx.output(), &serde_json::to_value(&issued)?, &text);
        }
        ClusterCommand::Members => {
            let reply = client.cluster_members()?;
            let mut table = Table::new(["NODE", "ROLE", "OPERATOR", "ADMITTED", "TOKEN"]);
            for m in &reply.data {
                table.row([
                    m.node_id.to_hex(),
                    m.role.as_str().to_owned(),
                    m.operator.to_hex(),
                    m.admitted_at.to_rfc3339(),
                    m.token_id.clone(),
                ]);
            }
            let value = json!({ "items": reply.raw, "next_cursor": null });
            emit(ctx.output(), &value, &table.render());
        }
        ClusterCommand::Remove { node } => remove(ctx, &client, node)?,
    }
    Ok(())
}

/// Removes member `node` (`ui cluster remove`, `ui node remove`) and says
/// how the gossip key rotation went.
pub fn remove(
    ctx: &Context,
    client: &orchestrator_api::client::ApiClient,
    node: &str,
) -> anyhow::Result<()> {
    let removed = client.remove_member(node)?;
    let mut text = format!(
        "removed {} from the cluster: every node drops it from its members",
        removed.data.member.node_id
    );
    match &removed.data.key_rotation {
        None => text.push_str("\n(gossip is not sealed: no key was rotated)"),
        Some(r) if r.complete => text.push_str(&format!(
            "\ngossip key rotated to {} on all {} remaining members",
            r.key_id.as_deref().unwrap_or("?"),
            r.rotated.len()
        )),
        Some(r) => {
            if let Some(e) = &r.error {
                text.push_str(&format!("\nWARNING: the gossip key was NOT rotated: {e}"));
            }
            for lb in &r.left_behind {
                text.push_str(&format!(
                    "\nWARNING: {} did not take the new gossip key ({}): it is cut off \
                     from gossip until it gets the key file or joins again",
                    lb.node_id, lb.reason
                ));
            }
        }
    }
    emit(ctx.output(), &removed.raw, &text);
    Ok(())
}
