//! The user's policy files under `policy/`.
//!
//! - [`TrustPolicy`] (`policy/trust.toml`): which operators to trust or refuse,
//!   minimum reputation, required attestations and labels (data residency);
//! - [`LimitsPolicy`] (`policy/limits.toml`): resource and credit limits, which
//!   `ui` enforces before it sends (`limits_check`);
//! - [`AutomationPolicy`] (`policy/automation.toml`): what AI agents may do alone.
//!
//! A missing file means the permissive defaults of its type. Errors name the file,
//! line and field: `policy/trust.toml:3: min_reputation: 1.5 is not between 0 and 1`.

mod automation;
mod limits;
mod limits_check;
mod trust;

pub use automation::{AutomationPolicy, Decision};
pub use limits::{LimitsPolicy, LIMIT_KEYS};
pub use limits_check::LimitUsage;
pub use trust::TrustPolicy;

use crate::error::Result;
use crate::paths::ConfigDir;

/// `policy/trust.toml`, relative to the config directory.
pub const TRUST_FILE: &str = "policy/trust.toml";
/// `policy/limits.toml`, relative to the config directory.
pub const LIMITS_FILE: &str = "policy/limits.toml";
/// `policy/automation.toml`, relative to the config directory.
pub const AUTOMATION_FILE: &str = "policy/automation.toml";

/// All three policy files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policies {
    /// `policy/trust.toml`.
    pub trust: TrustPolicy,
    /// `policy/limits.toml`.
    pub limits: LimitsPolicy,
    /// `policy/automation.toml`.
    pub automation: AutomationPolicy,
}

impl Policies {
    /// Loads the three files of `dir`; each missing one gives its defaults.
    pub fn load(dir: &ConfigDir) -> Result<Self> {
        Ok(Self {
            trust: TrustPolicy::load(dir)?,
            limits: LimitsPolicy::load(dir)?,
            automation: AutomationPolicy::load(dir)?,
        })
    }

    /// Writes all three files of `dir`.
    pub fn save(&self, dir: &ConfigDir) -> Result<()> {
        self.trust.save(dir)?;
        self.limits.save(dir)?;
        self.automation.save(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_permissive_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path());
        let p = Policies::load(&dir).unwrap();
        assert_eq!(p, Policies::default());
        assert_eq!(p.trust.min_reputation, 0.0);
        assert_eq!(p.limits.max_cpu, None);
        assert_eq!(p.automation.decision("deploy"), Decision::RequireApproval);
    }

    #[test]
    fn all_three_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("c"));
        let mut p = Policies::default();
        p.trust.min_reputation = 0.5;
        p.limits.set("max_memory", "8Gi").unwrap();
        p.automation.set("status", Decision::Autonomous);
        p.save(&dir).unwrap();
        assert_eq!(Policies::load(&dir).unwrap(), p);
    }
}
