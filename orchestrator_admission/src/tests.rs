//! Attacks on admission: every bad token is refused and records nothing.

use super::*;
use cluster_manager::{test_node, MockClusterManager};
use orchestrator_shared_types::admission::{new_secret, secret_hash};
use state_store_interface::InMemoryStore;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn id(k: &SigningKey) -> NodeId {
    NodeId(k.verifying_key().to_bytes())
}

async fn service() -> (Admission, Arc<dyn StateStore>) {
    let store: Arc<dyn StateStore> = Arc::new(InMemoryStore::new());
    store.initialize().await.unwrap();
    let cp = key(1);
    let mut local = test_node(1, 1000, 1 << 30);
    local.id = id(&cp);
    let cluster: Arc<dyn ClusterManager> = Arc::new(MockClusterManager::new(local));
    let config = AdmissionConfig {
        cluster_id: "c-1".into(),
        control_planes: vec![ControlPlaneRef {
            node_id: id(&cp),
            gossip_addr: "127.0.0.1:7946".into(),
            api_addr: "127.0.0.1:9090".into(),
        }],
        gossip_key: Arc::new(|| "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=".to_owned()),
        // Room for the control plane and three more nodes.
        network: Some(ClusterNetwork {
            cidr: "10.88.0.0/22".parse().unwrap(),
            own: "10.88.0.0/24".parse().unwrap(),
        }),
    };
    let a = Admission::new(Arc::clone(&store), cp, cluster, config);
    a.start().await.unwrap();
    (a, store)
}

async fn issue(a: &Admission, ttl: Duration) -> JoinToken {
    let issued = a
        .issue(JoinRole::Worker, ttl, PublicKey([9; 32]))
        .await
        .unwrap();
    JoinToken::parse(&issued.token).unwrap()
}

fn request(node: &SigningKey, token: &JoinToken) -> JoinRequest {
    JoinRequest::new(node, token, PublicKey(id(node).0), None)
}

async fn member_ids(a: &Admission) -> Vec<NodeId> {
    a.members()
        .await
        .unwrap()
        .iter()
        .map(|m| m.node_id)
        .collect()
}

#[tokio::test]
async fn a_token_admits_one_node_once() {
    let (a, store) = service().await;
    let token = issue(&a, DEFAULT_TOKEN_TTL).await;
    assert_eq!(token.cluster_id, "c-1");
    // Only the hash of the secret is kept.
    let stored = store.list_records(records::TOKEN_KIND).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, token.secret_hash());
    assert!(!stored[0].1.contains(&token.secret));

    let m = a.admit(&request(&key(2), &token)).await.unwrap();
    assert_eq!((m.node_id, m.token_id.clone()), (id(&key(2)), token.id()));
    // Replayed, and by a second node.
    for node in [key(2), key(3)] {
        let err = a.admit(&request(&node, &token)).await.unwrap_err();
        assert!(matches!(err, Error::Refused(AdmissionError::Used)), "{err}");
    }
    assert_eq!(
        member_ids(&a).await.len(),
        2,
        "the control plane and one node"
    );
    assert!(member_ids(&a).await.contains(&id(&key(2))));
    assert!(!member_ids(&a).await.contains(&id(&key(3))));
}

