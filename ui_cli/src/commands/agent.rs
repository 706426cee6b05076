//! `ui agent token create | revoke`: tokens letting an AI agent call the daemon
//! as you, for some tools, until they expire (docs/AGENTS.md, "Agent tokens").

use anyhow::Context as _;
use chrono::{DurationRound, SecondsFormat, TimeDelta, Utc};
use orchestrator_shared_types::agent::{
    is_known_tool, is_valid_agent_name, issue_token, TokenClaims, AGENT_NAME_MAX, ALL_TOOLS, TOOLS,
};
use orchestrator_shared_types::PublicKey;
use serde_json::json;

use super::automation::{disabled_warning, push, summary};
use super::Context;
use crate::cli::{AgentCommand, OutputFormat, TokenCommand, TokenCreateArgs};
use crate::output::{emit, print_json};

/// The longest validity of a token: 90 days.
pub const MAX_VALIDITY: TimeDelta = TimeDelta::days(90);

/// Runs `ui agent ...`.
pub fn run(ctx: &Context, cmd: &AgentCommand) -> anyhow::Result<()> {
    match cmd {
        AgentCommand::Token(TokenCommand::Create(args)) => create(ctx, args),
        AgentCommand::Token(TokenCommand::Revoke { id }) => revoke(ctx, id),
    }
}

/// Parses a validity such as `90s`, `30m`, `24h` or `7d` (at most 90 days).
pub fn parse_duration(text: &str) -> anyhow::Result<TimeDelta> {
    parse_duration_within(text, MAX_VALIDITY)
}

