//! Tests of `ui network`: rendering, and the requests against a fake server.
use super::*;
use crate::client::test_server::{serve_once, serve_sequence};
use crate::views::fixtures;
use ed25519_dalek::SigningKey;

const NOT_FOUND: &str = r#"{"error":{"code":"not_found","message":"no such route"}}"#;

fn signed_client(url: &str) -> ApiClient {
    ApiClient::new(url, Some(SigningKey::from_bytes(&[9; 32])))
        .expect("client")
        .with_audience("test-audience")
}

fn peer(id: &str, role: &str, status: &str, live: bool, is_self: bool) -> Value {
    let n = id.chars().next().map_or(0, |c| c.to_digit(16).unwrap_or(0));
    json!({
        "node_id": id.repeat(64), "gossip_addr": format!("10.0.0.{n}:7946"),
        "api_addr": format!("10.0.0.{n}:9090"), "generation": 1_764_000_000_000u64,
        "role": role, "status": status, "live": live, "is_self": is_self
    })
}

fn gossiping_status() -> Value {
    json!({
        "node_id": "ab".repeat(32), "role": "control-plane",
        "control_plane": "ab".repeat(32), "control_plane_address": "10.0.0.1:9090",
        "peers_live": 3, "peers_dead": 1,
        "gossip": {
            "cluster_id": "univrs", "listen_addr": "0.0.0.0:7946",
            "advertise_addr": "10.0.0.1:7946", "seeds": ["10.0.0.1:7946", "10.0.0.2:7946"],
            "gossip_interval_ms": 100, "phi_threshold": 8.0,
            "dead_node_grace_seconds": 3600, "generation": 1_764_000_000_000u64,
            "rejected_records": 2, "bytes_sent": 12345, "bytes_received": 512
        }
    })
}

#[test]
fn peer_rows_mark_self_and_dash_empty_cells() {
    let mut standalone = peer("2", "", "Down", false, false);
    standalone["gossip_addr"] = json!("");
    let (_, text) = peers_report(vec![
        peer("1", "control-plane", "Ready", true, true),
        standalone,
    ])
    .expect("report");
    assert_eq!(
        text,
        "NODE            ROLE            GOSSIP          API             STATUS   LIVE\n\
         111111111111*   control-plane   10.0.0.1:7946   10.0.0.1:9090   Ready    yes\n\
         222222222222    -               -               10.0.0.2:9090   Down     no\n"
    );
}

#[test]
fn discover_rows_show_latency_and_why_a_peer_did_not_answer() {
    let mut ok = peer("1", "control-plane", "Ready", true, true);
    ok["reachable"] = json!(true);
    ok["latency_ms"] = json!(1.234);
    ok["error"] = json!(null);
    let mut down = peer("3", "worker", "Down", false, false);
    down["reachable"] = json!(false);
    down["latency_ms"] = json!(null);
    down["error"] = json!("connection refused");
    let (value, text) = discover_report(Some(vec![ok, down])).expect("report");
    assert_eq!(
        text,
        "NODE            API             REACHABLE   LATENCY   ERROR\n\
         111111111111*   10.0.0.1:9090   yes         1.2ms\n\
         333333333333    10.0.0.3:9090   no          -         connection refused\n"
    );
    assert_eq!(value["items"][1]["error"], "connection refused");
    assert_eq!(value["next_cursor"], Value::Null);
}

#[test]
fn status_lines_for_a_gossiping_node() {
    let (value, text) = status_report(Some(gossiping_status())).expect("report");
    assert_eq!(value, gossiping_status(), "JSON is the server's answer");
    let ab = "ab".repeat(32);
    assert_eq!(
        text,
        format!(
            "node:             {ab}\n\
             role:             control-plane\n\
             control plane:    {ab} at 10.0.0.1:9090\n\
             peers:            3 live, 1 dead\n\
             cluster id:       univrs\n\
             gossip listen:    0.0.0.0:7946\n\
             gossip advertise: 10.0.0.1:7946\n\
             seeds:            10.0.0.1:7946, 10.0.0.2:7946\n\
             gossip interval:  100ms\n\
             phi threshold:    8\n\
             dead node grace:  3600s\n\
             generation:       1764000000000\n\
             rejected records: 2\n\
             bytes sent:       12.1KiB\n\
             bytes received:   512B\n"
        )
    );
}

#[test]
fn status_lines_without_gossip_or_control_plane() {
    let cd = "cd".repeat(32);
    let (_, text) = status_report(Some(json!({
        "node_id": cd, "role": "worker", "control_plane": null,
        "control_plane_address": null, "peers_live": 1, "peers_dead": 0, "gossip": null
    })))
    .expect("report");
    assert_eq!(
        text,
        format!(
            "node:          {cd}\n\
             role:          worker\n\
             control plane: none live\n\
             peers:         1 live, 0 dead\n\
             gossip:        off\n"
        )
    );
}

#[test]
fn a_standalone_answer_starts_with_the_note() {
    let ef = "ef".repeat(32);
    let (_, text) = status_report(Some(json!({
        "node_id": ef, "role": "standalone", "control_plane": null,
        "control_plane_address": null, "peers_live": 1, "peers_dead": 0, "gossip": null
    })))
    .expect("report");
    assert_eq!(
        text,
        format!(
            "{STANDALONE}\n\
             node:          {ef}\n\
             role:          standalone\n\
             control plane: none live\n\
             peers:         1 live, 0 dead\n\
             gossip:        off\n"
        )
    );
}

#[test]
fn standalone_reports_say_so() {
    let (value, text) = status_report(None).expect("report");
    assert_eq!(value, json!({"role": "standalone"}));
    assert_eq!(text, STANDALONE);
    let (value, text) = discover_report(None).expect("report");
    assert_eq!(value, json!({"items": [], "next_cursor": null}));
    assert_eq!(text, STANDALONE);
}