#[tokio::test]
async fn concurrent_uses_of_one_token_admit_one_node() {
    let (a, _) = service().await;
    let a = Arc::new(a);
    let token = issue(&a, DEFAULT_TOKEN_TTL).await;
    let mut tasks = Vec::new();
    for seed in 10..20 {
        let (a, token) = (Arc::clone(&a), token.clone());
        tasks.push(tokio::spawn(async move {
            a.admit(&request(&key(seed), &token)).await.is_ok()
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 1);
    assert_eq!(member_ids(&a).await.len(), 2);
}

#[tokio::test]
async fn bad_tokens_are_refused_and_record_nothing() {
    let (a, _) = service().await;
    let before = member_ids(&a).await;
    let node = key(4);

    // Expired (issued for 1 s, presented after).
    let short = issue(&a, Duration::from_secs(1)).await;
    let mut expired_req = request(&node, &short);
    // Presented as if later: rewrite the stored expiry into the past.
    let hash = short.secret_hash();
    let mut rec = records::get_token(a.store.as_ref(), &hash)
        .await
        .unwrap()
        .unwrap();
    rec.expires_at = Utc::now() - chrono::Duration::seconds(1);
    records::put_token(a.store.as_ref(), &hash, &rec)
        .await
        .unwrap();
    let err = a.admit(&expired_req).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(AdmissionError::Expired(_))),
        "{err}"
    );

    // Unknown: never issued, and a secret changed.
    let good = issue(&a, DEFAULT_TOKEN_TTL).await;
    let mut forged = good.clone();
    forged.secret = new_secret();
    let err = a.admit(&request(&node, &forged)).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(AdmissionError::Unknown)),
        "{err}"
    );

    // Cluster id changed.
    let mut other = good.clone();
    other.cluster_id = "c-2".into();
    let err = a.admit(&request(&node, &other)).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(AdmissionError::WrongCluster { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("c-2"), "{err}");

    // The request re-pointed at another node id, or signed by another key.
    expired_req = request(&node, &good);
    expired_req.node_id = id(&key(5));
    let err = a.admit(&expired_req).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(AdmissionError::BadSignature(_))),
        "{err}"
    );

    // Another role than the token's.
    let mut cp = good.clone();
    cp.role = JoinRole::ControlPlane;
    let err = a.admit(&request(&node, &cp)).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(AdmissionError::WrongRole { .. })),
        "{err}"
    );

    assert_eq!(member_ids(&a).await, before, "nothing was recorded");
    // The good token was not spent by the refusals.
    let stored = records::get_token(a.store.as_ref(), &secret_hash(&good.secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.used_by, None);
    a.admit(&request(&node, &good)).await.unwrap();
}

#[tokio::test]
async fn removing_a_member_bumps_the_signed_list() {
    let (a, _) = service().await;
    let token = issue(&a, DEFAULT_TOKEN_TTL).await;
    a.admit(&request(&key(2), &token)).await.unwrap();
    let pinned = [id(&key(1))];
    let list = MemberList::verify(&a.signed_list().await.unwrap(), "c-1", &pinned).unwrap();
    assert!(list.contains(&id(&key(2))) && list.contains(&id(&key(1))));
    let first = a.remove(&id(&key(2))).await.unwrap();
    assert!(first.removed);
    assert!(matches!(first.rotation, Some(Rotation::NotConfigured)));
    assert!(
        !a.remove(&id(&key(2))).await.unwrap().removed,
        "already gone"
    );
    assert!(!a.remove(&id(&key(1))).await.unwrap().removed, "not itself");
    let after = MemberList::verify(&a.signed_list().await.unwrap(), "c-1", &pinned).unwrap();
    assert!(after.version > list.version);
    assert!(!after.contains(&id(&key(2))));
    // Its used token cannot bring it back.
    let err = a.admit(&request(&key(2), &token)).await.unwrap_err();
    assert!(matches!(err, Error::Refused(AdmissionError::Used)), "{err}");
}

#[tokio::test]
async fn lifetimes_are_bounded() {
    let (a, _) = service().await;
    for ttl in [Duration::ZERO, MAX_TOKEN_TTL + Duration::from_secs(1)] {
        assert!(matches!(
            a.issue(JoinRole::Worker, ttl, PublicKey([9; 32])).await,
            Err(Error::Ttl(_))
        ));
    }
}

/// Records the members it was asked to rotate to; leaves `behind` out.
struct FakeRotation {
    asked: std::sync::Mutex<Vec<Vec<NodeId>>>,
    behind: Option<NodeId>,
}

