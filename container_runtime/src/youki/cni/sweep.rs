//! Removing the masquerade rules that `bridge` 1.1.1 cannot find on DEL.
//!
//! `bridge` learns which addresses' rules to remove from the interface
//! inside the namespace: when the namespace is gone before DEL, or the
//! address was removed inside it, its DEL succeeds and leaves the rules
//! (a `CNI-…` chain in `nat` and the `POSTROUTING` jump to it, commented
//! `name: "NETWORK" id: "CONTAINER"`). Exact cleanup needs them gone, so
//! after DEL we remove exactly the rules carrying that comment, by their
//! full specification (never by position, which other attachments shift).

use std::time::Duration;

use tracing::{info, warn};

/// Deletes the `POSTROUTING` jumps commented for `network`/`container_id`,
/// then the chains they jump to. Returns how many jumps were removed.
pub(super) async fn sweep_masquerade(
    network: &str,
    container_id: &str,
    timeout: Duration,
) -> usize {
    let comment = format!("name: \"{network}\" id: \"{container_id}\"");
    // How iptables -S prints it.
    let printed = format!("--comment \"{}\"", comment.replace('"', "\\\""));
    let Some(listing) = iptables(&["-w", "-t", "nat", "-S", "POSTROUTING"], timeout).await else {
        return 0;
    };
    let mut removed = 0;
    for line in listing
        .lines()
        .filter(|l| l.starts_with("-A POSTROUTING ") && l.contains(&printed))
    {
        let tokens: Vec<&str> = line.split(' ').collect();
        let after = |flag: &str| {
            tokens
                .iter()
                .position(|t| *t == flag)
                .and_then(|i| tokens.get(i + 1))
                .copied()
        };
        let (Some(source), Some(chain)) = (after("-s"), after("-j")) else {
            continue;
        };
        if !chain.starts_with("CNI-") || chain.starts_with("CNI-HOSTPORT") {
            continue;
        }
        let delete = [
            "-w",
            "-t",
            "nat",
            "-D",
            "POSTROUTING",
            "-s",
            source,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            chain,
        ];
        if iptables(&delete, timeout).await.is_some() {
            removed += 1;
            for args in [
                ["-w", "-t", "nat", "-F", chain],
                ["-w", "-t", "nat", "-X", chain],
            ] {
                iptables(&args, timeout).await;
            }
        }
    }
    if removed > 0 {
        info!(
            network,
            container = container_id,
            removed,
            "removed masquerade rules bridge's DEL left"
        );
    }
    removed
}

/// Runs iptables; its stdout, or none (logged) when it fails.
async fn iptables(args: &[&str], timeout: Duration) -> Option<String> {
    super::iptables::iptables(args, timeout)
        .await
        .map_err(|e| warn!(error = %e, "iptables failed"))
        .ok()
}
