//! The control-plane term on the agent's routes (`node_agent::term`): a
//! newer leader's term shuts out the older one with 409 `stale_term`; only
//! a call that passed the signature and the admission moves the gate (a
//! term changed in flight, an unsigned call, another member's or one sent
//! in clear do not); a leader's `AgentClient` carries its term inside the
//! signature and a stale one gets a clear error; the term survives a
//! restart.

use super::*;

use node_agent::wire::STALE_TERM;

fn id(key: &SigningKey) -> NodeId {
    NodeId(key.verifying_key().to_bytes())
}

/// A request signed by `key` over `signed_target`, sent to `sent_target`.
fn signed_for(key: &SigningKey, signed_target: &str, sent_target: &str) -> Request<Body> {
    let h = sign_request(
        key,
        &Payload::new("GET", signed_target, b"", AUDIENCE),
        Utc::now(),
    );
    Request::builder()
        .method("GET")
        .uri(sent_target)
        .header(HEADER_PUBLIC_KEY, h.public_key)
        .header(HEADER_TIMESTAMP, h.timestamp)
        .header(HEADER_SIGNATURE, h.signature)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn only_an_admitted_call_moves_the_term_and_an_older_term_is_then_refused() {
    let (old_cp, new_cp, w_key, other_worker) = (key(1), key(3), key(2), key(4));
    let gate = Arc::new(TermGate::in_memory());
    let (runtime, cluster, _addr, router) =
        worker_with(&w_key, &old_cp, Some(Arc::clone(&gate))).await;
    cluster
        .add_node(member(&new_cp, ROLE_CONTROL_PLANE, "127.0.0.1:1".into()))
        .unwrap();
    cluster
        .add_node(member(&other_worker, ROLE_WORKER, "127.0.0.1:2".into()))
        .unwrap();
    let list = "/agent/v1/containers";
    let at = |term: u64| format!("{list}?term={term}");

    // No term sent, none seen: a cluster with one control plane.
    let (status, body) = send_to(&router, via(&old_cp, signed(&old_cp, "GET", list, b""))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(gate.current(), None);

    // A huge term, from whoever is not the live control plane over its
    // own connection: refused by the signed layer, and the gate unmoved.
    let huge = at(u64::MAX);
    let unsigned = Request::builder().uri(&huge).body(Body::empty()).unwrap();
    let (status, _) = send_to(&router, via(&old_cp, unsigned)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "unsigned");
    let (status, _) = send_to(
        &router,
        via(&other_worker, signed(&other_worker, "GET", &huge, b"")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another worker");
    let (status, _) = send_to(&router, signed(&old_cp, "GET", &huge, b"")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "in clear");
    assert_eq!(gate.current(), None, "no refused call moved the gate");

    // Signed with term 5, sent with term 9: the signature does not verify.
    let (status, body) = send_to(&router, via(&old_cp, signed_for(&old_cp, &at(5), &at(9)))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        gate.current(),
        None,
        "a term changed in flight moved nothing"
    );

    // The old leader's term 7, then the new leader's 9.
    let (status, body) = send_to(&router, via(&old_cp, signed(&old_cp, "GET", &at(7), b""))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(gate.current(), Some((7, id(&old_cp))));
    let (status, body) = send_to(&router, via(&new_cp, signed(&new_cp, "GET", &at(9), b""))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(gate.current(), Some((9, id(&new_cp))));

    // The old leader wakes up: refused, whatever it asks.
    let create = serde_json::to_vec(&serde_json::json!({
        "instance_id": uuid_v4(), "workload_id": uuid_v4(),
        "config": {"name": "main", "image": "web:1"}
    }))
    .unwrap();
    let (status, body) = send_to(
        &router,
        via(&old_cp, signed(&old_cp, "POST", &at(7), &create)),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], STALE_TERM);
    assert_eq!(
        body["error"]["message"],
        format!(
            "control-plane term 7 is over: term 9 (node {}…) is in force",
            id(&new_cp).short()
        )
    );
    assert_eq!(runtime.container_count(), 0, "nothing was created");
    // Without a term, once one was seen: refused too.
    let (status, body) = send_to(&router, via(&old_cp, signed(&old_cp, "GET", list, b""))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], STALE_TERM);
    // A term that is not a number: a bad request, the gate unmoved.
    let (status, body) = send_to(
        &router,
        via(
            &new_cp,
            signed(&new_cp, "GET", &format!("{list}?term=x"), b""),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // The leader in force goes on, at its term.
    let (status, body) = send_to(
        &router,
        via(&new_cp, signed(&new_cp, "POST", &at(9), &create)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(gate.current(), Some((9, id(&new_cp))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaders_client_carries_its_term_and_a_stale_leader_gets_a_clear_error() {
    let (old_cp, new_cp, w_key) = (key(1), key(3), key(2));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-term.json");
    let gate = Arc::new(TermGate::open(&path).unwrap());
    let (_runtime, cluster, addr, _router) =
        worker_with(&w_key, &old_cp, Some(Arc::clone(&gate))).await;
    cluster
        .add_node(member(&new_cp, ROLE_CONTROL_PLANE, "127.0.0.1:1".into()))
        .unwrap();
    let node = member(&w_key, ROLE_WORKER, addr);
    let old = AgentClient::new(old_cp, AUDIENCE).unwrap().with_term(7);
    let new = AgentClient::new(new_cp.clone(), AUDIENCE)
        .unwrap()
        .with_term(9);
    assert_eq!((old.term(), new.term()), (Some(7), Some(9)));

    old.list(&node).await.unwrap();
    assert_eq!(gate.current(), Some((7, old.node_id())));
    new.list(&node).await.unwrap();
    assert_eq!(gate.current(), Some((9, new.node_id())));

    let stale = |err: RuntimeError| {
        assert!(
            matches!(err, RuntimeError::Operation { .. }),
            "a clear error, not an unreachable node: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("stale control-plane term")
                && text.contains("control-plane term 7 is over: term 9"),
            "{text}"
        );
    };
    stale(old.list(&node).await.unwrap_err());
    // After another query parameter (`?tail=5&term=7`): read all the same.
    let missing = ContainerId("missing".into());
    stale(old.logs(&node, &missing, Some(5)).await.unwrap_err());
    let err = new.logs(&node, &missing, Some(5)).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::NotFound(_)),
        "term 9 passed: {err:?}"
    );
    // A client without a term, even the leader's key: refused.
    let plain = AgentClient::new(new_cp, AUDIENCE).unwrap();
    let err = plain.list(&node).await.unwrap_err();
    assert!(
        err.to_string().contains("without a control-plane term"),
        "{err}"
    );

    // A restart keeps the term this node obeyed.
    assert_eq!(
        TermGate::open(&path).unwrap().current(),
        Some((9, new.node_id()))
    );
}
