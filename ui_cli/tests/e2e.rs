//! End to end over a real socket: the real `orchestrator_daemon` (mock runtime,
//! SQLite) driven by the real `ui` binary.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{start_daemon, start_daemon_with, ui, ui_bin, ui_ok, PASSPHRASE};

/// `ui status -o json`'s items.
fn workloads(config_dir: &Path, server: &str) -> Vec<Value> {
    let text = ui_ok(config_dir, server, &["status", "-o", "json"]);
    let v: Value = serde_json::from_str(&text).expect("status -o json prints JSON");
    v["items"].as_array().cloned().expect("items is an array")
}

/// Polls until `check` holds for the workload list, or panics after `timeout`.
fn eventually(config_dir: &Path, server: &str, what: &str, check: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = workloads(config_dir, server);
        if check(&items) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {items:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn running_of(items: &[Value], name: &str) -> Option<u64> {
    items
        .iter()
        .find(|w| w["spec"]["name"] == name)
        .and_then(|w| w["status"]["running"].as_u64())
}

#[test]
fn deploy_scale_logs_delete_against_a_real_daemon() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config_dir = tmp.path().join("config");
    let daemon = start_daemon(&tmp.path().join("data"));
    let server = daemon.url.as_str();

    let out = ui_ok(&config_dir, server, &["init"]);
    assert!(out.contains("public key:"), "{out}");
    let again = ui_ok(&config_dir, server, &["init"]);
    assert!(again.contains("already exists"), "{again}");

    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello.yaml");
    let manifest = manifest.to_str().expect("utf-8 path");
    ui_ok(
        &config_dir,
        server,
        &["deploy", manifest, "--timeout", "60"],
    );
    let items = workloads(&config_dir, server);
    assert_eq!(running_of(&items, "hello"), Some(3), "{items:?}");
    assert_eq!(items[0]["status"]["up_to_date"], 3);

    let table = ui_ok(&config_dir, server, &["status"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("hello") && table.contains("3/3"), "{table}");

    ui_ok(&config_dir, server, &["scale", "hello", "5"]);
    eventually(&config_dir, server, "5 running", |items| {
        running_of(items, "hello") == Some(5)
    });

    let detail = ui_ok(&config_dir, server, &["status", "hello"]);
    assert_eq!(detail.matches("Running").count(), 5, "{detail}");

    let logs = ui_ok(&config_dir, server, &["logs", "hello"]);
    assert!(logs.contains("mock: started main from"), "{logs}");
    // Five instances: each line carries its instance's short id.
    assert!(logs.lines().all(|l| l.starts_with('[')), "{logs}");

    // `-f` prints lines as they arrive and keeps the stream open.
    let mut follow = Command::new(ui_bin())
        .arg("--config-dir")
        .arg(&config_dir)
        .args(["--server", server, "logs", "hello", "-f", "--tail", "1"])
        .env("UNIVRS_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running ui logs -f");
    let stdout = follow.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ui logs -f printed a line");
    assert!(first.contains("mock: started main from"), "{first}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        follow.try_wait().expect("polling ui logs -f").is_none(),
        "ui logs -f ended while the workload still runs"
    );
    follow.kill().expect("stopping ui logs -f");
    follow.wait().expect("reaping ui logs -f");

    let nodes = ui_ok(&config_dir, server, &["node", "status", "-o", "json"]);
    let nodes: Value = serde_json::from_str(&nodes).expect("node status -o json prints JSON");
    assert!(!nodes["items"].as_array().expect("items").is_empty());

    ui_ok(&config_dir, server, &["health"]);

    ui_ok(&config_dir, server, &["delete", "hello"]);
    eventually(&config_dir, server, "no workloads", |items| {
        items.is_empty()
    });

    let out = ui(&config_dir, server, &["status", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("(not_found, HTTP 404)"),
        "{stderr}"
    );
}

#[test]
fn the_servers_audience_is_kept_and_a_changed_one_is_explained() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config_dir = tmp.path().join("config");
    let daemon = start_daemon(&tmp.path().join("data"));
    let server = daemon.url.as_str();
    ui_ok(&config_dir, server, &["init"]);
    ui_ok(&config_dir, server, &["status"]);
    // Learned from GET /api/v1/info and kept: a standalone node's id.
    let file = config_dir.join("config.toml");
    let text = std::fs::read_to_string(&file).expect("config.toml");
    let config: toml::Table = text.parse().expect("config.toml parses");
    let audience = config["audiences"][server]
        .as_str()
        .expect("kept")
        .to_owned();
    assert!(
        audience.len() == 64 && audience.chars().all(|c| c.is_ascii_hexdigit()),
        "{text}"
    );
    ui_ok(&config_dir, server, &["status"]);
    // The server now answers for another audience than the one kept (as if
    // the URL led to another cluster): refused, and ui says what to do.
    std::fs::write(&file, text.replace(&audience, "another-cluster")).expect("writing");
    let out = ui(&config_dir, server, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("audience does not match") && stderr.contains(&audience),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("[audiences]"),
        "{stderr}"
    );
    // Nothing was replaced silently.
    let kept = std::fs::read_to_string(&file).expect("config.toml");
    assert!(kept.contains("another-cluster"), "{kept}");
}

#[test]
fn an_unreachable_server_fails_clearly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config_dir = tmp.path().join("config");
    // Port 9 (discard) on loopback: nothing listens there.
    let server = "http://127.0.0.1:9";
    ui_ok(&config_dir, server, &["init"]);
    let out = ui(&config_dir, server, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: cannot reach the server at http://127.0.0.1:9"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = ui(&config_dir, "not-a-url", &["health"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid server URL"));
}

#[test]
fn local_commands_work_without_a_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config_dir = tmp.path().join("config");
    let server = "http://127.0.0.1:9";
    let created = ui_ok(&config_dir, server, &["init", "-o", "json"]);
    let created: Value = serde_json::from_str(&created).expect("json");
    let key = created["public_key"]
        .as_str()
        .expect("public_key")
        .to_owned();
    assert_eq!(key.len(), 64);
    assert_eq!(
        ui_ok(&config_dir, server, &["identity", "show"]).trim(),
        key
    );
    let path = ui_ok(&config_dir, server, &["config", "path"]);
    assert_eq!(Path::new(path.trim()), config_dir);
    let version = ui_ok(&config_dir, server, &["version", "-o", "json"]);
    let version: Value = serde_json::from_str(&version).expect("json");
    assert_eq!(version["client"], env!("CARGO_PKG_VERSION"));

    let out = ui(&config_dir, server, &["scale", "hello"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

/// `config.toml` holds only keys `ui` uses: `ui init` writes no retired key
/// (`bootstrap`, `state_backend`, `[observability] telemetry`), and a file that
/// still sets one to a value that asks for something is refused naming it.
/// No daemon is needed: nothing here reaches a server.
const CONFIG_TEST_SERVER: &str = "http://127.0.0.1:9";

#[test]
fn ui_init_writes_no_retired_key_and_retired_keys_are_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config_dir = tmp.path().join("config");
    ui_ok(&config_dir, CONFIG_TEST_SERVER, &["init"]);
    let config_file = config_dir.join("config.toml");
    let written = std::fs::read_to_string(&config_file).expect("ui init writes config.toml");
    for retired in ["bootstrap", "state_backend", "observability", "telemetry"] {
        assert!(!written.contains(retired), "{retired} in {written}");
    }
    ui_ok(&config_dir, CONFIG_TEST_SERVER, &["config", "show"]);

    // What an older `ui init` wrote still loads: the values ask for nothing.
    let older = format!("bootstrap = []\n\n[observability]\ntelemetry = false\n\n{written}");
    std::fs::write(&config_file, older).expect("writing config.toml");
    ui_ok(&config_dir, CONFIG_TEST_SERVER, &["config", "show"]);

    for (text, key) in [
        (
            "bootstrap = [\"10.0.0.1:7946\"]\n",
            "config.toml:1: bootstrap",
        ),
        ("state_backend = \"etcd\"\n", "config.toml:1: state_backend"),
        (
            "[observability]\ntelemetry = true\n",
            "config.toml:2: observability.telemetry",
        ),
    ] {
        std::fs::write(&config_file, format!("{text}{written}")).expect("writing config.toml");
        // `policy ai on` reads and rewrites config.toml: it must not drop the key silently.
        for args in [&["config", "show"][..], &["policy", "ai", "on"][..]] {
            let out = ui(&config_dir, CONFIG_TEST_SERVER, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "ui {args:?} accepted {text:?}");
            assert!(
                stderr.contains(&format!("{key}: is no longer read")),
                "the error must name {key}: {stderr}"
            );
        }
        let kept = std::fs::read_to_string(&config_file).expect("reading config.toml");
        assert!(
            kept.starts_with(text),
            "the refused file was rewritten: {kept}"
        );
    }
}

/// The test registry (`./scripts/test-registry start`).
fn registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

/// Container ids of the instances of `name`, sorted.
fn container_ids(config_dir: &Path, server: &str, name: &str) -> Vec<String> {
    let text = ui_ok(config_dir, server, &["status", name, "-o", "json"]);
    let v: Value = serde_json::from_str(&text).expect("status -o json prints JSON");
    let mut ids: Vec<String> = v["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["status"] == "Running")
        .flat_map(|i| i["container_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// Processes in the cgroup of container `id` (cgroup v1 or v2).
fn processes_of(id: &str) -> usize {
    ["/sys/fs/cgroup/pids/univrs", "/sys/fs/cgroup/univrs"]
        .iter()
        .filter_map(|root| std::fs::read_to_string(format!("{root}/{id}/cgroup.procs")).ok())
        .map(|procs| procs.lines().count())
        .max()
        .unwrap_or(0)
}

/// Real containers (youki) from the test registry: `ui deploy`, `ui logs`,
/// and a `kill -9` of the daemon that leaves exactly the same containers
/// running once it is back.
#[cfg(target_os = "linux")]
#[test]
fn real_containers_outlive_a_killed_daemon() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config_dir = tmp.path().join("config");
    let data = tmp.path().join("data");
    let reg = registry();
    let args = ["--runtime", "youki", "--insecure-registry", reg.as_str()];
    let daemon = start_daemon_with(&data, &args);
    let server = daemon.url.clone();
    ui_ok(&config_dir, &server, &["init"]);

    let sleeper = tmp.path().join("sleeper.yaml");
    std::fs::write(
        &sleeper,
        format!("name: sleeper\nreplicas: 3\ncontainers:\n  - name: main\n    image: {reg}/test/busybox:1\n    command: [sleep, '3600']\n"),
    )
    .expect("writing the manifest");
    let echo = tmp.path().join("echo.yaml");
    std::fs::write(
        &echo,
        format!("name: echo\nrestart_policy: Never\ncontainers:\n  - name: main\n    image: {reg}/test/busybox:1\n    command: [echo, hello from a real container]\n"),
    )
    .expect("writing the manifest");
    ui_ok(
        &config_dir,
        &server,
        &[
            "deploy",
            sleeper.to_str().expect("utf-8"),
            "--timeout",
            "60",
        ],
    );
    ui_ok(
        &config_dir,
        &server,
        &["deploy", echo.to_str().expect("utf-8"), "--no-wait"],
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = ui_ok(&config_dir, &server, &["logs", "echo"]);
        if logs.contains("hello from a real container") {
            break;
        }
        assert!(Instant::now() < deadline, "ui logs echo: {logs}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let before = container_ids(&config_dir, &server, "sleeper");
    assert_eq!(before.len(), 3, "{before:?}");
    daemon.kill(); // SIGKILL: no chance to clean up
    for id in &before {
        assert_eq!(
            processes_of(id),
            1,
            "container {id} runs on without the daemon"
        );
    }

    let daemon = start_daemon_with(&data, &args);
    let server = daemon.url.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let after = container_ids(&config_dir, &server, "sleeper");
        if after == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart: {after:?}, before: {before:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Settled: still exactly those three, each one process, nothing else started.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(container_ids(&config_dir, &server, "sleeper"), before);
    let on_disk = std::fs::read_dir(data.join("runtime/containers"))
        .expect("containers dir")
        .count();
    assert_eq!(
        on_disk, 4,
        "3 sleepers and the finished echo, no duplicates"
    );
    for id in &before {
        assert_eq!(processes_of(id), 1, "container {id}");
    }
    let logs = ui_ok(&config_dir, &server, &["logs", "echo"]);
    assert!(logs.contains("hello from a real container"), "{logs}");

    ui_ok(&config_dir, &server, &["delete", "sleeper"]);
    ui_ok(&config_dir, &server, &["delete", "echo"]);
    // Removed for good: no process, and no directory (mount) left behind.
    let deadline = Instant::now() + Duration::from_secs(30);
    let containers = data.join("runtime/containers");
    while before.iter().any(|id| processes_of(id) > 0)
        || std::fs::read_dir(&containers).map_or(0, |d| d.count()) > 0
    {
        assert!(
            Instant::now() < deadline,
            "containers still there after delete"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
