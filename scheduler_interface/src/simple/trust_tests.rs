//! The owner's trust rules as hard filters of a scheduler that does not
//! weigh reputation (issue 18: every scheduler enforces them).

use std::collections::BTreeMap;

use chrono::Utc;
use orchestrator_shared_types::{NodeId, PublicKey};

use super::*;

fn node(operator: u8, zone: &str) -> Node {
    Node {
        id: NodeId([operator; 32]),
        address: "127.0.0.1:1".into(),
        status: NodeStatus::Ready,
        unschedulable: false,
        labels: BTreeMap::from([("jurisdiction".to_owned(), zone.to_owned())]),
        taints: vec![],
        resources_capacity: Resources::new(1000, 1000),
        resources_allocatable: Resources::new(1000, 1000),
        operator: PublicKey([operator; 32]),
        joined_at: Utc::now(),
    }
}

fn verdict(rules: &TrustRules, n: &Node) -> Result<u32, Exclusion> {
    let p = Placement::default();
    Filter::new(&p, Resources::new(100, 100), &[], NetworkMode::Bridge)
        .with_trust(rules)
        .check_node(n)
}

#[test]
fn denied_allowed_and_required_labels_exclude_nodes() {
    let (a, b, c) = (node(1, "eu"), node(2, "eu"), node(3, "us"));
    let denied = TrustRules {
        denied_operators: vec![PublicKey([1; 32])],
        ..TrustRules::default()
    };
    assert_eq!(verdict(&denied, &a), Err(Exclusion::Trust));
    assert!(verdict(&denied, &b).is_ok());
    let allowed = TrustRules {
        allowed_operators: vec![PublicKey([2; 32])],
        trusted_operators: vec![PublicKey([3; 32])],
        ..TrustRules::default()
    };
    assert_eq!(verdict(&allowed, &a), Err(Exclusion::Trust));
    assert!(verdict(&allowed, &b).is_ok());
    assert!(
        verdict(&allowed, &c).is_ok(),
        "a trusted operator is allowed"
    );
    let residency = TrustRules {
        required_labels: BTreeMap::from([("jurisdiction".to_owned(), "eu".to_owned())]),
        ..TrustRules::default()
    };
    assert!(verdict(&residency, &a).is_ok());
    assert_eq!(verdict(&residency, &c), Err(Exclusion::Trust));
    assert!(
        verdict(&TrustRules::default(), &c).is_ok(),
        "no rules, no filter"
    );
}

#[test]
fn a_rule_that_needs_reputation_is_refused_unless_the_operator_is_trusted() {
    let (a, b) = (node(1, "eu"), node(2, "eu"));
    for rules in [
        TrustRules {
            min_reputation: 0.5,
            trusted_operators: vec![PublicKey([2; 32])],
            ..TrustRules::default()
        },
        TrustRules {
            required_attestations: 1,
            trusted_operators: vec![PublicKey([2; 32])],
            ..TrustRules::default()
        },
    ] {
        assert_eq!(verdict(&rules, &a), Err(Exclusion::TrustUnweighed));
        assert!(verdict(&rules, &b).is_ok(), "the trusted operator passes");
    }
    let mut e = Exclusions::default();
    e.add(Exclusion::TrustUnweighed);
    e.add(Exclusion::Trust);
    let reason = e.reason(2);
    assert!(
        reason.contains("1 excluded by the owner's trust rules")
            && reason.contains("--scheduler mycelial"),
        "{reason}"
    );
}
