//! Trust rules on the real daemon (issue 7): three hosts in network
//! namespaces, each run by a different operator (proven with
//! `--operator-proof`), the control plane on the mycelial scheduler. A
//! workload whose owner denies one operator never gets an instance on that
//! operator's node; a workload requiring more reputation than any node has
//! stays Pending with the rule named in its status; nodes get reputation from
//! the control plane's own observations, and an operator's attestation is
//! accepted only from that operator.
//!
//! Needs root (CI runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod multihost_common;

use std::path::PathBuf;
use std::time::Duration;

use multihost_common::operators::{hex_key, manifest, operator, running, start_operated};
use multihost_common::{eventually, Lab};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

fn daemon() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_rules_are_hard_constraints_on_the_real_daemon() {
    let mut lab = Lab::new("ut", 4, 3, &daemon());
    let ids = start_operated(&mut lab, &daemon(), &["--scheduler", "mycelial"]).await;

    // Operator 1 is denied: 12 replicas run, none on host 1.
    let denied = json!({"denied_operators": [hex_key(&operator(1))]});
    let (s, v) = lab
        .call(
            0,
            "POST",
            "/api/v1/workloads",
            // 12 replicas: the mycelial draw is weighted and random, and
            // all of 6 landed on one of the two allowed nodes once in CI
            // (about 2 × 2⁻⁶ with equal weights); with 12, about 2 × 2⁻¹².
            Some(&manifest("careful", 12, denied)),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{v}");
    eventually(DEADLINE, "12 replicas of careful run", || async {
        running(&lab, "careful")
            .await
            .is_some_and(|p| p.values().sum::<usize>() == 12)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 60)));
    let placed = running(&lab, "careful").await.unwrap();
    assert!(
        !placed.contains_key(&ids[1]),
        "denied operator's node used: {placed:?}"
    );
    assert_eq!(placed.len(), 2, "both allowed nodes used: {placed:?}");

    // Reputation above what any node has: Pending, the rule named.
    let picky = json!({"min_reputation": 0.999});
    let (s, v) = lab
        .call(
            0,
            "POST",
            "/api/v1/workloads",
            Some(&manifest("picky", 1, picky)),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{v}");
    let reason = eventually(DEADLINE, "picky reports why it is unscheduled", || async {
        lab.get(0, "/api/v1/workloads/picky")
            .await
            .is_some_and(|w| {
                w["status"]["unscheduled"] == 1
                    && w["status"]["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("trust.min_reputation"))
            })
    })
    .await;
    reason.unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 40)));
    assert_eq!(running(&lab, "picky").await.unwrap().len(), 0);

    // The control plane observes the workers: their reputation is evidence-based
    // and the same for everyone who asks with the same seeds.
    eventually(DEADLINE, "host 1 has heartbeat evidence", || async {
        lab.get(0, &format!("/api/v1/nodes/{}/reputation", ids[1]))
            .await
            .is_some_and(|r| r["uptime"].as_f64().is_some_and(|u| u > 0.5))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log:\n{}", lab.log_tail(0, 40)));
    let r = lab
        .get(0, &format!("/api/v1/nodes/{}/reputation", ids[1]))
        .await
        .unwrap();
    assert_eq!(r["operator"], hex_key(&operator(1)).as_str());
    for c in [
        "uptime",
        "reliability",
        "honesty",
        "age",
        "attestation_trust",
        "composite",
    ] {
        let x = r[c].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&x), "{c} = {x}");
    }

    // An attestation must come from its issuer: the lab's key may not speak for operator 2.
    let now = chrono::Utc::now();
    let att = mycelial::evidence::sign_attestation(
        &operator(2),
        mycelial::evidence::Attestation {
            issuer: orchestrator_shared_types::PublicKey(operator(2).verifying_key().to_bytes()),
            subject: orchestrator_shared_types::PublicKey(operator(1).verifying_key().to_bytes()),
            weight: 1.0,
            issued_at: now,
            expires_at: now + chrono::Duration::days(30),
        },
    )
    .unwrap();
    let (s, v) = lab
        .call(
            0,
            "POST",
            "/api/v1/attestations",
            Some(&serde_json::to_value(&att).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(s, 403, "{v}");
}