#[test]
fn nodes_become_peers() {
    let p = peer_from_node(&fixtures::node(json!({
        "id": "ab".repeat(32), "address": "10.0.0.5:9090", "status": "Down",
        "labels": {"univrs.io/role": "worker", "zone": "a"}
    })))
    .expect("converts");
    assert_eq!(
        p,
        json!({"node_id": "ab".repeat(32), "gossip_addr": "", "api_addr": "10.0.0.5:9090",
               "generation": 0, "role": "worker", "status": "Down", "live": false,
               "is_self": false})
    );
    let p = peer_from_node(&fixtures::node(
        json!({"id": "cd".repeat(32), "address": "x", "status": "Ready"}),
    ))
    .expect("converts");
    assert_eq!(
        (p["role"].as_str(), p["live"].as_bool()),
        (Some(""), Some(true))
    );
}

#[test]
fn status_is_a_signed_get_and_a_404_means_standalone() {
    let (url, server) = serve_once("200 OK", &gossiping_status().to_string());
    let got = fetch_status(&signed_client(&url)).expect("answer");
    assert_eq!(got, Some(gossiping_status()));
    let (head, _) = server.join().expect("server thread");
    assert!(head.starts_with("get /api/v1/network http/1.1"), "{head}");
    assert!(head.contains("x-auth-signature:"), "{head}");

    let (url, server) = serve_once("404 Not Found", NOT_FOUND);
    assert_eq!(
        fetch_status(&signed_client(&url)).expect("standalone"),
        None
    );
    server.join().expect("server thread");
}

#[test]
fn other_errors_are_errors() {
    let (url, server) = serve_once(
        "403 Forbidden",
        r#"{"error":{"code":"forbidden","message":"key not trusted"}}"#,
    );
    let err = fetch_status(&signed_client(&url)).expect_err("403");
    assert_eq!(err.to_string(), "key not trusted (forbidden, HTTP 403)");
    server.join().expect("server thread");

    let (url, server) = serve_once("503 Service Unavailable", "down");
    let err = fetch_peers(&signed_client(&url)).expect_err("503");
    assert_eq!(err.to_string(), "down (HTTP 503)");
    server.join().expect("server thread");
}

#[test]
fn peers_follow_next_cursor() {
    let page1 = json!({"items": [peer("1", "control-plane", "Ready", true, true)],
                       "next_cursor": "c1"});
    let page2 = json!({"items": [peer("2", "worker", "Ready", true, false)],
                       "next_cursor": null});
    let (url, server) = serve_sequence(&[
        ("200 OK", &page1.to_string()),
        ("200 OK", &page2.to_string()),
    ]);
    let items = fetch_peers(&signed_client(&url)).expect("peers");
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["role"], "worker");
    let requests = server.join().expect("server thread");
    assert!(
        requests[0]
            .0
            .starts_with("get /api/v1/network/peers?limit=1000 "),
        "{}",
        requests[0].0
    );
    assert!(
        requests[1]
            .0
            .starts_with("get /api/v1/network/peers?limit=1000&cursor=c1 "),
        "{}",
        requests[1].0
    );
}

#[test]
fn peers_of_a_standalone_daemon_are_its_nodes() {
    let node = fixtures::node(json!({"id": "ab".repeat(32), "address": "127.0.0.1:9090",
                                     "status": "Ready", "labels": {}}));
    let nodes = json!({"items": [node], "next_cursor": null});
    let (url, server) =
        serve_sequence(&[("404 Not Found", NOT_FOUND), ("200 OK", &nodes.to_string())]);
    let items = fetch_peers(&signed_client(&url)).expect("peers");
    let requests = server.join().expect("server thread");
    assert!(requests[1].0.starts_with("get /api/v1/nodes?limit=1000 "));
    let (_, text) = peers_report(items).expect("report");
    assert_eq!(
        text,
        "NODE           ROLE   GOSSIP   API              STATUS   LIVE\n\
         abababababab   -      -        127.0.0.1:9090   Ready    yes\n"
    );
}

#[test]
fn discover_reads_every_page_and_a_404_means_standalone() {
    let mut report = peer("2", "worker", "Ready", true, false);
    report["reachable"] = json!(true);
    report["latency_ms"] = json!(0.5);
    let page = json!({"items": [report], "next_cursor": null});
    let (url, server) = serve_once("200 OK", &page.to_string());
    let items = fetch_discover(&signed_client(&url))
        .expect("answer")
        .expect("not standalone");
    assert_eq!(items.len(), 1);
    let (head, _) = server.join().expect("server thread");
    assert!(head.starts_with("get /api/v1/network/discover?"), "{head}");

    let (url, server) = serve_once("404 Not Found", NOT_FOUND);
    assert!(fetch_discover(&signed_client(&url))
        .expect("standalone")
        .is_none());
    server.join().expect("server thread");
}

#[test]
fn status_lines_name_the_elected_leader() {
    let (me, other) = ("ab".repeat(32), "cd".repeat(32));
    for (leader, says) in [
        (&other, format!("{other} at 10.0.0.2:9090")),
        (&me, format!("{me} at 10.0.0.2:9090 (this node)")),
    ] {
        let (_, text) = status_report(Some(json!({
            "node_id": me, "role": "control-plane", "control_plane": null,
            "control_plane_address": null, "peers_live": 1, "peers_dead": 0, "gossip": null,
            "leader": {"node_id": leader, "address": "10.0.0.2:9090"}
        })))
        .expect("report");
        assert!(text.contains(&format!("leader:        {says}\n")), "{text}");
    }
}
