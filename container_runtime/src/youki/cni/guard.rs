//! Keeping instances off the node itself (issue 16, SPEC §9): an instance on
//! the bridge can open no connection to the node — not its gossip port, not
//! its API or node-agent endpoint, nothing that listens on any of its
//! addresses.
//!
//! Traffic from an instance to the node enters the host's `INPUT` chain on
//! the bridge, whichever of the node's addresses it is sent to (the gateway,
//! or the host's own address routed locally). One jump at the head of
//! `INPUT` for the bridge goes to the chain `UNIVRS-IN-<bridge>`, which
//! accepts replies to connections the node opened (probes, the node talking
//! to its instances) and rejects everything else, so that a connect fails at
//! once rather than hanging. Published ports are not affected: `portmap`
//! rewrites their destination in `PREROUTING`, so those packets are
//! forwarded, never delivered to the node. The chain and the jump stay when
//! the daemon stops, like the plugins' shared chains: instances it leaves
//! running stay kept off.
//!
//! An operator can let instances reach the node (`CniConfig::guard_node`
//! false): the jump and chain are then removed at start.

use std::time::Duration;

use super::iptables::{iptables, iptables_restore};
use super::{CniConfig, CniError, Result};

/// The chain of `bridge`'s guard (at most 28 bytes: the bridge name is at
/// most 15).
pub fn chain(bridge: &str) -> String {
    format!("UNIVRS-IN-{bridge}")
}

fn failed(step: &str, why: String) -> CniError {
    CniError::InvalidSetting {
        field: "node guard",
        reason: format!("{step}: {why}"),
    }
}

/// Sets up (or, when `cfg.guard_node` is false, removes) the guard of
/// `cfg.bridge`. Idempotent; run at every start.
pub async fn apply(cfg: &CniConfig) -> Result<()> {
    let chain = chain(&cfg.bridge);
    let t = cfg.plugin_timeout.min(Duration::from_secs(30));
    let jump = ["-i", cfg.bridge.as_str(), "-j", chain.as_str()];
    let has_jump = {
        let mut args = vec!["-w", "-C", "INPUT"];
        args.extend(jump);
        iptables(&args, t).await.is_ok()
    };
    if !cfg.guard_node {
        if has_jump {
            let mut args = vec!["-w", "-D", "INPUT"];
            args.extend(jump);
            iptables(&args, t)
                .await
                .map_err(|e| failed("removing the jump", e))?;
        }
        // Absent already is fine.
        let _ = iptables(&["-w", "-F", &chain], t).await;
        let _ = iptables(&["-w", "-X", &chain], t).await;
        return Ok(());
    }
    // Made, or emptied and refilled when a daemon made it before, in one
    // transaction: daemons starting together never leave it half filled.
    let rules = format!(
        "*filter\n:{chain} - [0:0]\n\
         -A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
         -A {chain} -j REJECT\nCOMMIT\n"
    );
    iptables_restore(&rules, t)
        .await
        .map_err(|e| failed("making the chain", e))?;
    if !has_jump {
        let mut args = vec!["-w", "-I", "INPUT", "1"];
        args.extend(jump);
        iptables(&args, t)
            .await
            .map_err(|e| failed("jumping to the chain from INPUT", e))?;
    }
    Ok(())
}
