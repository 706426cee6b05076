use super::*;
use chrono::Duration;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn id(k: &SigningKey) -> NodeId {
    NodeId(k.verifying_key().to_bytes())
}

fn token() -> JoinToken {
    JoinToken {
        cluster_id: "c-1".into(),
        control_planes: vec![ControlPlaneRef {
            node_id: id(&key(1)),
            gossip_addr: "10.0.0.1:7946".into(),
            api_addr: "10.0.0.1:9090".into(),
        }],
        gossip_key: B64.encode([7u8; 32]),
        role: JoinRole::Worker,
        expires_at: Utc::now() + Duration::hours(1),
        secret: new_secret(),
    }
}

#[test]
fn a_token_round_trips_and_is_url_safe() {
    let t = token();
    let text = t.encode();
    assert!(text.starts_with(TOKEN_PREFIX));
    assert!(text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    assert_eq!(JoinToken::parse(&text).unwrap(), t);
    let debug = format!("{t:?}");
    assert!(!debug.contains(&t.secret) && !debug.contains(&t.gossip_key));
    assert_eq!(t.id().len(), 16);
    assert_ne!(token().secret, t.secret, "secrets are random");
}

#[test]
fn malformed_tokens_say_what_is_wrong() {
    let t = token();
    let text = t.encode();
    let cases = [
        ("hello".to_owned(), "does not start"),
        (format!("{TOKEN_PREFIX}!!!"), "not base64url"),
        (
            format!("{TOKEN_PREFIX}{}", B64URL.encode("{}")),
            "not a token",
        ),
        ("x".repeat(MAX_TOKEN_CHARS + 1), "longer"),
        (text[..text.len() - 4].to_owned(), "malformed"),
    ];
    for (text, want) in cases {
        let err = JoinToken::parse(&text).unwrap_err();
        assert!(matches!(err, AdmissionError::Malformed(_)), "{err}");
        assert!(err.to_string().contains(want), "{err} lacks {want}");
    }
    let mut short = token();
    short.secret = B64URL.encode([1u8; 16]);
    assert!(JoinToken::parse(&short.encode())
        .unwrap_err()
        .to_string()
        .contains("32 bytes"));
}

#[test]
fn an_expired_token_is_refused() {
    let mut t = token();
    t.check_expiry(Utc::now()).unwrap();
    t.expires_at = Utc::now() - Duration::seconds(1);
    assert!(matches!(
        t.check_expiry(Utc::now()),
        Err(AdmissionError::Expired(_))
    ));
}

#[test]
fn a_join_request_verifies_only_unchanged() {
    let t = token();
    let k = key(9);
    let req = JoinRequest::new(&k, &t, PublicKey(id(&k).0), None);
    req.verify().unwrap();
    let mut other = req.clone();
    other.node_id = id(&key(8));
    assert_eq!(
        other.verify(),
        Err(AdmissionError::BadSignature(id(&key(8))))
    );
    let mut other = req.clone();
    other.role = JoinRole::ControlPlane;
    assert!(other.verify().is_err(), "role is signed");
    let mut other = req.clone();
    other.cluster_id = "c-2".into();
    assert!(other.verify().is_err(), "cluster is signed");
    let mut other = req;
    other.signature = "AAAA".into();
    assert!(other.verify().is_err());
}

fn list(version: u64) -> MemberList {
    MemberList {
        cluster_id: "c-1".into(),
        version,
        issued_at: Utc::now(),
        members: vec![ListedMember {
            node_id: id(&key(2)),
            role: JoinRole::Worker,
            subnet: None,
        }],
    }
}

#[test]
fn a_member_list_verifies_only_under_a_pinned_key() {
    let cp = key(1);
    let signed = list(3).sign(&cp);
    let got = MemberList::verify(&signed, "c-1", &[id(&cp)]).unwrap();
    assert_eq!(got, list(3).clone_with_time(got.issued_at));
    assert!(got.contains(&id(&key(2))));
    assert_eq!(
        MemberList::verify(&signed, "c-1", &[id(&key(5))]),
        Err(ListError::NotPinned)
    );
    assert!(matches!(
        MemberList::verify(&signed, "c-2", &[id(&cp)]),
        Err(ListError::WrongCluster(_))
    ));
    // A stranger's list naming itself as issuer, and a pinned issuer's name
    // on a stranger's signature.
    let forged = list(9).sign(&key(5));
    assert_eq!(
        MemberList::verify(&forged, "c-1", &[id(&cp)]),
        Err(ListError::NotPinned)
    );
    let (_, rest) = forged.split_once('.').unwrap();
    let relabelled = format!("{}.{rest}", id(&cp).to_hex());
    assert_eq!(
        MemberList::verify(&relabelled, "c-1", &[id(&cp)]),
        Err(ListError::NotPinned)
    );
    // A changed body.
    let tampered = signed.replace("\"version\":3", "\"version\":4");
    assert_ne!(tampered, signed);
    assert_eq!(
        MemberList::verify(&tampered, "c-1", &[id(&cp)]),
        Err(ListError::NotPinned)
    );
    assert!(matches!(
        MemberList::verify("garbage", "c-1", &[id(&cp)]),
        Err(ListError::Malformed(_))
    ));
}

impl MemberList {
    fn clone_with_time(mut self, t: DateTime<Utc>) -> Self {
        self.issued_at = t;
        self
    }
}