#[async_trait::async_trait]
impl GossipKeyRotation for FakeRotation {
    async fn rotate(&self, members: &[NodeId]) -> Result<RotationReport, RotationError> {
        self.asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(members.to_vec());
        let (left, rotated): (Vec<NodeId>, Vec<NodeId>) =
            members.iter().partition(|m| Some(**m) == self.behind);
        Ok(RotationReport {
            key_id: "0badcafe".into(),
            rotated,
            left_behind: left
                .into_iter()
                .map(|node_id| LeftBehind {
                    node_id,
                    reason: "unreachable".into(),
                })
                .collect(),
        })
    }
}

#[tokio::test]
async fn a_removal_rotates_the_key_to_the_remaining_members_only() {
    let (a, _) = service().await;
    let fake = Arc::new(FakeRotation {
        asked: std::sync::Mutex::new(Vec::new()),
        behind: Some(id(&key(3))),
    });
    let a = a.with_rotation(Arc::clone(&fake) as Arc<dyn GossipKeyRotation>);
    for n in [2, 3, 4] {
        let token = issue(&a, DEFAULT_TOKEN_TTL).await;
        a.admit(&request(&key(n), &token)).await.unwrap();
    }
    let removal = a.remove(&id(&key(2))).await.unwrap();
    assert!(removal.removed);
    let Some(Rotation::Rotated(report)) = removal.rotation else {
        panic!("rotated: {:?}", removal.rotation);
    };
    assert!(!report.is_complete(), "node 3 was left behind");
    assert_eq!(report.left_behind[0].node_id, id(&key(3)));
    let asked = fake.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "one rotation per removal");
    let mut expected = vec![id(&key(1)), id(&key(3)), id(&key(4))];
    expected.sort();
    let mut got = asked[0].clone();
    got.sort();
    assert_eq!(
        got, expected,
        "the remaining members, never the removed one"
    );
    // Removing a non-member rotates nothing.
    assert!(!a.remove(&id(&key(2))).await.unwrap().removed);
    assert_eq!(fake.asked.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn members_get_subnets_of_their_own_and_a_full_range_admits_nobody() {
    let (a, _) = service().await;
    let subnet_of = |members: &[Member], node: &SigningKey| {
        members
            .iter()
            .find(|m| m.node_id == id(node))
            .and_then(|m| m.subnet)
            .map(|s| s.to_string())
    };
    for seed in 2..5 {
        let token = issue(&a, DEFAULT_TOKEN_TTL).await;
        a.admit(&request(&key(seed), &token)).await.unwrap();
    }
    let members = a.members().await.unwrap();
    assert_eq!(
        subnet_of(&members, &key(1)).as_deref(),
        Some("10.88.0.0/24")
    );
    for (seed, want) in [
        (2, "10.88.1.0/24"),
        (3, "10.88.2.0/24"),
        (4, "10.88.3.0/24"),
    ] {
        assert_eq!(subnet_of(&members, &key(seed)).as_deref(), Some(want));
    }
    // The signed list carries them: a node cannot claim another's subnet.
    let list = MemberList::verify(&a.signed_list().await.unwrap(), "c-1", &[id(&key(1))]).unwrap();
    let listed: Vec<_> = list.members.iter().filter_map(|m| m.subnet).collect();
    assert_eq!(listed.len(), 4);

    // Full: refused, and the token stays unused.
    let token = issue(&a, DEFAULT_TOKEN_TTL).await;
    let err = a.admit(&request(&key(5), &token)).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(AdmissionError::NetworkFull(_))),
        "{err}"
    );
    assert!(!member_ids(&a).await.contains(&id(&key(5))));
    // A removed member's subnet goes to the next node, with the same token.
    a.remove(&id(&key(3))).await.unwrap();
    a.admit(&request(&key(5), &token)).await.unwrap();
    let members = a.members().await.unwrap();
    assert_eq!(
        subnet_of(&members, &key(5)).as_deref(),
        Some("10.88.2.0/24")
    );
}
