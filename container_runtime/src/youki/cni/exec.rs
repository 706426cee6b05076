//! Running one CNI plugin: the configuration on stdin, the `CNI_*`
//! environment, a timeout, and its result or error JSON read back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
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
    let mut child = Process::new(&path)
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
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| CniError::Spawn {
            plugin: plugin.clone(),
            command,
            source,
        })?;
    let mut stdin = child.stdin.take();
    let run = async move {
        if let Some(mut stdin) = stdin.take() {
            // A plugin that exits without reading its stdin breaks the pipe;
            // its exit status and output then say why.
            if let Err(e) = stdin.write_all(&stdin_bytes).await {
                tracing::debug!(%e, "writing a CNI plugin's configuration");
            }
        }
        child.wait_with_output().await
    };
    let output = match tokio::time::timeout(inv.timeout, run).await {
        Ok(out) => out.map_err(|source| CniError::Spawn {
            plugin: plugin.clone(),
            command,
            source,
        })?,
        // Dropping the future drops the child, which kills it.
        Err(_) => {
            return Err(CniError::Timeout {
                plugin,
                command,
                after: inv.timeout,
            })
        }
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
