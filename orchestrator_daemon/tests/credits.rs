//! Credit and attestations through the REST API (issue 7): an unattested
//! operator cannot go below zero (409 `credit_limit_exceeded`, nothing
//! changes); an attestation from another operator raises the limit to L0;
//! transfers are signed by the payer's request signature, nonces strictly
//! increase, balances sum to zero, and a restarted control plane replays the
//! same ledger. Attestations are accepted only from their issuer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod rest_common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use container_runtime::mock::MockRuntime;
use orchestrator_rest::{self as rest, AuthConfig};
use orchestrator_trust::TrustService;
use rest_common::{api_on, key, public, send_to, signed};
use serde_json::{json, Value};

fn attestation(issuer: u8, subject: u8) -> Value {
    let now = Utc::now();
    let signed = mycelial::evidence::sign_attestation(
        &key(issuer),
        mycelial::evidence::Attestation {
            issuer: public(&key(issuer)),
            subject: public(&key(subject)),
            weight: 1.0,
            issued_at: now,
            expires_at: now + Duration::days(90),
        },
    )
    .unwrap();
    serde_json::to_value(signed).unwrap()
}

#[tokio::test]
async fn credit_limits_transfers_and_replay() {
    let auth = AuthConfig::default();
    let node = cluster_manager::mock::test_node(1, 4000, 8 << 30);
    let api = api_on(auth.clone(), Arc::new(MockRuntime::new()), node.clone()).await;
    let authority = key(99);
    let trust = Arc::new(TrustService::new(
        Arc::clone(&api.store),
        authority.clone(),
        "test-ledger",
    ));
    trust.load().await.unwrap();
    let router =
        rest::router(rest_common::app_state(&api.orch, auth).with_trust(Arc::clone(&trust)));
    let (a, b, c) = (key(1), key(2), key(3));
    let pay = |nonce: u64, amount: i64| {
        json!({"to": public(&b).to_string(), "amount": amount, "nonce": nonce}).to_string()
    };

    // Unattested: limit 0, so any payment is refused and nothing changes.
    let (s, v) = send_to(
        &router,
        signed(
            &a,
            "POST",
            "/api/v1/credits/transfer",
            pay(1, 1000).as_bytes(),
        ),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "credit_limit_exceeded", "{v}");
    let (_, bal) = send_to(&router, signed(&a, "GET", "/api/v1/credits/balance", b"")).await;
    assert_eq!(
        (bal["balance"].as_i64(), bal["limit"].as_i64()),
        (Some(0), Some(0)),
        "{bal}"
    );

    // Someone cannot attest in another operator's name.
    let (s, _) = send_to(
        &router,
        signed(
            &a,
            "POST",
            "/api/v1/attestations",
            attestation(3, 1).to_string().as_bytes(),
        ),
    )
    .await;
    assert_eq!(s, 403);
    // A self-attestation is refused.
    let (s, v) = send_to(
        &router,
        signed(
            &a,
            "POST",
            "/api/v1/attestations",
            attestation(1, 1).to_string().as_bytes(),
        ),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // Operator c vouches for a: a's limit becomes L0.
    let (s, v) = send_to(
        &router,
        signed(
            &c,
            "POST",
            "/api/v1/attestations",
            attestation(3, 1).to_string().as_bytes(),
        ),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    trust
        .credits()
        .unwrap()
        .refresh_limits(trust.engine())
        .await;
    let (_, bal) = send_to(&router, signed(&a, "GET", "/api/v1/credits/balance", b"")).await;
    let limit = bal["limit"].as_i64().unwrap();
    assert!(limit > 0, "{bal}");

    let (s, v) = send_to(
        &router,
        signed(
            &a,
            "POST",
            "/api/v1/credits/transfer",
            pay(1, 1000).as_bytes(),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["balance"], -1000);
    // The same nonce again (a new signature, so not an HTTP replay): refused.
    let (s, v) = send_to(
        &router,
        signed(&a, "POST", "/api/v1/credits/transfer", pay(1, 5).as_bytes()),
    )
    .await;
    assert!(s == 400 || s == 409, "{s} {v}");
    // Past the limit: 409, nothing changes.
    let (s, v) = send_to(
        &router,
        signed(
            &a,
            "POST",
            "/api/v1/credits/transfer",
            pay(2, limit).as_bytes(),
        ),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "credit_limit_exceeded");
    // Zero and self transfers are refused.
    for body in [
        pay(3, 0),
        json!({"to": public(&a).to_string(), "amount": 5, "nonce": 4}).to_string(),
    ] {
        let (s, v) = send_to(
            &router,
            signed(&a, "POST", "/api/v1/credits/transfer", body.as_bytes()),
        )
        .await;
        assert_eq!(s, 400, "{v}");
    }
    let (_, bb) = send_to(&router, signed(&b, "GET", "/api/v1/credits/balance", b"")).await;
    assert_eq!(bb["balance"], 1000, "zero-sum: a −1000, b +1000");
    let (_, h) = send_to(&router, signed(&a, "GET", "/api/v1/credits/history", b"")).await;
    let transfers: Vec<&Value> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "transfer")
        .collect();
    assert_eq!(transfers.len(), 1, "{h}");
    assert_eq!(transfers[0]["balance_delta"], -1000);

    // The reputation of the node is served with its components.
    let (s, r) = send_to(
        &router,
        signed(
            &a,
            "GET",
            &format!("/api/v1/nodes/{}/reputation", node.id),
            b"",
        ),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert!(r["composite"]
        .as_f64()
        .is_some_and(|c| (0.0..=1.0).contains(&c)));
    // Every node's, in one answer: the same figures.
    let (s, all) = send_to(&router, signed(&a, "GET", "/api/v1/reputation", b"")).await;
    assert_eq!(s, 200, "{all}");
    let all = &all["items"];
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    assert_eq!(all[0]["node"], r["node"], "{all}");
    assert_eq!(all[0]["operator"], r["operator"], "{all}");
    let (one, bulk) = (r["composite"].as_f64(), all[0]["composite"].as_f64());
    assert!(
        one.zip(bulk).is_some_and(|(x, y)| (x - y).abs() < 1e-6),
        "the bulk answer is the per-node one: {all} vs {r}"
    );
    // A malformed trusted key is refused, not ignored.
    let (s, e) = send_to(
        &router,
        signed(&a, "GET", "/api/v1/reputation?trusted=nothex", b""),
    )
    .await;
    assert_eq!(s, 400, "{e}");

    // A restarted control plane replays the same ledger.
    let again = TrustService::new(Arc::clone(&api.store), authority, "test-ledger");
    again.load().await.unwrap();
    let replayed = again.credits().unwrap().summary(&public(&a)).await;
    assert_eq!(replayed.balance, -1000);
    assert_eq!(replayed.limit, limit);
}
