//! Tests of the signed HTTP client.
use super::*;

#[test]
fn requests_are_signed_and_error_bodies_surface() {
    let (url, server) = test_server::serve_once(
        "409 Conflict",
        r#"{"error":{"code":"conflict","message":"name taken"}}"#,
    );
    let key = SigningKey::from_bytes(&[9; 32]);
    let client = ApiClient::new(&url, Some(key))
        .expect("client")
        .with_audience("cluster-a");
    let err = client
        .post_json(
            "/api/v1/workloads/x/scale",
            &serde_json::json!({"replicas": 2}),
        )
        .expect_err("409");
    assert_eq!(err.to_string(), "name taken (conflict, HTTP 409)");
    let (head, body) = server.join().expect("server thread");
    assert!(
        head.starts_with("post /api/v1/workloads/x/scale http/1.1"),
        "{head}"
    );
    assert!(head.contains("x-auth-audience: cluster-a"), "{head}");
    for header in [HEADER_PUBLIC_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
        assert!(
            head.contains(&format!("{header}:")),
            "{header} missing in {head}"
        );
    }
    assert_eq!(body, r#"{"replicas":2}"#);
}

#[test]
fn api_errors_show_message_code_and_status() {
    let err = api_error(
        404,
        r#"{"error":{"code":"not_found","message":"no workload named x"}}"#,
    );
    assert_eq!(err.to_string(), "no workload named x (not_found, HTTP 404)");
}

#[test]
fn non_json_error_bodies_are_shown_raw() {
    assert_eq!(
        api_error(502, "bad gateway\n").to_string(),
        "bad gateway (HTTP 502)"
    );
    assert_eq!(
        api_error(500, "").to_string(),
        "the server gave no reason (HTTP 500)"
    );
}

#[test]
fn server_urls_split_into_base_and_prefix() {
    assert_eq!(
        split_server_url("http://127.0.0.1:9090/").expect("ok"),
        ("http://127.0.0.1:9090".to_owned(), String::new())
    );
    assert_eq!(
        split_server_url("https://h/orch").expect("ok"),
        ("https://h/orch".to_owned(), "/orch".to_owned())
    );
    for bad in ["127.0.0.1:9090", "ftp://h", "http://", "http://h?x=1"] {
        assert!(split_server_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn segments_are_escaped() {
    assert_eq!(segment("hello-1"), "hello-1");
    assert_eq!(segment("a/b c"), "a%2Fb%20c");
}

#[test]
fn the_same_request_is_never_signed_twice_in_one_millisecond() {
    let client = ApiClient::new("http://127.0.0.1:9", None).expect("valid url");
    let a = client.sign_time("GET", "/api/v1/workloads/x", b"");
    let b = client.sign_time("GET", "/api/v1/workloads/x", b"");
    assert!(b.timestamp_millis() > a.timestamp_millis());
}

#[test]
fn signatures_verify_with_the_shared_scheme() {
    use orchestrator_shared_types::auth::{verify_request, ReceivedHeaders};
    let key = SigningKey::from_bytes(&[7; 32]);
    let now = Utc::now();
    let p = Payload::new("POST", "/api/v1/workloads?limit=1", b"name: x", "cluster-a");
    let h = sign(&key, &p, now);
    assert!(h.timestamp.ends_with('Z') && h.timestamp.contains('.'));
    let received = ReceivedHeaders {
        public_key: Some(&h.public_key),
        timestamp: Some(&h.timestamp),
        signature: Some(&h.signature),
        audience: None,
    };
    let ok = verify_request(received, &p, now, 60).expect("verifies");
    assert_eq!(ok.key.0, key.verifying_key().to_bytes());
    let later = sign(&key, &p, now + chrono::Duration::milliseconds(1));
    assert_ne!(later.signature, h.signature);
}

#[test]
fn unreachable_server_is_a_transport_error() {
    // Port 9 on loopback: nothing listens there in a test environment.
    let client = ApiClient::new("http://127.0.0.1:9", None).expect("valid url");
    let err = client.get_json("/health").expect_err("fails");
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("cannot reach the server at http://127.0.0.1:9"));
}

#[test]
fn the_audience_is_learned_from_info_once_and_the_agent_is_signed() {
    let info = r#"{"audience":"c1","cluster_id":"c1","node_id":"ab","version":"0"}"#;
    let (url, server) = test_server::serve_sequence(&[
        ("200 OK", info),
        ("200 OK", r#"{"items":[]}"#),
        ("200 OK", r#"{"items":[]}"#),
    ]);
    let key = SigningKey::from_bytes(&[9; 32]);
    let client = ApiClient::new(&url, Some(key))
        .expect("client")
        .with_agent("bot");
    client.get_json("/api/v1/workloads").expect("first");
    client.get_json("/api/v1/workloads").expect("second");
    assert_eq!(client.audience().expect("kept"), "c1");
    let seen = server.join().expect("server thread");
    assert_eq!(seen.len(), 3, "one /api/v1/info, then two signed calls");
    assert!(
        seen[0].0.starts_with("get /api/v1/info http/1.1"),
        "{}",
        seen[0].0
    );
    assert!(!seen[0].0.contains("x-auth-signature"), "info is unsigned");
    let head = &seen[1].0;
    let value = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} missing in {head}"))
    };
    // The test server lowercases the head: rebuild the timestamp (RFC 3339
    // has only `T` and `Z` as letters) and compare the signature lowercased.
    let ts = value(HEADER_TIMESTAMP).to_ascii_uppercase();
    let at = chrono::DateTime::parse_from_rfc3339(&ts)
        .expect("timestamp")
        .with_timezone(&Utc);
    let key = SigningKey::from_bytes(&[9; 32]);
    let p = Payload::new("GET", "/api/v1/workloads", b"", "c1").by_agent("bot");
    let want = sign(&key, &p, at);
    assert_eq!(want.timestamp, ts);
    assert_eq!(value(HEADER_SIGNATURE), want.signature.to_ascii_lowercase());
    let unbound = sign(&key, &p.by_agent(""), at);
    assert_ne!(
        value(HEADER_SIGNATURE),
        unbound.signature.to_ascii_lowercase()
    );
    assert_eq!(value(HEADER_AUDIENCE), "c1");
}
