//! `policy/automation.toml`: what AI agents may do without asking.

use serde::{Deserialize, Serialize};

use orchestrator_shared_types::agent::AgentPolicy;
pub use orchestrator_shared_types::agent::Decision;

use super::AUTOMATION_FILE;
use crate::error::Result;
use crate::paths::ConfigDir;
use crate::toml_file::{self, FieldPath, Problem, Validate};

/// The AI boundaries: which tools (by MCP tool name, see
/// `orchestrator_shared_types::agent::TOOLS`) an agent may use.
///
/// ```toml
/// autonomous = ["list_workloads", "get_cluster_status"]
/// require_approval = ["create_workload", "scale_workload"]
/// forbidden = ["delete_workload"]
/// ```
///
/// A tool may appear in one list only. A tool in no list requires approval
/// ([`AutomationPolicy::DEFAULT`]): an unknown tool is never run unattended, and
/// never silently refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationPolicy {
    /// Tools the agent may call alone.
    #[serde(default)]
    pub autonomous: Vec<String>,
    /// Tools whose calls need the user's approval.
    #[serde(default)]
    pub require_approval: Vec<String>,
    /// Tools the agent may never call.
    #[serde(default)]
    pub forbidden: Vec<String>,
}

impl AutomationPolicy {
    /// The decision for a tool in no list.
    pub const DEFAULT: Decision = Decision::RequireApproval;

    /// Reads `policy/automation.toml` of `dir`; a missing file lists nothing.
    pub fn load(dir: &ConfigDir) -> Result<Self> {
        toml_file::load(dir, AUTOMATION_FILE)
    }

    /// Parses the text of an `automation.toml`.
    pub fn parse(text: &str) -> Result<Self> {
        toml_file::parse(AUTOMATION_FILE, text)
    }

    /// Validates and writes `policy/automation.toml` of `dir` atomically.
    pub fn save(&self, dir: &ConfigDir) -> Result<()> {
        toml_file::save(dir, AUTOMATION_FILE, self)
    }

    /// What an agent may do with `tool`: the list it is in, else
    /// [`AutomationPolicy::DEFAULT`] — the same rule the daemon applies to the
    /// pushed policy.
    pub fn decision(&self, tool: &str) -> Decision {
        self.to_agent_policy(true).decision(tool)
    }

    /// Puts `tool` in the list of `decision`, removing it from the others.
    pub fn set(&mut self, tool: &str, decision: Decision) {
        self.unset(tool);
        let list = match decision {
            Decision::Autonomous => &mut self.autonomous,
            Decision::RequireApproval => &mut self.require_approval,
            Decision::Forbidden => &mut self.forbidden,
        };
        list.push(tool.to_owned());
    }

    /// Removes `tool` from every list (it falls back to the default); whether it was
    /// listed.
    pub fn unset(&mut self, tool: &str) -> bool {
        let mut found = false;
        for list in [
            &mut self.autonomous,
            &mut self.require_approval,
            &mut self.forbidden,
        ] {
            let before = list.len();
            list.retain(|t| t != tool);
            found |= list.len() != before;
        }
        found
    }

    /// The policy as the daemon holds it (`PUT /api/v1/agent/policy`), with
    /// `enabled` from `[ai] enabled` of config.toml. The lists are copied as
    /// they are: check the result with [`AgentPolicy::validate`] before sending
    /// it, since this file may name tools the daemon does not know.
    pub fn to_agent_policy(&self, enabled: bool) -> AgentPolicy {
        AgentPolicy {
            enabled,
            autonomous: self.autonomous.clone(),
            require_approval: self.require_approval.clone(),
            forbidden: self.forbidden.clone(),
        }
    }

