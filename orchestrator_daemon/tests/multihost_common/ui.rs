//! Driving the lab as a user would, with the `ui` binary; and searching
//! the hosts' files byte by byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The passphrase of every test identity.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// The `ui` binary `cargo test --workspace` builds next to the daemon.
pub fn ui_bin(daemon: &Path) -> PathBuf {
    let path = daemon.with_file_name(format!("ui{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p ui_cli`)",
        path.display()
    );
    path
}

/// A user of `ui`, with a config directory of their own, talking to `server`.
pub struct User {
    pub bin: PathBuf,
    pub config: PathBuf,
    pub server: String,
}

impl User {
    pub fn new(daemon: &Path, config: PathBuf, server: String) -> Self {
        Self {
            bin: ui_bin(daemon),
            config,
            server,
        }
    }

    /// The same user, talking to `server`.
    pub fn on(&self, server: String) -> Self {
        Self {
            bin: self.bin.clone(),
            config: self.config.clone(),
            server,
        }
    }

    /// Runs `ui ARGS`, printing what it said.
    pub fn ui(&self, args: &[&str]) -> Output {
        let out = Command::new(&self.bin)
            .arg("--config-dir")
            .arg(&self.config)
            .args(["--server", &self.server])
            .args(args)
            .env("UNIVRS_PASSPHRASE", PASSPHRASE)
            .env_remove("UNIVRS_SERVER")
            .env_remove("UNIVRS_CONFIG_DIR")
            .stdin(Stdio::null())
            .output()
            .expect("running ui");
        eprintln!(
            "ui {}: {}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `ui ARGS` and expects success; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ui(args);
        assert!(out.status.success(), "ui {} failed", args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ui ARGS -o json`.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// The workload's status and its running instances' node ids.
    pub fn status(&self, name: &str) -> (Value, Vec<String>) {
        let v = self.json(&["status", name]);
        let nodes = v["instances"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|i| i["status"] == "Running")
                    .filter_map(|i| i["node_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (v["workload"].clone(), nodes)
    }
}
