//! Your trust policy on the daemon (`PUT /api/v1/trust/policy`): sent by
//! `ui policy push`, and by `ui deploy` whenever `policy/trust.toml` differs
//! from what the daemon holds, so that the rules you keep locally are the
//! ones enforced on every workload you own — whichever client (REST, MCP,
//! an agent) created it.

use anyhow::Context as _;
use orchestrator_shared_types::TrustRules;
use user_config::paths::ConfigDir;

use crate::client::ApiClient;
use crate::profile::TrustPolicy;

/// The rules of `policy/trust.toml` of `dir`, checked as the daemon will.
pub fn local_rules(dir: &ConfigDir) -> anyhow::Result<TrustRules> {
    let rules = TrustPolicy::load(dir)
        .with_context(|| format!("reading {}", dir.trust_file().display()))?
        .to_rules();
    rules
        .validate()
        .map_err(|problem| anyhow::anyhow!("{}: {problem}", dir.trust_file().display()))?;
    Ok(rules)
}

/// Sends the trust policy of `dir` with `client`; returns the rules kept.
pub fn push(client: &ApiClient, dir: &ConfigDir) -> anyhow::Result<TrustRules> {
    let rules = local_rules(dir)?;
    Ok(client
        .put_trust_policy(&rules)
        .with_context(|| format!("pushing your trust policy to {}", client.server()))?
        .data)
}

/// What [`sync`] did.
#[derive(Debug, PartialEq)]
pub enum Synced {
    /// The daemon already held the same policy.
    Held,
    /// The daemon held another policy, or none: these rules were pushed.
    Pushed(TrustRules),
    /// The daemon is older than trust policies (no such route): it enforces
    /// only the rules each workload carries, so these must travel with it.
    Unsupported(TrustRules),
}

/// Pushes the trust policy of `dir` unless the daemon already holds the same.
pub fn sync(client: &ApiClient, dir: &ConfigDir) -> anyhow::Result<Synced> {
    let rules = local_rules(dir)?;
    let held = match client.get_trust_policy() {
        Ok(held) => held.data,
        Err(orchestrator_api::client::ClientError::Api { status: 404, .. }) => {
            return Ok(Synced::Unsupported(rules))
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("reading your trust policy on {}", client.server())))
        }
    };
    if held == rules {
        return Ok(Synced::Held);
    }
    push(client, dir).map(Synced::Pushed)
}

/// [`sync`], saying on stderr (after `prefix`) what it did unless nothing
/// changed: before an agent may act for you, and before `ui deploy`, so that
/// the daemon holds the policy of `policy/trust.toml`.
pub fn sync_and_say(client: &ApiClient, dir: &ConfigDir, prefix: &str) -> anyhow::Result<Synced> {
    let synced = sync(client, dir)?;
    match &synced {
        Synced::Held => {}
        Synced::Pushed(rules) => eprintln!(
            "{prefix}pushed your {} to {} (policy/trust.toml had changed)",
            summary(rules),
            client.server()
        ),
        Synced::Unsupported(_) => eprintln!(
            "{prefix}warning: {} is too old to hold your trust policy; it enforces only \
             the trust rules a workload carries",
            client.server()
        ),
    }
    Ok(synced)
}

/// One line saying what `rules` ask, e.g. `trust policy: 1 trusted, 2
/// denied operators, min reputation 0.6`.
pub fn summary(rules: &TrustRules) -> String {
    if rules.is_empty() {
        return "trust policy: none (every node acceptable)".to_owned();
    }
    let mut parts = Vec::new();
    let mut count = |n: usize, what: &str| {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    };
    count(rules.trusted_operators.len(), "trusted");
    count(rules.allowed_operators.len(), "allowed");
    count(rules.denied_operators.len(), "denied");
    if !parts.is_empty() {
        let last = parts.len() - 1;
        parts[last].push_str(" operators");
    }
    if rules.min_reputation > 0.0 {
        parts.push(format!("min reputation {}", rules.min_reputation));
    }
    if rules.required_attestations > 0 {
        parts.push(format!("{} attestations", rules.required_attestations));
    }
    for (k, v) in &rules.required_labels {
        parts.push(format!("label {k}={v}"));
    }
    format!("trust policy: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestrator_shared_types::PublicKey;

    #[test]
    fn the_summary_names_each_rule() {
        assert_eq!(
            summary(&TrustRules::default()),
            "trust policy: none (every node acceptable)"
        );
        let mut rules = TrustRules {
            trusted_operators: vec![PublicKey([1; 32])],
            denied_operators: vec![PublicKey([2; 32]), PublicKey([3; 32])],
            min_reputation: 0.6,
            ..TrustRules::default()
        };
        rules.required_labels.insert("region".into(), "eu".into());
        assert_eq!(
            summary(&rules),
            "trust policy: 1 trusted, 2 denied operators, min reputation 0.6, label region=eu"
        );
    }
}
