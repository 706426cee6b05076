//! Running `iptables` (the filter and nat tables the plugins use too).

use std::time::Duration;

use tokio::process::Command as Process;

/// Runs iptables with `args`; its stdout, or why it failed (its stderr, or
/// that it could not be run or did not finish within `timeout`).
pub(super) async fn iptables(args: &[&str], timeout: Duration) -> Result<String, String> {
    let run = Process::new("iptables")
        .args(args)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(out)) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Ok(Ok(out)) => Err(format!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(Err(e)) => Err(format!("running iptables: {e}")),
        Err(_) => Err(format!("iptables did not finish within {timeout:?}")),
    }
}

/// Applies `rules` (the `iptables-save` format) with `iptables-restore
/// --noflush` in one transaction: a user chain declared there is emptied and
/// refilled at once, so that no packet sees it half made.
pub(super) async fn iptables_restore(rules: &str, timeout: Duration) -> Result<(), String> {
    // From a memory file rather than a pipe, for the reason `exec` gives.
    let input = super::exec::memfd(c"iptables-restore", rules.as_bytes())
        .map_err(|e| format!("preparing iptables-restore's input: {e}"))?;
    let run = Process::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(std::process::Stdio::from(input))
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!(
            "iptables-restore: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(Err(e)) => Err(format!("running iptables-restore: {e}")),
        Err(_) => Err(format!(
            "iptables-restore did not finish within {timeout:?}"
        )),
    }
}
