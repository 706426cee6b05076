//! Tests of `ui credits ...`.
use ed25519_dalek::SigningKey;

use super::*;
use crate::client::test_server::{serve_once, serve_sequence};

const BALANCE: &str = r#"{"account":"abababababababababababababababababababababababababababababababab","balance":-12500,"held":2000,"limit":100000,"available":85500}"#;

fn other() -> PublicKey {
    PublicKey([0xcd; 32])
}

fn signed_client(url: &str) -> ApiClient {
    ApiClient::new(url, Some(SigningKey::from_bytes(&[3; 32])))
        .expect("client")
        .with_audience("test-audience")
}

#[test]
fn balance_rows_are_in_units() {
    let b: Balance = serde_json::from_str(BALANCE).expect("balance");
    assert_eq!(
        balance_table(&b).render(),
        "ACCOUNT        BALANCE   HELD    LIMIT     AVAILABLE\n\
         abababababab   -12.500   2.000   100.000   85.500\n"
    );
}

#[test]
fn balance_gets_the_balance_path() {
    let (url, server) = serve_once("200 OK", BALANCE);
    balance(OutputFormat::Json, &signed_client(&url)).expect("balance");
    let (head, body) = server.join().expect("server thread");
    assert!(
        head.starts_with("get /api/v1/credits/balance http/1.1"),
        "{head}"
    );
    assert!(head.contains("x-auth-signature:"), "{head}");
    assert!(body.is_empty());
}

#[test]
fn history_rows_name_you_and_print_units() {
    let me = "ab".repeat(32);
    let items = [
        json!({"seq": 1, "kind": "transfer", "counterparty": "cd".repeat(32),
               "balance_delta": -12500, "held_delta": 0,
               "at": "2026-11-30T10:00:00.123Z", "reference": "n1"}),
        json!({"seq": 2, "kind": "hold", "counterparty": null, "balance_delta": 0,
               "held_delta": 1, "at": "2026-11-30T11:00:00Z"}),
        json!({"seq": 3, "kind": "settle", "counterparty": "commons", "balance_delta": 250,
               "held_delta": -250, "at": "2026-11-30T12:00:00.5+00:00"}),
    ];
    let t = history_table(&items, Some(&me)).expect("table");
    assert_eq!(
        t.render(),
        "SEQ   KIND       WITH           CHANGE    HELD     AT\n\
         1     transfer   cdcdcdcdcdcd   -12.500   0.000    2026-11-30T10:00:00Z\n\
         2     hold       -              0.000     0.001    2026-11-30T11:00:00Z\n\
         3     settle     commons        0.250     -0.250   2026-11-30T12:00:00Z\n"
    );
    assert!(history_table(&[json!({"seq": "one"})], None).is_err());
}

#[test]
fn history_walks_every_page() {
    let first = json!({
        "items": [{"seq": 1, "kind": "transfer", "amount": 5, "at": "2026-11-30T10:00:00Z"}],
        "next_cursor": "c1"
    })
    .to_string();
    let second = json!({
        "items": [{"seq": 2, "kind": "release", "amount": 7, "at": "2026-11-30T11:00:00Z"}],
        "next_cursor": null
    })
    .to_string();
    let (url, server) = serve_sequence(&[("200 OK", &first), ("200 OK", &second)]);
    let client = signed_client(&url);
    history(OutputFormat::Json, &client).expect("history");
    let requests = server.join().expect("server thread");
    assert!(
        requests[0]
            .0
            .starts_with("get /api/v1/credits/history?limit=1000 "),
        "{}",
        requests[0].0
    );
    assert!(
        requests[1]
            .0
            .starts_with("get /api/v1/credits/history?limit=1000&cursor=c1 "),
        "{}",
        requests[1].0
    );
}

#[test]
fn send_posts_the_transfer_and_reports_the_balance() {
    let answer = format!(r#"{{"balance":{BALANCE}}}"#);
    let (url, server) = serve_once("200 OK", &answer);
    let transfer = Transfer {
        to: other(),
        amount: parse_amount("12.5").expect("amount"),
        nonce: 1_764_496_800_000_001,
    };
    send(OutputFormat::Table, &signed_client(&url), &transfer).expect("sent");
    let (head, body) = server.join().expect("server thread");
    assert!(
        head.starts_with("post /api/v1/credits/transfer http/1.1"),
        "{head}"
    );
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("x-auth-signature:"), "{head}");
    let body: Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(
        body,
        json!({"to": "cd".repeat(32), "amount": 12500, "nonce": 1_764_496_800_000_001u64})
    );
}

#[test]
fn over_the_credit_limit_is_an_error_with_the_daemons_message() {
    let (url, server) = serve_once(
        "409 Conflict",
        r#"{"error":{"code":"credit_limit_exceeded","message":"available is 85.500, the transfer needs 90.000"}}"#,
    );
    let transfer = Transfer {
        to: other(),
        amount: 90_000,
        nonce: 7,
    };
    let err = send(OutputFormat::Json, &signed_client(&url), &transfer).expect_err("409");
    let text = format!("{err:#}");
    assert!(
        text.starts_with(&format!(
            "sending 90.000 to operator {} would take you past your credit limit",
            "cd".repeat(32)
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "available is 85.500, the transfer needs 90.000 (credit_limit_exceeded, HTTP 409)"
        ),
        "{text}"
    );
    server.join().expect("server thread");
}

#[test]
fn other_refusals_name_the_transfer() {
    let (url, server) = serve_once(
        "409 Conflict",
        r#"{"error":{"code":"conflict","message":"nonce 7 is not above 9"}}"#,
    );
    let transfer = Transfer {
        to: other(),
        amount: 1,
        nonce: 7,
    };
    let err = send(OutputFormat::Json, &signed_client(&url), &transfer).expect_err("409");
    assert_eq!(
        format!("{err:#}"),
        format!(
            "sending 0.001 to operator {}: nonce 7 is not above 9 (conflict, HTTP 409)",
            "cd".repeat(32)
        )
    );
    server.join().expect("server thread");
}

#[test]
fn sending_to_yourself_is_refused_before_any_request() {
    let key = SigningKey::from_bytes(&[3; 32]);
    let me = PublicKey(key.verifying_key().to_bytes());
    // Nothing listens on port 9: a request would fail differently.
    let client = ApiClient::new("http://127.0.0.1:9", Some(key))
        .expect("client")
        .with_audience("test-audience");
    let transfer = Transfer {
        to: me,
        amount: 1,
        nonce: 1,
    };
    let err = send(OutputFormat::Json, &client, &transfer).expect_err("self");
    assert!(err.to_string().contains("is your own key"), "{err}");
}

#[test]
fn sent_text_with_and_without_a_balance() {
    let transfer = Transfer {
        to: other(),
        amount: 12_500,
        nonce: 1,
    };
    let b: Balance = serde_json::from_str(BALANCE).expect("balance");
    assert_eq!(
        sent_text(&transfer, Some(&b)),
        format!(
            "sent 12.500 to operator {}\nbalance -12.500, available 85.500",
            "cd".repeat(32)
        )
    );
    assert_eq!(
        sent_text(&transfer, None),
        format!("sent 12.500 to operator {}", "cd".repeat(32))
    );
}

#[test]
fn nonces_are_microseconds_and_increase() {
    let a = nonce_now();
    std::thread::sleep(std::time::Duration::from_millis(1));
    let b = nonce_now();
    assert!(b > a);
    // After 2020-01-01 in microseconds, and still exact as a JSON number.
    assert!(a > 1_577_836_800_000_000 && a < (1u64 << 53), "{a}");
}
