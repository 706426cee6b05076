//! `ui dashboard` in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, over WebDriver), against a real daemon running real
//! containers: the overview shows the node; a workload deployed with `ui
//! deploy` appears, and a scale from the CLI shows in the open page within
//! 2 s, without a reload; a scale from the page changes the workload; an
//! agent's call approved from the page runs exactly once; the logs view
//! shows a line printed after it opened. Requests without the token, with a
//! foreign `Host` or `Origin`, are refused and change nothing. Every view is
//! photographed at 1280 and 390 pixels wide (`target/dashboard-screenshots/`)
//! and none is wider than the window.
//!
//! A second test, on the mock runtime, is a person at the keyboard only
//! (skip link, menu, a workload, its scale form, a delete that asks first),
//! a change the daemon refuses, the page's live connection cut (`ss -K`),
//! the daemon stopped and started again, and `ui dashboard` restarted: the
//! page says each, and recovers where it can.
//!
//! Needs root (youki), the test registry, `chromium` and `chromedriver`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::dash::{base_and_port, photograph, raw, start_dashboard, status, until};
use common::webdriver::{Browser, BACKSPACE, ENTER, TAB};
use common::{agent_token, start_daemon_at, start_daemon_with, ui, ui_ok, with_token};

fn registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("config");
    let reg = registry();
    let daemon = start_daemon_with(
        &tmp.path().join("data"),
        &["--runtime", "youki", "--insecure-registry", reg.as_str()],
    );
    let server = daemon.url.clone();
    ui_ok(&config_dir, &server, &["init"]);
    let manifest = |name: &str, replicas: u32, script: &str| {
        let path = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!(
                "name: {name}\nreplicas: {replicas}\nnetwork: none\ncontainers:\n  - name: main\n    \
                 image: {reg}/test/busybox:1\n    command: [sh, -c, '{script}']\n    \
                 resources: {{requests: {{cpu: 10m, memory: 8Mi}}}}\n"
            ),
        )
        .unwrap();
        path
    };
    let ticker = manifest(
        "ticker",
        1,
        "i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.3; done",
    );
    ui_ok(
        &config_dir,
        &server,
        &["deploy", ticker.to_str().unwrap(), "--timeout", "60"],
    );

    let (_dash, url) = start_dashboard(&config_dir, &server, None);
    let (base, port) = base_and_port(&url);
    let token = url.rsplit("token=").next().unwrap().to_owned();

    // Refused: no token, a wrong one, a foreign Host, a foreign or missing
    // Origin on a change, a foreign Origin on the live socket.
    let host = format!("127.0.0.1:{port}");
    let cookie = format!("univrs_dashboard={token}");
    assert_eq!(
        raw(
            port,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        ),
        401
    );
    assert_eq!(
        raw(
            port,
            &format!(
                "GET /?token={} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
                "0".repeat(64)
            )
        ),
        401
    );
    assert_eq!(
        raw(port, &format!("GET / HTTP/1.1\r\nHost: evil.example:{port}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")),
        403
    );
    let scale = |origin: &str| {
        format!(
            "POST /workloads/ticker/scale HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n{origin}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\nConnection: close\r\n\r\nreplicas=7"
        )
    };
    assert_eq!(raw(port, &scale("Origin: http://evil.example\r\n")), 403);
    assert_eq!(raw(port, &scale("")), 403);
    assert_eq!(
        raw(port, &format!(
            "GET /live HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nOrigin: http://evil.example\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )),
        403
    );
    let w = status(&config_dir, &server, "ticker").unwrap();
    assert_eq!(
        w["workload"]["spec"]["replicas"], 1,
        "a refused request changed nothing"
    );
    // The right cookie and Origin pass (the control of the refusals above).
    assert_eq!(
        raw(port, &format!("GET /nodes HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")),
        200
    );

    let d = Browser::start(&[]);

    // The overview shows the node.
    d.goto(&url);
    assert_eq!(d.title(), "Overview · Univrs");
    assert!(
        !d.url().contains("token="),
        "the token leaves the address bar"
    );
    until("the overview shows 1 node ready", || {
        d.text(".tiles").contains("nodes ready") && d.text(".tiles .tile .big") == "1"
    });
    photograph(&d, "overview");

    // A workload deployed with `ui deploy` appears, without a reload.
    d.goto(&format!("{base}/workloads"));
    d.run("window.notReloaded = true;");
    let web = manifest("web", 1, "exec sleep 3600");
    ui_ok(
        &config_dir,
        &server,
        &["deploy", web.to_str().unwrap(), "--no-wait"],
    );
    until("web appears", || {
        !d.text("tr[data-workload=web]").is_empty()
    });
    // Scaled from the CLI: in the page within 2 s.
    ui_ok(&config_dir, &server, &["scale", "web", "3"]);
    let scaled = Instant::now();
    until("the page shows 3 replicas of web", || {
        d.text("tr[data-workload=web] td[data-field=running]")
            .ends_with("/3")
    });
    let shown = scaled.elapsed();
    assert!(
        shown <= Duration::from_secs(2),
        "the scale showed after {shown:?}"
    );
    assert_eq!(
        d.run("return window.notReloaded === true;"),
        Value::Bool(true),
        "the page was not reloaded"
    );
    photograph(&d, "workloads");

    // Scaled from the page: the workload changes (asked through the API).
    d.goto(&format!("{base}/workloads/web"));
    d.fill("input#replicas", "2");
    d.click("form[action$='/scale'] button");
    until("the page says web was scaled", || {
        d.text("#flash").contains("scaled to 2")
    });
    let w = status(&config_dir, &server, "web").unwrap();
    assert_eq!(w["workload"]["spec"]["replicas"], 2, "{w}");
    photograph(&d, "workload");

    // An agent's call held for approval, approved from the page: it runs
    // exactly once.
    ui_ok(&config_dir, &server, &["policy", "ai", "on"]);
    let out = ui(&config_dir, &server, &agent_token("bot", "delete_workload"));
    assert!(out.status.success());
    let agent = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    d.goto(&format!("{base}/agents"));
    let (code, body) = with_token(&server, &agent, "DELETE", "/api/v1/workloads/web");
    assert_eq!(code, 202, "{body}");
    until("the approval shows", || {
        !d.text("li[data-approval]").is_empty()
    });
    photograph(&d, "agents");
    d.click("li[data-approval] form[action$='/approve'] button");
    until("the page says approved", || {
        d.text("#flash").contains("approved")
    });
    until("web is deleted", || {
        status(&config_dir, &server, "web").is_none()
    });
    let audit: Value = serde_json::from_str(&ui_ok(
        &config_dir,
        &server,
        &["audit", "--agent", "bot", "-o", "json"],
    ))
    .unwrap();
    let ran = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"] == "approved")
        .count();
    assert_eq!(ran, 1, "the approved call ran once: {audit}");

    // The logs view shows a line printed after it opened.
    let before = ui_ok(&config_dir, &server, &["logs", "ticker"]);
    let last: u64 = before
        .lines()
        .filter_map(|l| l.rsplit("tick-").next()?.trim().parse().ok())
        .max()
        .unwrap_or(0);
    d.goto(&format!("{base}/workloads/ticker/logs"));
    let later = format!("tick-{}", last + 3);
    until("the page shows a later line", || {
        d.text("#log").contains(&later)
    });
    photograph(&d, "logs");

    d.goto(&format!("{base}/nodes"));
    assert!(d.text("main").contains("1 of 1 ready"));
    // What is requested of the node: the ticker's 10m of CPU.
    let cpu = d.text("td[data-field=cpu]");
    assert!(cpu.starts_with("0.01 / "), "{cpu}");
    let admission = d.text("td[data-field=admission]");
    assert!(admission.contains("no member list"), "{admission}");
    let reputation = d.text("td[data-field=reputation]");
    assert!(reputation.contains("uptime"), "{reputation}");
    photograph(&d, "nodes");
    d.goto(&format!("{base}/credits"));
    assert!(d.text("main").contains("balance"));
    photograph(&d, "credits");

    drop(d);
    // Nothing left running once the daemon is gone.
    ui_ok(&config_dir, &server, &["delete", "ticker"]);
    let containers = tmp.path().join("data/runtime/containers");
    until("every container is removed", || {
        std::fs::read_dir(&containers).map_or(true, |mut d| d.next().is_none())
    });
}

/// What has the focus: `#id`, or its text.
fn focused(d: &Browser) -> String {
    d.run(
        "var e = document.activeElement; \
         return e.id ? '#' + e.id : (e.innerText || e.value || e.tagName).trim();",
    )
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Presses Tab until `what` (see [`focused`]) has the focus, checking that
/// each element reached shows that it has it (a visible outline).
fn tab_to(d: &Browser, what: &str) {
    let mut seen = Vec::new();
    for _ in 0..40 {
        d.keys(TAB);
        let now = focused(d);
        let shows = d.run(
            "var s = getComputedStyle(document.activeElement); \
             return document.activeElement === document.body || s.outlineStyle !== 'none';",
        );
        assert_eq!(
            shows,
            Value::Bool(true),
            "{now} has the focus but shows none"
        );
        if now == what {
            return;
        }
        seen.push(now);
    }
    panic!("Tab never reached {what}; it went through {seen:?}");
}

/// Records every text the page's status line shows, in `window.said`.
fn listen(d: &Browser) {
    d.run(
        "window.said = []; var live = document.getElementById('live'); \
         new MutationObserver(function () { window.said.push(live.textContent); }) \
           .observe(live, {childList: true, characterData: true, subtree: true});",
    );
}

fn said(d: &Browser) -> Vec<String> {
    serde_json::from_value(d.run("return window.said || [];")).unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Cuts every TCP connection to or from `port` on loopback, as a network
/// that drops them would (`ss -K`, the kernel's socket destroy); how many.
fn cut_connections(port: u16) -> usize {
    let out = Command::new("ss")
        .args(["-K", "-t", "-n", "dst", "127.0.0.1"])
        .args(["(", "dport", "=", &format!(":{port}")])
        .args(["or", "sport", "=", &format!(":{port}"), ")"])
        .output()
        .expect("ss (iproute2)");
    assert!(out.status.success(), "ss -K: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("ESTAB"))
        .count()
}

/// A person at the keyboard only; a refused change; the live connection
/// cut; the daemon stopped and started again; the dashboard restarted. The
/// page says each in words that tell what to do, and recovers where it can.
/// (The mock runtime: none of this needs a container.)
#[test]
fn the_dashboard_with_a_keyboard_and_through_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let config_dir = tmp.path().join("config");
    let data = tmp.path().join("data");
    let addr = format!("127.0.0.1:{}", free_port());
    let daemon = start_daemon_at(&data, &["--runtime", "mock"], &addr);
    let server = daemon.url.clone();
    ui_ok(&config_dir, &server, &["init"]);
    let manifest = tmp.path().join("web.yaml");
    std::fs::write(
        &manifest,
        "name: web\nreplicas: 1\ncontainers:\n  - name: main\n    image: registry.example/web:1\n",
    )
    .unwrap();
    ui_ok(
        &config_dir,
        &server,
        &["deploy", manifest.to_str().unwrap(), "--timeout", "30"],
    );
    let (dash, url) = start_dashboard(&config_dir, &server, None);
    let (base, port) = base_and_port(&url);
    let d = Browser::start(&[]);
    d.goto(&url);
    let replicas = |config_dir: &Path| {
        status(config_dir, &server, "web").map(|w| w["workload"]["spec"]["replicas"].clone())
    };

    // The keyboard alone: the skip link first, then the menu, a workload,
    // its replicas, Scale.
    d.keys(TAB);
    assert_eq!(focused(&d), "Skip to the content");
    let skip_visible = d.run("var r = document.activeElement.getBoundingClientRect(); return r.left >= 0 && r.width > 0;");
    assert_eq!(
        skip_visible,
        Value::Bool(true),
        "the skip link shows when focused"
    );
    d.keys(ENTER);
    until("the content has the focus", || focused(&d) == "#main");
    d.goto(&format!("{base}/"));
    tab_to(&d, "Workloads");
    d.keys(ENTER);
    until("the workloads page opens", || {
        d.title() == "Workloads · Univrs"
    });
    tab_to(&d, "web");
    d.keys(ENTER);
    until("web's page opens", || d.title() == "web · Univrs");
    tab_to(&d, "#replicas");
    d.keys(&format!("{BACKSPACE}{BACKSPACE}{BACKSPACE}3{ENTER}"));
    until("the page says web was scaled", || {
        d.text("#flash").contains("scaled to 3")
    });
    assert_eq!(replicas(&config_dir), Some(Value::from(3)));
    // Delete asks first; Cancel keeps the workload.
    tab_to(&d, "Delete");
    d.keys(ENTER);
    until("the page asks to confirm", || d.dialog().is_some());
    assert_eq!(d.dialog().unwrap(), "Delete web and stop its instances?");
    d.answer_dialog(false);
    assert_eq!(
        replicas(&config_dir),
        Some(Value::from(3)),
        "Cancel deletes nothing"
    );

    // A change the daemon refuses: its reason, as an alert; nothing changes.
    d.fill("input#replicas", "600");
    d.click("form[action$='/scale'] button");
    until("the refusal shows", || {
        d.text("#flash[role=alert]").contains("quota")
    });
    assert_eq!(replicas(&config_dir), Some(Value::from(3)));
    photograph(&d, "refused");

    // The live connection cut: the page says so, reconnects, says that,
    // and is live again.
    d.goto(&format!("{base}/workloads"));
    listen(&d);
    ui_ok(&config_dir, &server, &["scale", "web", "2"]);
    until("the page is live", || {
        d.text("tr[data-workload=web] td[data-field=running]")
            .ends_with("/2")
    });
    assert!(cut_connections(port) > 0, "no connection to cut");
    until("the page says it lost and regained live updates", || {
        let said = said(&d);
        let lost = said.iter().position(|s| s.contains("Live updates lost"));
        lost.is_some_and(|i| said[i..].iter().any(|s| s.contains("Reconnected")))
    });
    ui_ok(&config_dir, &server, &["scale", "web", "4"]);
    let scaled = Instant::now();
    until("the page is live again", || {
        d.text("tr[data-workload=web] td[data-field=running]")
            .ends_with("/4")
    });
    assert!(
        scaled.elapsed() <= Duration::from_secs(2),
        "{:?}",
        scaled.elapsed()
    );

    // The daemon stopped: the page says what could not be read and how to
    // check; started again where it was, the page comes back by itself.
    drop(daemon);
    until("the page says the daemon's events stopped", || {
        d.text("#live").contains("not connected")
    });
    d.goto(&format!("{base}/workloads"));
    let card = d.text(".card.error");
    assert!(card.contains("Could not read your workloads"), "{card}");
    assert!(card.contains("ui health"), "{card}");
    photograph(&d, "unreachable");
    let daemon = start_daemon_at(&data, &["--runtime", "mock"], &addr);
    until("the page says the daemon is back and shows web", || {
        d.text("#live").contains("Connected to the daemon again")
            && d.text("tr[data-workload=web] td[data-field=running]")
                .ends_with("/4")
    });

    // `ui dashboard` restarted: a new run has a new token. The old cookie is
    // refused, and the open page says what to do rather than retry forever.
    let cookie = format!("univrs_dashboard={}", url.rsplit("token=").next().unwrap());
    drop(dash);
    let (_again, new_url) = start_dashboard(&config_dir, &server, Some(port));
    assert_ne!(new_url, url, "each run has its own token");
    until("the page says the dashboard was restarted", || {
        d.text("#live").contains("stopped or restarted")
    });
    let host = format!("127.0.0.1:{port}");
    assert_eq!(
        raw(
            port,
            &format!(
                "GET / HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            )
        ),
        401,
        "a cookie of an earlier run"
    );
    d.goto(&new_url);
    assert_eq!(d.title(), "Overview · Univrs");
    drop(daemon);
}
