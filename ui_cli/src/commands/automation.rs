//! `ui policy automation TOOL SETTING | ai on|off | push`: what AI agents may do
//! for you, edited locally and enforced by the daemon once pushed
//! (`PUT /api/v1/agent/policy`, docs/AGENTS.md). `push` sends the trust
//! policy too ([`super::trust_push`]).

use anyhow::Context as _;
use orchestrator_shared_types::agent::{is_known_tool, AgentPolicy, Decision, TOOLS};
use serde_json::{json, Value};
use user_config::paths::ConfigDir;

use super::Context;
use crate::cli::{AutomationSetting, Switch};
use crate::client::ApiClient;
use crate::output::emit;
use crate::profile::{load_config, AutomationPolicy};

/// What the edit commands end with.
pub const APPLY_HINT: &str = "run `ui policy push` to apply it on the daemon";

/// Reads `policy/automation.toml` of `dir`.
fn load_automation(dir: &ConfigDir) -> anyhow::Result<AutomationPolicy> {
    AutomationPolicy::load(dir)
        .with_context(|| format!("reading {}", dir.automation_file().display()))
}

/// The policy to push: `policy/automation.toml` and `[ai] enabled` of `dir`,
/// checked against the tools the daemon knows.
pub fn local_agent_policy(dir: &ConfigDir) -> anyhow::Result<AgentPolicy> {
    let config = load_config(dir)?;
    let policy = load_automation(dir)?.to_agent_policy(config.ai.enabled);
    policy.validate().map_err(|problem| {
        anyhow::anyhow!(
            "{}: {problem}; fix it with `ui policy automation TOOL unset`",
            dir.automation_file().display()
        )
    })?;
    Ok(policy)
}

/// Sends the policy of `dir` to the daemon with `client`, which must not name
/// an agent (the daemon takes policies from the user in person only).
/// Returns the policy sent and the daemon's answer.
pub fn push(client: &ApiClient, dir: &ConfigDir) -> anyhow::Result<(AgentPolicy, Value)> {
    let policy = local_agent_policy(dir)?;
    let answer = client
        .put_agent_policy(&policy)
        .with_context(|| format!("pushing your automation policy to {}", client.server()))?;
    Ok((policy, answer.raw))
}

/// One line saying what a policy allows, e.g. `AI agents enabled; autonomous:
/// list_workloads; require approval: (none); forbidden: drain_node; unlisted
/// tools require approval`.
pub fn summary(policy: &AgentPolicy) -> String {
    let list = |l: &[String]| {
        if l.is_empty() {
            "(none)".to_owned()
        } else {
            l.join(", ")
        }
    };
    format!(
        "AI agents {}; autonomous: {}; require approval: {}; forbidden: {}; \
         unlisted tools require approval",
        if policy.enabled {
            "enabled"
        } else {
            "disabled"
        },
        list(&policy.autonomous),
        list(&policy.require_approval),
        list(&policy.forbidden),
    )
}

/// The warning for a policy pushed with `[ai] enabled = false`, if it was.
pub fn disabled_warning(policy: &AgentPolicy) -> Option<&'static str> {
    (!policy.enabled).then_some(
        "warning: [ai] enabled = false in config.toml, so the daemon refuses every \
         agent call; allow them with `ui policy ai on` and `ui policy push`",
    )
}

/// `ui policy push`: the automation policy and the trust policy, which the
/// daemon enforces on every agent call and every workload of yours.
pub fn push_command(ctx: &Context, dir: &ConfigDir) -> anyhow::Result<()> {
    // Check the files before asking for the passphrase.
    local_agent_policy(dir)?;
    super::trust_push::local_rules(dir)?;
    let client = ctx.client()?;
    let (policy, answer) = push(&client, dir)?;
    let rules = super::trust_push::push(&client, dir)?;
    emit(
        ctx.output(),
        &json!({ "automation": answer, "trust": rules }),
        &format!(
            "pushed your automation policy to {}: {}\npushed your {}",
            client.server(),
            summary(&policy),
            super::trust_push::summary(&rules)
        ),
    );
    if let Some(warning) = disabled_warning(&policy) {
        eprintln!("{warning}");
    }
    Ok(())
}

/// Checks that `tool` is an MCP tool the daemon knows.
pub fn check_tool(tool: &str) -> anyhow::Result<()> {
    if is_known_tool(tool) {
        Ok(())
    } else {
        anyhow::bail!("{tool:?} is not an MCP tool (known: {})", TOOLS.join(", "))
    }
}

/// The decision a setting writes, `None` for `unset`.
pub fn setting_decision(setting: AutomationSetting) -> Option<Decision> {
    match setting {
        AutomationSetting::Autonomous => Some(Decision::Autonomous),
        AutomationSetting::RequireApproval => Some(Decision::RequireApproval),
        AutomationSetting::Forbidden => Some(Decision::Forbidden),
        AutomationSetting::Unset => None,
    }
}

/// Applies `setting` for `tool` to `policy`; the sentence saying what changed.
pub fn apply_setting(
    policy: &mut AutomationPolicy,
    tool: &str,
    setting: AutomationSetting,
) -> String {
    match setting_decision(setting) {
        Some(decision) => {
            policy.set(tool, decision);
            format!("{tool}: {decision}")
        }
        None if policy.unset(tool) => format!(
            "{tool}: unset, so it falls back to {}",
            AutomationPolicy::DEFAULT
        ),
        None => format!(
            "{tool}: was not listed, so it already falls back to {}",
            AutomationPolicy::DEFAULT
        ),
    }
}

