//! The automation policy the daemon holds per user (`PUT /api/v1/agent/policy`),
//! pushed from the user's `policy/automation.toml` and `[ai] enabled`.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TOOLS;

/// What an AI agent may do with a tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The agent may call the tool on its own.
    Autonomous,
    /// Each call waits for the user's approval.
    RequireApproval,
    /// The agent may never call the tool.
    Forbidden,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Autonomous => "autonomous",
            Self::RequireApproval => "require_approval",
            Self::Forbidden => "forbidden",
        })
    }
}

/// A text that is not a [`Decision`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one of autonomous, require_approval, forbidden")]
pub struct UnknownDecision(pub String);

impl FromStr for Decision {
    type Err = UnknownDecision;

    /// `autonomous`, `require_approval` (or `require-approval`) or `forbidden`,
    /// in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "autonomous" => Ok(Self::Autonomous),
            "require_approval" => Ok(Self::RequireApproval),
            "forbidden" => Ok(Self::Forbidden),
            _ => Err(UnknownDecision(s.to_owned())),
        }
    }
}

/// A user's automation policy as the daemon holds it: whether agents may act
/// at all, and the decision for each listed tool (unlisted: approval).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentPolicy {
    /// Whether AI agents may act for this user (`[ai] enabled` of config.toml).
    #[serde(default)]
    pub enabled: bool,
    /// Tools an agent may call alone.
    #[serde(default)]
    pub autonomous: Vec<String>,
    /// Tools whose calls wait for the user's approval.
    #[serde(default)]
    pub require_approval: Vec<String>,
    /// Tools an agent may never call.
    #[serde(default)]
    pub forbidden: Vec<String>,
}

impl AgentPolicy {
    /// The decision for a tool in no list.
    pub const DEFAULT: Decision = Decision::RequireApproval;

    /// The decision for `tool`: `forbidden` over `require_approval` over
    /// `autonomous`, and [`AgentPolicy::DEFAULT`] when unlisted. Says nothing
    /// about `enabled`, which the caller checks first.
    pub fn decision(&self, tool: &str) -> Decision {
        let has = |list: &[String]| list.iter().any(|t| t == tool);
        if has(&self.forbidden) {
            Decision::Forbidden
        } else if has(&self.require_approval) {
            Decision::RequireApproval
        } else if has(&self.autonomous) {
            Decision::Autonomous
        } else {
            Self::DEFAULT
        }
    }

    /// The three lists with their names.
    pub fn lists(&self) -> [(&'static str, &[String]); 3] {
        [
            ("autonomous", &self.autonomous),
            ("require_approval", &self.require_approval),
            ("forbidden", &self.forbidden),
        ]
    }

    /// Checks that every listed tool is one of [`TOOLS`] and appears once, in
    /// one list only. The message names the tool and the list.
    pub fn validate(&self) -> Result<(), String> {
        let lists = self.lists();
        for (li, (name, list)) in lists.iter().enumerate() {
            for (i, tool) in list.iter().enumerate() {
                if !TOOLS.contains(&tool.as_str()) {
                    return Err(format!(
                        "{tool:?} in {name} is not a known tool (known: {})",
                        TOOLS.join(", ")
                    ));
                }
                if list[..i].contains(tool) {
                    return Err(format!("{tool:?} is listed twice in {name}"));
                }
                if let Some((other, _)) = lists[..li].iter().find(|(_, l)| l.contains(tool)) {
                    return Err(format!(
                        "{tool:?} is in both {other} and {name}: a tool may be in one list only"
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

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn decisions_print_parse_and_serialise_in_snake_case() {
        for d in [
            Decision::Autonomous,
            Decision::RequireApproval,
            Decision::Forbidden,
        ] {
            assert_eq!(d.to_string().parse::<Decision>(), Ok(d));
            assert_eq!(
                serde_json::to_value(d).unwrap(),
                serde_json::Value::String(d.to_string())
            );
        }
        assert_eq!(
            "Require-Approval".parse::<Decision>(),
            Ok(Decision::RequireApproval)
        );
        let err = "maybe".parse::<Decision>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"maybe\" is not one of autonomous, require_approval, forbidden"
        );
    }

    #[test]
    fn forbidden_beats_approval_beats_autonomous_and_unlisted_needs_approval() {
        let p = AgentPolicy {
            enabled: true,
            autonomous: strings(&["list_workloads", "scale_workload", "drain_node"]),
            require_approval: strings(&["scale_workload", "drain_node"]),
            forbidden: strings(&["drain_node"]),
        };
        assert_eq!(p.decision("list_workloads"), Decision::Autonomous);
        assert_eq!(p.decision("scale_workload"), Decision::RequireApproval);
        assert_eq!(p.decision("drain_node"), Decision::Forbidden);
        assert_eq!(p.decision("delete_workload"), Decision::RequireApproval);
        assert_eq!(
            AgentPolicy::default().decision("list_nodes"),
            AgentPolicy::DEFAULT
        );
    }

    #[test]
    fn validate_names_the_tool_and_the_list() {
        let ok = AgentPolicy {
            enabled: true,
            autonomous: strings(&["list_workloads"]),
            require_approval: strings(&["delete_workload"]),
            forbidden: strings(&["drain_node"]),
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(AgentPolicy::default().validate(), Ok(()));

        let unknown = AgentPolicy {
            forbidden: strings(&["rm_rf"]),
            ..AgentPolicy::default()
        };
        let msg = unknown.validate().unwrap_err();
        assert!(
            msg.starts_with("\"rm_rf\" in forbidden is not a known tool"),
            "{msg}"
        );
        let star = AgentPolicy {
            autonomous: strings(&["*"]),
            ..AgentPolicy::default()
        };
        assert!(star.validate().is_err());

        let twice = AgentPolicy {
            autonomous: strings(&["get_node"]),
            forbidden: strings(&["get_node"]),
            ..AgentPolicy::default()
        };
        assert_eq!(
            twice.validate(),
            Err("\"get_node\" is in both autonomous and forbidden: \
                 a tool may be in one list only"
                .to_owned())
        );
        let dup = AgentPolicy {
            require_approval: strings(&["get_node", "get_node"]),
            ..AgentPolicy::default()
        };
        assert_eq!(
            dup.validate(),
            Err("\"get_node\" is listed twice in require_approval".to_owned())
        );
    }

    #[test]
    fn json_shape_is_the_documented_one() {
        let p: AgentPolicy = serde_json::from_str(
            r#"{"enabled": true, "autonomous": ["list_workloads"],
                "require_approval": ["delete_workload"], "forbidden": ["drain_node"]}"#,
        )
        .unwrap();
        assert!(p.enabled);
        assert_eq!(p.decision("drain_node"), Decision::Forbidden);
        assert_eq!(
            serde_json::from_str::<AgentPolicy>("{}").unwrap(),
            AgentPolicy::default()
        );
        assert!(serde_json::from_str::<AgentPolicy>(r#"{"enable": true}"#).is_err());
    }
}