/// Parses a validity such as `90s`, `30m`, `24h` or `7d`: at least a second,
/// at most `max` (shared by `ui agent token create` and `ui attest`).
pub fn parse_duration_within(text: &str, max: TimeDelta) -> anyhow::Result<TimeDelta> {
    let t = text.trim();
    let bad = || {
        anyhow::anyhow!(
            "{text:?} is not a duration: expected a whole number and a unit, \
             s, m, h or d (e.g. 30m, 24h, 7d)"
        )
    };
    let unit = t.chars().last().ok_or_else(bad)?;
    let digits = &t[..t.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let seconds_per_unit: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    let too_long = || {
        anyhow::anyhow!(
            "{text:?} is longer than the maximum of {}",
            short_duration(max)
        )
    };
    // Only digits: parsing fails on overflow alone.
    let n: i64 = digits.parse().map_err(|_| too_long())?;
    let seconds = n
        .checked_mul(seconds_per_unit)
        .filter(|s| *s <= max.num_seconds())
        .ok_or_else(too_long)?;
    if seconds == 0 {
        anyhow::bail!("{text:?} is not a validity: it must last at least 1s");
    }
    Ok(TimeDelta::seconds(seconds))
}

/// A duration in the largest unit that divides it: `90d`, `36h`, `90s`.
fn short_duration(d: TimeDelta) -> String {
    let s = d.num_seconds();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Parses `--tools`: comma-separated MCP tool names, or `*` for every tool.
/// Duplicates are dropped; a list holding `*` becomes just `*`.
pub fn parse_tools(text: &str) -> anyhow::Result<Vec<String>> {
    let mut tools: Vec<String> = Vec::new();
    for tool in text.split(',').map(str::trim) {
        if tool.is_empty() {
            anyhow::bail!("{text:?} has an empty tool name: separate tools with single commas");
        }
        if tool != ALL_TOOLS && !is_known_tool(tool) {
            anyhow::bail!(
                "{tool:?} is not an MCP tool (known: {}, or * for every tool)",
                TOOLS.join(", ")
            );
        }
        if !tools.iter().any(|t| t == tool) {
            tools.push(tool.to_owned());
        }
    }
    if tools.iter().any(|t| t == ALL_TOOLS) {
        tools = vec![ALL_TOOLS.to_owned()];
    }
    Ok(tools)
}

/// Checks an agent name the way the daemon does.
pub fn check_agent_name(name: &str) -> anyhow::Result<()> {
    if is_valid_agent_name(name) {
        Ok(())
    } else {
        anyhow::bail!(
            "{name:?} is not an agent name: use 1 to {AGENT_NAME_MAX} characters of \
             A-Z a-z 0-9 . _ -"
        )
    }
}

/// `ui agent token create`: pushes the policy, then signs and prints a token.
pub fn create(ctx: &Context, args: &TokenCreateArgs) -> anyhow::Result<()> {
    check_agent_name(&args.name)?;
    let tools = parse_tools(&args.tools)?;
    let validity = parse_duration(&args.expires)?;
    let dir = ctx.config_dir()?;
    // Check the policy files before asking for the passphrase.
    super::automation::local_agent_policy(&dir)?;
    super::trust_push::local_rules(&dir)?;
    let key = ctx.signing_key()?;
    let client = ctx.client_with_key(key.clone())?;
    let (policy, _) = push(&client, &dir)?;
    eprintln!(
        "pushed your automation policy to {}: {}",
        client.server(),
        summary(&policy)
    );
    if let Some(warning) = disabled_warning(&policy) {
        eprintln!("{warning}");
    }
    super::trust_push::sync_and_say(&client, &dir, "")?;
    let now = Utc::now();
    let issued_at = now.duration_trunc(TimeDelta::seconds(1)).unwrap_or(now);
    let claims = TokenClaims::new(
        PublicKey(key.verifying_key().to_bytes()),
        args.name.clone(),
        tools,
        issued_at,
        issued_at + validity,
    );
    let token = issue_token(&key, &claims);
    // What it is, not the token itself, for `ui export` and revocation by id.
    user_config::agent_tokens::TokenLog::record(
        &dir,
        user_config::agent_tokens::TokenRecord {
            id: claims.id.clone(),
            agent: claims.agent.clone(),
            tools: claims.tools.clone(),
            issued_at: claims.issued_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            expires_at: claims.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        },
    )
    .with_context(|| format!("recording the token in {}", dir.root().display()))?;
    match ctx.output() {
        OutputFormat::Json => print_json(&json!({
            "token": token,
            "id": claims.id,
            "agent": claims.agent,
            "tools": claims.tools,
            "expires_at": claims.expires_at,
        })),
        OutputFormat::Table => {
            eprintln!(
                "token {} for agent {}, tools {}, expires {}",
                claims.id,
                claims.agent,
                claims.tools.join(","),
                claims.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
            println!("{token}");
        }
    }
    Ok(())
}

/// Checks a token id: 32 hex characters (returned lowercase).
pub fn parse_token_id(id: &str) -> anyhow::Result<String> {
    let id = id.trim();
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        anyhow::bail!(
            "{id:?} is not a token id: expected the 32 hex characters printed by \
             `ui agent token create`"
        )
    }
}

/// `ui agent token revoke ID`: `POST /api/v1/agent/tokens/{id}/revoke`.
pub fn revoke(ctx: &Context, id: &str) -> anyhow::Result<()> {
    let id = parse_token_id(id)?;
    let client = ctx.client()?;
    let answer = client
        .revoke_agent_token(&id)
        .with_context(|| format!("revoking token {id}"))?;
    emit(ctx.output(), &answer.raw, &format!("token {id} revoked"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").expect("ok"), TimeDelta::seconds(90));
        assert_eq!(parse_duration("30m").expect("ok"), TimeDelta::minutes(30));
        assert_eq!(parse_duration("24h").expect("ok"), TimeDelta::hours(24));
        assert_eq!(parse_duration(" 7d ").expect("ok"), TimeDelta::days(7));
        assert_eq!(parse_duration("90d").expect("ok"), MAX_VALIDITY);
        assert_eq!(parse_duration("2160h").expect("ok"), MAX_VALIDITY);
        for long in [
            "91d",
            "2161h",
            "99999999999999999999d",
            "9223372036854775807d",
        ] {
            let err = parse_duration(long).expect_err(long).to_string();
            assert!(
                err.contains("longer than the maximum of 90d"),
                "{long}: {err}"
            );
        }
        for bad in ["", "h", "24", "1w", "-1h", "1.5h", "+3h", "3 h", "3hh", "é"] {
            let err = parse_duration(bad).expect_err(bad).to_string();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
        assert!(parse_duration("0s")
            .expect_err("zero")
            .to_string()
            .contains("at least 1s"));
    }

    #[test]
    fn durations_within_another_maximum() {
        let year = TimeDelta::days(365);
        assert_eq!(parse_duration_within("365d", year).expect("ok"), year);
        assert_eq!(
            parse_duration_within("8760h", year).expect("ok"),
            TimeDelta::hours(8760)
        );
        let err = parse_duration_within("366d", year).expect_err("too long");
        assert_eq!(
            err.to_string(),
            "\"366d\" is longer than the maximum of 365d"
        );
        assert_eq!(short_duration(TimeDelta::hours(36)), "36h");
        assert_eq!(short_duration(TimeDelta::seconds(90)), "90s");
        assert_eq!(short_duration(TimeDelta::minutes(2)), "2m");
    }

    #[test]
    fn tool_lists() {
        assert_eq!(
            parse_tools("list_workloads, scale_workload,list_workloads").expect("ok"),
            ["list_workloads", "scale_workload"]
        );
        assert_eq!(parse_tools("*").expect("ok"), ["*"]);
        assert_eq!(parse_tools("get_node,*").expect("ok"), ["*"]);
        let err = parse_tools("list_workloads,deploy").expect_err("unknown");
        assert!(
            err.to_string().starts_with("\"deploy\" is not an MCP tool"),
            "{err}"
        );
        for bad in ["", "get_node,,list_nodes", "list_nodes,"] {
            let err = parse_tools(bad).expect_err(bad).to_string();
            assert!(err.contains("empty tool name"), "{bad}: {err}");
        }
    }

    #[test]
    fn names_and_ids() {
        assert!(check_agent_name("claude-code_1.0").is_ok());
        assert!(check_agent_name("two words").is_err());
        assert!(check_agent_name(&"x".repeat(65)).is_err());
        assert_eq!(
            parse_token_id("0123456789ABCDEF0123456789abcdef").expect("ok"),
            "0123456789abcdef0123456789abcdef"
        );
        assert!(parse_token_id("0123").is_err());
        assert!(parse_token_id(&"g".repeat(32)).is_err());
    }

    #[test]
    fn a_token_from_these_parts_verifies() {
        use orchestrator_shared_types::agent::verify_token;
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let now = Utc::now();
        let claims = TokenClaims::new(
            PublicKey(key.verifying_key().to_bytes()),
            "bot",
            parse_tools("list_workloads").expect("tools"),
            now,
            now + parse_duration("1h").expect("duration"),
        );
        let token = issue_token(&key, &claims);
        assert_eq!(verify_token(&token, now, 60).expect("verifies"), claims);
    }
}
