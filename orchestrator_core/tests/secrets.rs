//! Sealed secrets through the library API: kept per owner, listed to their
//! owner only, and not deleted while a workload of the owner names one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{memory_harness, spec, OWNER};
use orchestrator_core::Error;
use orchestrator_shared_types::{PublicKey, SecretEnvRef, WorkloadDefinition};

const SEALED: &str = "-----BEGIN AGE ENCRYPTED FILE-----\nx\n-----END AGE ENCRYPTED FILE-----\n";

#[tokio::test]
async fn a_secret_is_its_owners_and_stays_while_a_workload_names_it() {
    let h = memory_harness(1).await;
    let stranger = PublicKey([7; 32]);
    let node = PublicKey([1; 32]);
    h.orch
        .put_secret(OWNER, "db", vec![node, OWNER], SEALED.to_owned())
        .await
        .unwrap();
    assert_eq!(h.orch.list_secrets(&OWNER).await.unwrap().len(), 1);
    assert!(h.orch.list_secrets(&stranger).await.unwrap().is_empty());
    assert!(matches!(
        h.orch.secret(&stranger, "db").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        h.orch.delete_secret(&stranger, "db").await,
        Err(Error::NotFound { .. })
    ));
    // Bad names and repeated recipients are refused, and nothing is stored.
    for (name, recipients) in [
        ("Bad_Name", vec![node]),
        ("ok", vec![node, node]),
        ("ok", vec![]),
    ] {
        assert!(matches!(
            h.orch
                .put_secret(OWNER, name, recipients, SEALED.to_owned())
                .await,
            Err(Error::InvalidArgument { .. })
        ));
    }
    assert_eq!(h.orch.list_secrets(&OWNER).await.unwrap().len(), 1);

    // A workload that names it (written as an older daemon could have).
    let mut named = spec("web", 0);
    named.containers[0].secret_env = vec![SecretEnvRef {
        name: "DB_PASSWORD".into(),
        secret: "db".into(),
    }];
    let w = WorkloadDefinition::new(OWNER, named);
    h.store.put_workload(&w).await.unwrap();
    let refused = h.orch.delete_secret(&OWNER, "db").await.unwrap_err();
    assert!(matches!(refused, Error::Conflict { .. }), "{refused}");
    assert!(refused.to_string().contains("web"), "{refused}");
    assert_eq!(h.orch.list_secrets(&OWNER).await.unwrap().len(), 1);
    h.store.delete_workload(&w.id).await.unwrap();
    let gone = h.orch.delete_secret(&OWNER, "db").await.unwrap();
    assert_eq!(gone.name, "db");
    assert!(h.orch.list_secrets(&OWNER).await.unwrap().is_empty());
    h.stop().await;
}
