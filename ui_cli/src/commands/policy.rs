//! `ui policy show | trust <key> | deny <key> | limits [...]`: the local policy
//! files (`automation`, `ai` and `push` are in [`super::automation`]).

use anyhow::Context as _;
use orchestrator_shared_types::PublicKey;
use serde::Serialize;
use serde_json::json;

use super::Context;
use crate::cli::{LimitsArgs, PolicyCommand};
use crate::output::emit;
use crate::profile::{AutomationPolicy, LimitsPolicy, TrustPolicy};

/// Parses an operator key (64 hex characters).
pub fn parse_key(text: &str) -> anyhow::Result<PublicKey> {
    text.trim()
        .parse()
        .with_context(|| format!("{text:?} is not an operator key (expected 64 hex characters)"))
}

/// Parses an operator key given as 64 hex characters or as standard base64
/// of its 32 bytes, padded or not (the form of the `X-Auth-PublicKey` header
/// and of the daemon's audit log).
pub fn parse_operator(text: &str) -> anyhow::Result<PublicKey> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use base64::Engine as _;
    let t = text.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return parse_key(&t.to_ascii_lowercase());
    }
    let bytes = STANDARD
        .decode(t)
        .or_else(|_| STANDARD_NO_PAD.decode(t))
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    match bytes {
        Some(bytes) => Ok(PublicKey(bytes)),
        None => anyhow::bail!(
            "{text:?} is not an operator key: expected 64 hex characters or the \
             base64 of 32 bytes"
        ),
    }
}

/// A policy as TOML under a `# path` comment.
fn toml_section<T: Serialize>(path: &std::path::Path, value: &T) -> anyhow::Result<String> {
    let text =
        toml::to_string_pretty(value).with_context(|| format!("printing {}", path.display()))?;
    let text = if text.trim().is_empty() {
        "# (nothing set)"
    } else {
        text.trim_end()
    };
    Ok(format!("# {}\n{text}\n", path.display()))
}

/// The limits given on the command line, as `(key, value)` pairs of
/// [`LimitsPolicy::set`].
pub fn limit_changes(args: &LimitsArgs) -> Vec<(&'static str, String)> {
    let mut changes = Vec::new();
    if let Some(v) = &args.max_cpu {
        changes.push(("max_cpu", v.clone()));
    }
    if let Some(v) = &args.max_memory {
        changes.push(("max_memory", v.clone()));
    }
    if let Some(v) = args.max_replicas {
        changes.push(("max_replicas", v.to_string()));
    }
    if let Some(v) = args.max_workloads {
        changes.push(("max_workloads", v.to_string()));
    }
    if let Some(v) = &args.credit_limit {
        changes.push(("credit_limit", v.clone()));
    }
    changes
}

/// Runs `ui policy ...`.
pub fn run(ctx: &Context, cmd: &PolicyCommand) -> anyhow::Result<()> {
    let dir = ctx.config_dir()?;
    match cmd {
        PolicyCommand::Show => {
            let trust = TrustPolicy::load(&dir)
                .with_context(|| format!("reading {}", dir.trust_file().display()))?;
            let limits = LimitsPolicy::load(&dir)
                .with_context(|| format!("reading {}", dir.limits_file().display()))?;
            let automation = AutomationPolicy::load(&dir)
                .with_context(|| format!("reading {}", dir.automation_file().display()))?;
            let text = [
                toml_section(&dir.trust_file(), &trust)?,
                toml_section(&dir.limits_file(), &limits)?,
                toml_section(&dir.automation_file(), &automation)?,
            ]
            .join("\n");
            emit(
                ctx.output(),
                &json!({ "trust": trust, "limits": limits, "automation": automation }),
                &text,
            );
        }
        PolicyCommand::Trust { key } | PolicyCommand::Deny { key } => {
            let key = parse_key(key)?;
            let trusting = matches!(cmd, PolicyCommand::Trust { .. });
            let mut trust = TrustPolicy::load(&dir)
                .with_context(|| format!("reading {}", dir.trust_file().display()))?;
            if trusting {
                trust.trust(key);
            } else {
                trust.deny(key);
            }
            dir.ensure()
                .with_context(|| format!("creating {}", dir.root().display()))?;
            trust
                .save(&dir)
                .with_context(|| format!("writing {}", dir.trust_file().display()))?;
            let verb = if trusting { "trusted" } else { "denied" };
            emit(
                ctx.output(),
                &json!({ "key": key.to_hex(), "action": verb, "trust": trust }),
                &format!("operator {} {verb}", key.to_hex()),
            );
        }
        PolicyCommand::Automation { tool, setting } => {
            super::automation::set_tool(ctx, &dir, tool, *setting)?
        }
        PolicyCommand::Ai { state } => super::automation::set_ai(ctx, &dir, *state)?,
        PolicyCommand::Push => super::automation::push_command(ctx, &dir)?,
        PolicyCommand::Limits(args) => {
            let mut limits = LimitsPolicy::load(&dir)
                .with_context(|| format!("reading {}", dir.limits_file().display()))?;
            let changes = limit_changes(args);
            for (key, value) in &changes {
                // The error names the limit and the value already.
                limits.set(key, value)?;
            }
            if !changes.is_empty() {
                dir.ensure()
                    .with_context(|| format!("creating {}", dir.root().display()))?;
                limits
                    .save(&dir)
                    .with_context(|| format!("writing {}", dir.limits_file().display()))?;
            }
            emit(
                ctx.output(),
                &json!(limits),
                &toml_section(&dir.limits_file(), &limits)?,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hex() {
        assert!(parse_key(&"ab".repeat(32)).is_ok());
        let err = parse_key("nope").expect_err("rejects");
        assert!(err.to_string().contains("not an operator key"));
    }

    #[test]
    fn operators_are_hex_or_base64() {
        use base64::Engine as _;
        let key = PublicKey([0xab; 32]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.0);
        assert!(b64.ends_with('='));
        for text in [
            key.to_hex(),
            key.to_hex().to_ascii_uppercase(),
            b64.clone(),
            b64.trim_end_matches('=').to_owned(),
            format!(" {b64}\n"),
        ] {
            assert_eq!(parse_operator(&text).expect(&text), key, "{text}");
        }
        for bad in ["", "ab", &"ab".repeat(31), &"zz".repeat(32), "q83vEjRWeJA="] {
            let err = parse_operator(bad).expect_err(bad).to_string();
            assert!(err.contains("is not an operator key"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_given_limits_change() {
        let args = LimitsArgs {
            max_cpu: None,
            max_memory: Some("8Gi".into()),
            max_replicas: Some(3),
            max_workloads: None,
            credit_limit: None,
        };
        assert_eq!(
            limit_changes(&args),
            vec![
                ("max_memory", "8Gi".to_owned()),
                ("max_replicas", "3".to_owned())
            ]
        );
    }
}
