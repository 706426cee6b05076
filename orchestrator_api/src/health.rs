//! The body of `/health`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Body of `/health`: `{"status": "ok"|"degraded", "components": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// `degraded` if any component is not `ok`.
    pub status: OverallStatus,
    /// Every component by name.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentReport>,
}

/// Overall status in a [`HealthReport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverallStatus {
    /// Every component is ok.
    Ok,
    /// At least one component is failing or starting.
    Degraded,
}

impl fmt::Display for OverallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
        })
    }
}

/// One component in a [`HealthReport`]: `{"status": ..., "message"?: ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentReport {
    /// How it is doing.
    pub status: ComponentState,
    /// Why it is failing, for a failing component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Status word of a component in a [`HealthReport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentState {
    /// Working.
    Ok,
    /// Not working.
    Failing,
    /// Not started yet.
    Starting,
}

impl fmt::Display for ComponentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Failing => "failing",
            Self::Starting => "starting",
        })
    }
}
