//! Pledges on the orchestrator (issue 7, MYCELIAL.md §3 "Ledger" 4): an
//! instance started on a node of another operator places a hold on its
//! owner's credit; a pledge a full period old is settled — the provider paid,
//! a fee to the commons, balances still summing to zero — and placed again;
//! deleting the workload settles the last one; the node operator's own
//! workloads are free; an owner past their credit limit gets no pledge and
//! their instance still runs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod rest_common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use cluster_manager::mock::{test_node, MockClusterManager};
use cluster_manager_interface::ClusterManager;
use container_runtime::mock::MockRuntime;
use ed25519_dalek::SigningKey;
use mycelial::TrustSource;
use orchestrator_trust::pledge::{PledgeConfig, PricedTrust};
use orchestrator_trust::TrustService;
use rest_common::{api_on, eventually, key, public, send_to, signed, ApiOn};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

async fn deploy(api: &ApiOn, owner: &SigningKey, name: &str) {
    let body = json!({
        "name": name,
        "replicas": 1,
        "containers": [{"name": "main", "image": "example.org/app:1",
                        "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}]
    })
    .to_string();
    let (s, v) = send_to(
        &api.router,
        signed(owner, "POST", "/api/v1/workloads", body.as_bytes()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn running(api: &ApiOn, owner: &SigningKey, name: &str) -> bool {
    let path = format!("/api/v1/workloads/{name}/instances");
    let (_, v): (_, Value) = send_to(&api.router, signed(owner, "GET", &path, b"")).await;
    v["items"]
        .as_array()
        .is_some_and(|i| i.len() == 1 && i[0]["status"] == "Running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_another_operators_node_are_pledged_settled_and_renewed() {
    let operator = key(3);
    let mut node = test_node(1, 4_000, 8 << 30);
    node.operator = public(&operator);
    let api = api_on(
        Default::default(),
        Arc::new(MockRuntime::new()),
        node.clone(),
    )
    .await;
    let pledges = PledgeConfig {
        price: 3_600_000,
        period: Duration::from_millis(1_500),
        fee_ppm: 10_000,
    };
    let trust = Arc::new(
        TrustService::new(Arc::clone(&api.store), key(99), "test-ledger").with_pledges(pledges),
    );
    trust.load().await.unwrap();
    let credits = || trust.credits().unwrap();

    // The owner is attested by another operator: limit L0.
    let (owner, broke) = (key(1), key(4));
    let now = Utc::now();
    let att = mycelial::evidence::sign_attestation(
        &key(2),
        mycelial::evidence::Attestation {
            issuer: public(&key(2)),
            subject: public(&owner),
            weight: 1.0,
            issued_at: now,
            expires_at: now + chrono::Duration::days(90),
        },
    )
    .unwrap();
    trust
        .append(mycelial::evidence::Entry::Attestation(att))
        .await
        .unwrap();
    credits().refresh_limits(trust.engine()).await;
    assert!(credits().summary(&public(&owner)).await.limit > 0);

    let cancel = CancellationToken::new();
    let cluster: Arc<dyn ClusterManager> = Arc::new(MockClusterManager::new(node.clone()));
    let task = tokio::spawn(Arc::clone(&trust).run(
        cluster,
        Arc::clone(&api.store),
        api.orch.subscribe(),
        Duration::from_secs(3600),
        cancel.clone(),
    ));

    // Half a core at 3,600 units per core-hour for 1.5 s: 750 milli-units.
    let amount = pledges.amount(500);
    assert_eq!(amount, 750);
    deploy(&api, &owner, "paid").await;
    eventually("the pledge is placed", || async {
        credits().summary(&public(&owner)).await.held == amount
    })
    .await;

    // A full period later it is settled in full and placed again.
    eventually("the provider is paid for a full period", || async {
        credits().summary(&public(&operator)).await.balance > 0
    })
    .await;
    let (commons, total) = credits().commons_and_total().await;
    let paid_owner = credits().summary(&public(&owner)).await;
    let paid_operator = credits().summary(&public(&operator)).await;
    assert_eq!(total, 0, "balances sum to zero");
    assert_eq!(
        paid_operator.balance,
        amount - amount / 100,
        "paid less the 1 % fee"
    );
    assert_eq!(commons, amount / 100);
    assert_eq!(paid_owner.balance, -amount);
    eventually("the pledge is renewed", || async {
        credits().summary(&public(&owner)).await.held == amount
    })
    .await;

    // Deleting the workload settles the last pledge for the time it ran.
    let (s, v) = send_to(
        &api.router,
        signed(&owner, "DELETE", "/api/v1/workloads/paid", b""),
    )
    .await;
    assert!(s.is_success(), "{v}");
    eventually("no pledge is left open", || async {
        credits().open_holds().await.is_empty()
    })
    .await;
    assert_eq!(credits().summary(&public(&owner)).await.held, 0);
    assert_eq!(credits().commons_and_total().await.1, 0);

    // The node's own operator runs for free.
    deploy(&api, &operator, "own").await;
    eventually("own workload runs", || running(&api, &operator, "own")).await;
    // An owner with no credit gets no pledge, and the instance runs.
    deploy(&api, &broke, "unpledged").await;
    eventually("unpledged workload runs", || {
        running(&api, &broke, "unpledged")
    })
    .await;
    let broke_summary = credits().summary(&public(&broke)).await;
    assert_eq!((broke_summary.held, broke_summary.balance), (0, 0));
    assert_eq!(credits().summary(&public(&operator)).await.held, 0);
    assert!(
        credits().open_holds().await.is_empty(),
        "{:?}",
        credits().open_holds().await
    );

    // What the mycelial scheduler is told: the attested owner can pledge
    // here, the broke one cannot (so it would place them only on nodes of
    // their own operator).
    let priced = PricedTrust::new(Arc::clone(&trust));
    let cost = priced.pledge_cost(&node, 500);
    assert!(cost > 0, "instances are priced");
    let can_pledge = |who: &SigningKey| {
        priced
            .pledge_headroom(&public(who))
            .is_some_and(|headroom| headroom >= cost)
    };
    assert!(can_pledge(&owner));
    assert!(!can_pledge(&broke));

    cancel.cancel();
    task.await.unwrap();
    api.cancel.cancel();
}