/// `ui policy automation TOOL SETTING`.
pub fn set_tool(
    ctx: &Context,
    dir: &ConfigDir,
    tool: &str,
    setting: AutomationSetting,
) -> anyhow::Result<()> {
    check_tool(tool)?;
    let mut policy = load_automation(dir)?;
    let what = apply_setting(&mut policy, tool, setting);
    dir.ensure()
        .with_context(|| format!("creating {}", dir.root().display()))?;
    policy
        .save(dir)
        .with_context(|| format!("writing {}", dir.automation_file().display()))?;
    emit(
        ctx.output(),
        &json!({
            "tool": tool,
            "decision": policy.decision(tool),
            "listed": setting != AutomationSetting::Unset,
            "automation": policy,
            "file": dir.automation_file(),
        }),
        &format!(
            "{what} (in {}); {APPLY_HINT}",
            dir.automation_file().display()
        ),
    );
    Ok(())
}

/// `ui policy ai on|off`.
pub fn set_ai(ctx: &Context, dir: &ConfigDir, state: Switch) -> anyhow::Result<()> {
    let mut config = load_config(dir)?;
    config.ai.enabled = state == Switch::On;
    dir.ensure()
        .with_context(|| format!("creating {}", dir.root().display()))?;
    config
        .save(dir)
        .with_context(|| format!("writing {}", dir.config_file().display()))?;
    let word = if config.ai.enabled {
        "enabled"
    } else {
        "disabled"
    };
    emit(
        ctx.output(),
        &json!({ "ai_enabled": config.ai.enabled, "file": dir.config_file() }),
        &format!(
            "AI agents {word} in {}; {APPLY_HINT}",
            dir.config_file().display()
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{GlobalArgs, OutputFormat};
    use crate::client::test_server::serve_once;

    fn ctx(dir: &std::path::Path) -> Context {
        Context::new(GlobalArgs {
            server: Some("http://127.0.0.1:9".to_owned()),
            config_dir: Some(dir.to_path_buf()),
            output: OutputFormat::Json,
        })
    }

    #[test]
    fn tools_are_checked_against_the_known_list() {
        assert!(check_tool("drain_node").is_ok());
        let err = check_tool("deploy").expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("\"deploy\" is not an MCP tool (known: list_workloads, "),
            "{err}"
        );
    }

    #[test]
    fn settings_move_tools_between_lists() {
        let mut p = AutomationPolicy::default();
        assert_eq!(
            apply_setting(&mut p, "drain_node", AutomationSetting::Forbidden),
            "drain_node: forbidden"
        );
        apply_setting(&mut p, "drain_node", AutomationSetting::Autonomous);
        assert_eq!(p.autonomous, ["drain_node"]);
        assert!(p.forbidden.is_empty());
        assert_eq!(
            apply_setting(&mut p, "drain_node", AutomationSetting::Unset),
            "drain_node: unset, so it falls back to require_approval"
        );
        assert!(
            apply_setting(&mut p, "drain_node", AutomationSetting::Unset)
                .contains("was not listed")
        );
    }

    #[test]
    fn edits_write_the_files_and_push_sends_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let c = ctx(tmp.path());
        let dir = c.config_dir().expect("dir");
        set_tool(&c, &dir, "list_workloads", AutomationSetting::Autonomous).expect("set");
        set_tool(&c, &dir, "drain_node", AutomationSetting::Forbidden).expect("set");
        assert!(set_tool(&c, &dir, "deploy", AutomationSetting::Forbidden).is_err());
        set_ai(&c, &dir, Switch::On).expect("ai on");
        let policy = local_agent_policy(&dir).expect("policy");
        assert_eq!(
            policy,
            AgentPolicy {
                enabled: true,
                autonomous: vec!["list_workloads".into()],
                require_approval: vec![],
                forbidden: vec!["drain_node".into()],
            }
        );
        assert_eq!(
            summary(&policy),
            "AI agents enabled; autonomous: list_workloads; require approval: (none); \
             forbidden: drain_node; unlisted tools require approval"
        );
        assert_eq!(disabled_warning(&policy), None);

        let answer = serde_json::to_string(&policy).expect("json");
        let (url, server) = serve_once("200 OK", &answer);
        let client = ApiClient::new(&url, None).expect("client");
        let (sent, got) = push(&client, &dir).expect("pushed");
        assert_eq!(sent, policy);
        assert_eq!(got, serde_json::to_value(&policy).expect("value"));
        let (head, body) = server.join().expect("server thread");
        assert!(head.starts_with("put /api/v1/agent/policy "), "{head}");
        assert!(!head.contains("x-univrs-agent"), "{head}");
        let body: AgentPolicy = serde_json::from_str(&body).expect("body");
        assert_eq!(body, policy);

        set_ai(&c, &dir, Switch::Off).expect("ai off");
        assert!(disabled_warning(&local_agent_policy(&dir).expect("policy")).is_some());
    }

    #[test]
    fn a_file_naming_an_unknown_tool_is_refused_before_pushing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = ConfigDir::new(tmp.path());
        let mut p = AutomationPolicy::default();
        p.set("deploy", Decision::Autonomous);
        p.save(&dir).expect("saved");
        let err = local_agent_policy(&dir).expect_err("unknown tool");
        let msg = err.to_string();
        assert!(
            msg.contains("automation.toml: \"deploy\" in autonomous"),
            "{msg}"
        );
        assert!(msg.ends_with("`ui policy automation TOOL unset`"), "{msg}");
    }
}
