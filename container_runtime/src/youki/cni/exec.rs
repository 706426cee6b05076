//! Running one CNI plugin: the configuration on stdin, the `CNI_*`
//! environment, a timeout, and its result or error JSON read back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::process::Command as Process;

use super::plugins::find_plugin;
use super::{CniError, Command, Result};

/// The search path the plugins get for the tools they run (`iptables`).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One invocation of a plugin.
#[derive(Debug)]
pub struct Invocation<'a> {
    /// The plugin directory (`CNI_PATH`; delegated IPAM plugins come from there too).
    pub bin_dir: &'a Path,
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS`.
    pub netns: &'a Path,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// How long the plugin may run.
    pub timeout: Duration,
    /// Run at a lower CPU priority (nice 10), with what it runs: work
    /// beside a container's start that must not slow it down.
    pub background: bool,
}

/// The specification's error JSON.
#[derive(Deserialize)]
struct PluginErrorJson {
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// The plugin's type in a configuration (`"type"`).
pub fn plugin_type(config: &Value) -> Result<&str> {
    config["type"]
        .as_str()
        .ok_or_else(|| CniError::InvalidSetting {
            field: "type",
            reason: format!("a plugin configuration has no \"type\": {config}"),
        })
}

/// Most of a plugin's output we read (a result or an error is a few KiB).
const MAX_OUTPUT: u64 = 4 << 20;

/// A memory file (close-on-exec) holding `bytes`, positioned at its start.
pub(super) fn memfd(name: &std::ffi::CStr, bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, Write};
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file)
}

/// What a plugin wrote to `file`, up to [`MAX_OUTPUT`].
fn read_back(mut file: std::fs::File) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek};
    file.rewind()?;
    let mut bytes = Vec::new();
    file.take(MAX_OUTPUT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Runs the plugin named by `config["type"]` with `config` on stdin. Returns
/// its result (`Value::Null` when it printed nothing, as DEL and CHECK do).
pub async fn invoke(inv: &Invocation<'_>, config: &Value) -> Result<Value> {
    let plugin = plugin_type(config)?.to_owned();
    let path: PathBuf =
        find_plugin(inv.bin_dir, &plugin).ok_or_else(|| CniError::PluginsMissing {
            dir: inv.bin_dir.to_owned(),
            missing: vec![plugin.clone()],
        })?;
    let stdin_bytes = serde_json::to_vec(config).map_err(|e| CniError::InvalidSetting {
        field: "config",
        reason: format!("serialising the configuration of {plugin}: {e}"),
    })?;
    let command = inv.command;
    let spawn_error = |source| CniError::Spawn {
        plugin: plugin.clone(),
        command,
        source,
    };
    // The plugin's stdin, stdout and stderr are memory files, not pipes: a
    // pipe ends only when every copy of its writing end is closed, and the
    // daemon forks for libcontainer (see `worker`) while plugins run, so a
    // fork taken while we held a pipe's end would keep the plugin waiting
    // for the end of its configuration, or us for the end of its answer.
    let stdin = memfd(c"cni-stdin", &stdin_bytes).map_err(spawn_error)?;
    let stdout = memfd(c"cni-stdout", &[]).map_err(spawn_error)?;
    let stderr = memfd(c"cni-stderr", &[]).map_err(spawn_error)?;
    let mut process = Process::new(&path);
    if inv.background {
        // SAFETY: setpriority is async-signal-safe, and touches nothing of
        // the parent's between fork and exec.
        #[allow(unsafe_code)]
        unsafe {
            process.pre_exec(|| {
                if libc::setpriority(libc::PRIO_PROCESS, 0, 10) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = process
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        )
        .env("CNI_COMMAND", command.as_str())
        .env("CNI_CONTAINERID", inv.container_id)
        .env("CNI_NETNS", inv.netns)
        .env("CNI_IFNAME", inv.ifname)
        .env("CNI_PATH", inv.bin_dir)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout.try_clone().map_err(spawn_error)?))
        .stderr(Stdio::from(stderr.try_clone().map_err(spawn_error)?))
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let status = match tokio::time::timeout(inv.timeout, child.wait()).await {
        Ok(status) => status.map_err(spawn_error)?,
        // Dropping the child kills it.
        Err(_) => {
            return Err(CniError::Timeout {
                plugin,
                command,
                after: inv.timeout,
            })
        }
    };
    let output = std::process::Output {
        status,
        stdout: read_back(stdout).map_err(spawn_error)?,
        stderr: read_back(stderr).map_err(spawn_error)?,
    };
    if !output.status.success() {
        if let Ok(err) = serde_json::from_slice::<PluginErrorJson>(&output.stdout) {
            return Err(CniError::Plugin {
                plugin,
                command,
                code: err.code,
                msg: err.msg,
                details: err.details,
            });
        }
        let text = format!(
            "{} {}",
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return Err(CniError::PluginFailed {
            plugin,
            command,
            status: output.status,
            output: text.trim().to_owned(),
        });
    }
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&output.stdout).map_err(|e| CniError::BadResult {
        plugin,
        command,
        reason: format!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout).trim()
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::*;

    /// A fake plugin `name` in `dir` running `script` (sh).
    fn fake(dir: &Path, name: &str, script: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn inv<'a>(dir: &'a Path, netns: &'a Path, timeout: Duration) -> Invocation<'a> {
        Invocation {
            bin_dir: dir,
            command: Command::Add,
            container_id: "c1",
            netns,
            ifname: "eth0",
            timeout,
            background: false,
        }
    }

    #[tokio::test]
    async fn a_background_plugin_runs_ten_steps_nicer() {
        let dir = tempfile::tempdir().expect("tempdir");
        fake(
            dir.path(),
            "nice",
            "cat >/dev/null; echo \"{\\\"nice\\\": $(nice)}\"",
        );
        let netns = Path::new("/run/netns/x");
        let mut i = inv(dir.path(), netns, Duration::from_secs(10));
        let conf = json!({"type": "nice"});
        let normal = invoke(&i, &conf).await.expect("runs");
        i.background = true;
        let background = invoke(&i, &conf).await.expect("runs");
        let level = |v: &serde_json::Value| v["nice"].as_i64().expect("a niceness");
        assert_eq!(
            level(&background),
            (level(&normal) + 10).min(19),
            "{normal} {background}"
        );
    }

    #[tokio::test]
    async fn the_plugin_gets_its_config_on_stdin_and_the_cni_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seen = dir.path().join("seen");
        fake(
            dir.path(),
            "echo",
            &format!(
                "env | grep ^CNI_ | sort > {0}; cat >> {0}; echo '{{\"ips\": []}}'",
                seen.display()
            ),
        );
        let netns = Path::new("/run/netns/x");
        let out = invoke(
            &inv(dir.path(), netns, Duration::from_secs(10)),
            &json!({"type": "echo", "k": 1}),
        )
        .await
        .expect("runs");
        assert_eq!(out, json!({"ips": []}));
        let seen = std::fs::read_to_string(&seen).expect("seen");
        let expected = format!(
            "CNI_COMMAND=ADD\nCNI_CONTAINERID=c1\nCNI_IFNAME=eth0\nCNI_NETNS=/run/netns/x\nCNI_PATH={}\n{{\"k\":1,\"type\":\"echo\"}}",
            dir.path().display()
        );
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn the_error_json_becomes_a_named_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        fake(
            dir.path(),
            "bad",
            r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"invalid network config","details":"no bridge"}'; exit 1"#,
        );
        let err = invoke(
            &inv(dir.path(), Path::new("/x"), Duration::from_secs(10)),
            &json!({"type": "bad"}),
        )
        .await
        .expect_err("fails");
        assert_eq!(
            err.to_string(),
            "CNI plugin bad failed ADD (code 7): invalid network config (no bridge)"
        );
    }

    #[tokio::test]
    async fn a_failure_without_error_json_keeps_what_it_printed() {
        let dir = tempfile::tempdir().expect("tempdir");
        fake(dir.path(), "crash", "echo panic: oops >&2; exit 2");
        match invoke(
            &inv(dir.path(), Path::new("/x"), Duration::from_secs(10)),
            &json!({"type": "crash"}),
        )
        .await
        {
            Err(CniError::PluginFailed {
                plugin,
                output,
                status,
                ..
            }) => {
                assert_eq!(plugin, "crash");
                assert_eq!(output, "panic: oops");
                assert_eq!(status.code(), Some(2));
            }
            other => panic!("expected PluginFailed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_hung_plugin_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The plugin hangs; the timeout, not the sleep, ends the call.
        fake(dir.path(), "hang", "exec sleep 600");
        let started = std::time::Instant::now();
        match invoke(
            &inv(dir.path(), Path::new("/x"), Duration::from_millis(200)),
            &json!({"type": "hang"}),
        )
        .await
        {
            Err(CniError::Timeout { plugin, .. }) => assert_eq!(plugin, "hang"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_missing_plugin_or_type_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let i = inv(dir.path(), Path::new("/x"), Duration::from_secs(1));
        let err = invoke(&i, &json!({"type": "bridge"}))
            .await
            .expect_err("missing");
        assert!(err.to_string().contains("bridge"), "{err}");
        let err = invoke(&i, &json!({"name": "x"}))
            .await
            .expect_err("no type");
        assert!(err.to_string().contains("type"), "{err}");
    }
}
