//! Who may use the dashboard. It listens on 127.0.0.1 only, and every
//! request must:
//!
//! - name this server in `Host` (`127.0.0.1:PORT` or `localhost:PORT`): a
//!   web page cannot reach it through a DNS name rebound to loopback;
//! - carry the per-run token: in the URL `ui dashboard` prints (`?token=`),
//!   which is exchanged at once for an `HttpOnly`, `SameSite=Strict` cookie
//!   and a redirect that drops it from the address bar; then in that cookie;
//! - when it changes something (any method but `GET`/`HEAD`) or opens the
//!   live WebSocket, come from this server's own page (`Origin`), so that a
//!   page of another site in the same browser cannot post a form to it; an
//!   `Origin` of another site is refused on any request.
//!
//! Refusals are plain 401/403 pages that say what to do, and change nothing.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::State as Dash;

/// The cookie carrying the token.
pub const COOKIE: &str = "univrs_dashboard";

/// A fresh token: 32 random bytes, hex.
pub fn new_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn refuse(status: StatusCode, why: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Univrs dashboard: \
         refused</title></head><body><main><h1>Refused</h1><p>{why}</p></main></body></html>"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

fn cookie_token(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn query_token(req: &Request) -> Option<String> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_owned())
}

/// The checks above, before any handler.
pub async fn check(State(dash): State<Dash>, req: Request, next: Next) -> Response {
    let port = dash.port;
    let hosts = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !hosts.iter().any(|h| h == host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This dashboard answers only at the address <code>ui dashboard</code> printed.",
        );
    }
    let origins = [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ];
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("?"));
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD)
        || req.headers().contains_key(header::UPGRADE);
    match origin {
        Some(o) if !origins.iter().any(|x| x == o) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "A page of another site cannot use this dashboard.",
            )
        }
        None if changes => {
            return refuse(
                StatusCode::FORBIDDEN,
                "Changes are made from the dashboard's own page only.",
            )
        }
        _ => {}
    }
    if let Some(given) = query_token(&req) {
        if !same(&given, &dash.token) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "This link is not the one <code>ui dashboard</code> printed (each run makes a new one).",
            );
        }
        let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", dash.token);
        let mut res = Redirect::to(req.uri().path()).into_response();
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
        return res;
    }
    match cookie_token(&req) {
        Some(t) if same(&t, &dash.token) => {}
        _ => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "Open the dashboard with the URL <code>ui dashboard</code> printed.",
            )
        }
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // Not `no-referrer`: with it, a browser sends `Origin: null` on the
    // page's own form posts, which the check above must refuse.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (super::new_token(), super::new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(super::same(&a, &a.clone()));
        assert!(!super::same(&a, &b));
        assert!(!super::same(&a, &a[..63]));
    }
}
