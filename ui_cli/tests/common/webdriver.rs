//! A minimal W3C WebDriver client over chromedriver, for the dashboard's
//! tests and benchmark: a session of Debian's headless Chromium, and the few
//! commands they use. Why not the `thirtyfour` crate: it turns on
//! `serde_json`'s `preserve_order` for the whole workspace's test build
//! (cargo unifies features), which changes the JSON the daemon built for
//! the tests writes; these ~200 lines need nothing new.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// W3C WebDriver's Tab key.
pub const TAB: &str = "\u{E004}";
/// W3C WebDriver's Enter key.
pub const ENTER: &str = "\u{E007}";
/// W3C WebDriver's Backspace key.
pub const BACKSPACE: &str = "\u{E003}";

/// The key W3C WebDriver names an element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one Chromium session; both end when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    agent: ureq::Agent,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session
    /// with `extra` arguments, 1280×900.
    pub fn start(extra: &[&str]) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: chromium-driver) must be installed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ];
        args.extend_from_slice(extra);
        let mut options = json!({ "args": args });
        if Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options,
            // A dialog the page opens stays open until the test answers it.
            "unhandledPromptBehavior": "ignore"
        }}});
        let session = b.call("POST", "/session", Some(caps));
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_owned();
        b.base = format!("{}/session/{id}", b.base);
        b
    }

    /// One command: its `value`, or a panic with the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let res = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        }
        .map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let text = res
            .into_body()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if status >= 400 {
            return Err(format!("{status} {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The page's title.
    pub fn title(&self) -> String {
        self.call("GET", "/title", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The address in the address bar.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn find(&self, css: &str) -> Option<String> {
        let v = self
            .try_call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .ok()?;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    /// The visible text of the first element matching `css`, or "".
    pub fn text(&self, css: &str) -> String {
        self.find(css)
            .and_then(|e| {
                self.try_call("GET", &format!("/element/{e}/text"), None)
                    .ok()
            })
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Clicks the first element matching `css`.
    pub fn click(&self, css: &str) {
        let e = self
            .find(css)
            .unwrap_or_else(|| panic!("no {css} on the page"));
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Replaces the value of the input matching `css` with `text`.
    pub fn fill(&self, css: &str, text: &str) {
        let e = self
            .find(css)
            .unwrap_or_else(|| panic!("no {css} on the page"));
        self.call("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Runs `script` in the page; what it returns.
    pub fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Types `keys` as a person at the keyboard would, to whatever has the
    /// focus (W3C key codes for special keys: [`TAB`], [`ENTER`], …).
    pub fn keys(&self, keys: &str) {
        let mut actions = Vec::new();
        for c in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        let done = self.try_call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
        // A key that opens a dialog (`confirm`) ends the typing there.
        if let Err(e) = done {
            assert!(e.contains("alert"), "typing {keys:?}: {e}");
        }
    }

    /// The text of the dialog the page opened (`confirm`), if one is open.
    pub fn dialog(&self) -> Option<String> {
        self.try_call("GET", "/alert/text", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Answers the open dialog: OK (`true`) or Cancel.
    pub fn answer_dialog(&self, ok: bool) {
        let what = if ok {
            "/alert/accept"
        } else {
            "/alert/dismiss"
        };
        self.call("POST", what, Some(json!({})));
    }

    /// Resizes the window.
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"x": 0, "y": 0, "width": width, "height": height})),
        );
    }

    /// Writes a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        std::fs::write(path, png).expect("writing the screenshot");
    }
}