    fn lists(&self) -> [(&'static str, &[String]); 3] {
        [
            ("autonomous", &self.autonomous),
            ("require_approval", &self.require_approval),
            ("forbidden", &self.forbidden),
        ]
    }
}

impl Validate for AutomationPolicy {
    fn validate(&self) -> Result<(), Problem> {
        let lists = self.lists();
        for (li, (name, list)) in lists.iter().enumerate() {
            for (i, tool) in list.iter().enumerate() {
                if tool.trim().is_empty() {
                    return Err(Problem::new(
                        FieldPath::key(name).index(i),
                        "empty tool name",
                    ));
                }
                // Same list, earlier position.
                if list[..i].contains(tool) {
                    return Err(Problem::new(
                        FieldPath::key(name).index(i),
                        format!("{tool:?} is listed twice"),
                    ));
                }
                // An earlier list: report at this (the later) occurrence.
                if let Some((other, _)) = lists[..li].iter().find(|(_, l)| l.contains(tool)) {
                    return Err(Problem::new(
                        FieldPath::key(name).index(i),
                        format!("{tool:?} is also in {other}: a tool may be in one list only"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn decisions_and_default() {
        let p = AutomationPolicy::parse(
            "autonomous = [\"status\"]\nrequire_approval = [\"deploy\"]\nforbidden = [\"delete\"]\n",
        )
        .unwrap();
        assert_eq!(p.decision("status"), Decision::Autonomous);
        assert_eq!(p.decision("deploy"), Decision::RequireApproval);
        assert_eq!(p.decision("delete"), Decision::Forbidden);
        assert_eq!(p.decision("unheard_of"), Decision::RequireApproval);
    }

    #[test]
    fn decisions_parse_and_print() {
        for d in [
            Decision::Autonomous,
            Decision::RequireApproval,
            Decision::Forbidden,
        ] {
            assert_eq!(d.to_string().parse::<Decision>().unwrap(), d);
        }
        assert_eq!(
            "require-approval".parse::<Decision>().unwrap(),
            Decision::RequireApproval
        );
        assert!("maybe".parse::<Decision>().is_err());
    }

    #[test]
    fn a_tool_in_two_lists_is_an_error_at_its_second_line() {
        let text = "autonomous = [\"status\", \"deploy\"]\n\nforbidden = [\n  \"delete\",\n  \"deploy\",\n]\n";
        let err = AutomationPolicy::parse(text).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { line: Some(5), .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "policy/automation.toml:5: forbidden[1]: \"deploy\" is also in autonomous: \
             a tool may be in one list only"
        );
    }

    #[test]
    fn set_moves_between_lists_and_round_trips() {
        let mut p = AutomationPolicy::default();
        p.set("deploy", Decision::Autonomous);
        p.set("deploy", Decision::Forbidden);
        p.set("scale", Decision::RequireApproval);
        assert_eq!(p.decision("deploy"), Decision::Forbidden);
        assert!(p.autonomous.is_empty());
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        p.save(&dir).unwrap();
        assert_eq!(AutomationPolicy::load(&dir).unwrap(), p);
        assert!(p.unset("deploy"));
        assert_eq!(p.decision("deploy"), AutomationPolicy::DEFAULT);
    }

    #[test]
    fn every_tool_name_is_accepted_and_converts_to_the_daemons_policy() {
        use orchestrator_shared_types::agent::TOOLS;
        let mut p = AutomationPolicy::default();
        for (i, tool) in TOOLS.iter().enumerate() {
            let d = [
                Decision::Autonomous,
                Decision::RequireApproval,
                Decision::Forbidden,
            ][i % 3];
            p.set(tool, d);
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        p.save(&dir).unwrap();
        let p = AutomationPolicy::load(&dir).unwrap();
        let agent = p.to_agent_policy(true);
        assert!(agent.enabled);
        assert_eq!(agent.validate(), Ok(()));
        for tool in TOOLS {
            assert_eq!(agent.decision(tool), p.decision(tool), "{tool}");
        }
        assert!(!p.to_agent_policy(false).enabled);
    }

    #[test]
    fn save_refuses_an_invalid_policy() {
        let p = AutomationPolicy {
            autonomous: vec!["x".into()],
            forbidden: vec!["x".into()],
            ..Default::default()
        };
        let tmp = tempfile::tempdir().unwrap();
        let err = p.save(&ConfigDir::new(tmp.path())).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    }
}
