//! A workload owner's trust rules against one node: hard filters, checked in
//! a fixed order so the first rule a node breaks is the one reported.

use orchestrator_shared_types::{Node, TrustRules};

use crate::NodeStanding;

/// The rule a node breaks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Broken {
    /// Its operator is on the owner's deny list.
    DeniedOperator,
    /// Its operator is not on the owner's allow list.
    NotAllowedOperator,
    /// It lacks a required label (data residency).
    MissingLabel(String),
    /// Its composite reputation is below the minimum.
    MinReputation,
    /// Its operator has too few qualifying attestations.
    Attestations,
    /// Another operator runs it and the owner's available credit does not
    /// cover the pledge of an instance.
    Credit,
}

impl Broken {
    /// The rule's name in `policy/trust.toml` / `spec.trust`.
    pub fn rule(&self) -> String {
        match self {
            Self::DeniedOperator => "trust.denied_operators".into(),
            Self::NotAllowedOperator => "trust.allowed_operators".into(),
            Self::MissingLabel(k) => format!("trust.required_labels.{k}"),
            Self::MinReputation => "trust.min_reputation".into(),
            Self::Attestations => "trust.required_attestations".into(),
            Self::Credit => "credit".into(),
        }
    }
}

/// Checks `node` (with its `standing` for the owner) against `rules`.
/// Operators the owner trusts pass the reputation and attestation rules.
pub fn check(rules: &TrustRules, node: &Node, standing: &NodeStanding) -> Result<(), Broken> {
    let op = &node.operator;
    if rules.denied_operators.contains(op) {
        return Err(Broken::DeniedOperator);
    }
    let trusted = rules.trusted_operators.contains(op);
    if !rules.allowed_operators.is_empty() && !trusted && !rules.allowed_operators.contains(op) {
        return Err(Broken::NotAllowedOperator);
    }
    for (k, v) in &rules.required_labels {
        if node.labels.get(k) != Some(v) {
            return Err(Broken::MissingLabel(k.clone()));
        }
    }
    if trusted {
        return Ok(());
    }
    if standing.composite.is_nan() || standing.composite < rules.min_reputation {
        return Err(Broken::MinReputation);
    }
    if standing.qualifying_attestations < rules.required_attestations {
        return Err(Broken::Attestations);
    }
    Ok(())
}

/// A `NoPlacement` reason naming the rules that excluded nodes and how many:
/// `trust rules: 3 nodes excluded by trust.min_reputation (0.9), 1 by trust.denied_operators`.
pub fn reason(rules: &TrustRules, excluded: &std::collections::BTreeMap<Broken, usize>) -> String {
    let parts: Vec<String> = excluded
        .iter()
        .map(|(b, n)| {
            let detail = match b {
                Broken::MinReputation => format!(" (needs ≥ {})", rules.min_reputation),
                Broken::Attestations => format!(" (needs {})", rules.required_attestations),
                Broken::Credit => {
                    " (the owner's available credit does not cover the pledge)".into()
                }
                _ => String::new(),
            };
            format!(
                "{n} node{} excluded by {}{detail}",
                if *n == 1 { "" } else { "s" },
                b.rule()
            )
        })
        .collect();
    format!(
        "no node satisfies the owner's trust rules: {}",
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;
    use orchestrator_shared_types::{NodeId, NodeStatus, PublicKey, Resources};

    use super::*;

    fn node(op: u8, labels: &[(&str, &str)]) -> Node {
        Node {
            id: NodeId([op; 32]),
            address: String::new(),
            status: NodeStatus::Ready,
            unschedulable: false,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            taints: vec![],
            resources_capacity: Resources::default(),
            resources_allocatable: Resources::default(),
            operator: PublicKey([op; 32]),
            joined_at: Utc::now(),
        }
    }

    const GOOD: NodeStanding = NodeStanding {
        composite: 0.95,
        qualifying_attestations: 3,
    };

    #[test]
    fn each_rule_excludes_and_is_named() {
        let mut r = TrustRules {
            denied_operators: vec![PublicKey([1; 32])],
            min_reputation: 0.8,
            required_attestations: 3,
            ..TrustRules::default()
        };
        r.required_labels.insert("jurisdiction".into(), "eu".into());
        let eu = [("jurisdiction", "eu")];
        assert_eq!(check(&r, &node(1, &eu), &GOOD), Err(Broken::DeniedOperator));
        assert_eq!(
            check(&r, &node(2, &[("jurisdiction", "us")]), &GOOD),
            Err(Broken::MissingLabel("jurisdiction".into()))
        );
        let low = NodeStanding {
            composite: 0.7,
            ..GOOD
        };
        assert_eq!(check(&r, &node(2, &eu), &low), Err(Broken::MinReputation));
        let few = NodeStanding {
            qualifying_attestations: 2,
            ..GOOD
        };
        assert_eq!(check(&r, &node(2, &eu), &few), Err(Broken::Attestations));
        assert_eq!(check(&r, &node(2, &eu), &GOOD), Ok(()));
        // A trusted operator passes reputation and attestations, not residency.
        r.trusted_operators.push(PublicKey([2; 32]));
        assert_eq!(check(&r, &node(2, &eu), &NodeStanding::UNKNOWN), Ok(()));
        assert!(check(&r, &node(2, &[]), &NodeStanding::UNKNOWN).is_err());
        r.allowed_operators.push(PublicKey([3; 32]));
        assert_eq!(
            check(&r, &node(4, &eu), &GOOD),
            Err(Broken::NotAllowedOperator)
        );
        let mut excluded = BTreeMap::new();
        excluded.insert(Broken::MinReputation, 3);
        excluded.insert(Broken::DeniedOperator, 1);
        let text = reason(&r, &excluded);
        assert!(
            text.contains("3 nodes excluded by trust.min_reputation (needs ≥ 0.8)"),
            "{text}"
        );
        assert!(
            text.contains("1 node excluded by trust.denied_operators"),
            "{text}"
        );
    }
}
