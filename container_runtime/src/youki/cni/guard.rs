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
//! to its instances) and queries to the node's DNS server on the gateway
//! (port 53, UDP and TCP), and rejects everything else, so that a connect
//! fails at once rather than hanging. Published ports are not affected: `portmap`
//! rewrites their destination in `PREROUTING`, so those packets are
//! forwarded, never delivered to the node. The chain and the jump stay when
//! the daemon stops, like the plugins' shared chains: instances it leaves
//! running stay kept off.
//!
//! An operator can let instances reach the node (`CniConfig::guard_node`
//! false): the jump and chain are then removed at start.
//!
//! Published ports from other hosts: a connection to a node port that
//! `portmap` sends on to an instance crosses the host's `FORWARD` chain,
//! whose policy Docker sets to DROP, and the `firewall` plugin accepts only
//! what an instance sends and the replies it gets. A jump at the head of
//! `FORWARD` for traffic out to the bridge goes to `UNIVRS-FWD-<bridge>`,
//! which accepts connections whose destination was rewritten (conntrack
//! state `DNAT`): those to published ports, and replies; traffic between
//! the bridge's own instances and from the cluster overlay goes on to their
//! own rules (owner isolation, `super::overlay`), and anything else is
//! dropped: a host that routes the instances' subnet through the node
//! reaches no instance directly.

use std::time::Duration;

use super::iptables::{iptables, iptables_restore};
use super::{CniConfig, CniError, Result};

/// The chain of `bridge`'s guard (at most 28 bytes: the bridge name is at
/// most 15).
pub fn chain(bridge: &str) -> String {
    format!("UNIVRS-IN-{bridge}")
}

/// The chain accepting connections to `bridge`'s published ports.
pub fn forward_chain(bridge: &str) -> String {
    format!("UNIVRS-FWD-{bridge}")
}

fn failed(step: &str, why: String) -> CniError {
    CniError::InvalidSetting {
        field: "node guard",
        reason: format!("{step}: {why}"),
    }
}

/// A chain of the filter table and the jump to it from a built-in chain.
pub(super) struct Hook<'a> {
    pub(super) from: &'a str,
    /// `-i BRIDGE` or `-o BRIDGE`.
    pub(super) direction: &'a str,
    /// The interface matched (a bridge, or the overlay's tunnel).
    pub(super) bridge: &'a str,
    pub(super) chain: String,
    /// The chain's rules, after `-A CHAIN`.
    pub(super) rules: &'a [&'a str],
}

impl Hook<'_> {
    fn jump<'s>(&'s self, op: &'s str) -> Vec<&'s str> {
        let mut args = vec!["-w", op, self.from];
        if op == "-I" {
            args.push("1");
        }
        args.extend([self.direction, self.bridge, "-j", self.chain.as_str()]);
        args
    }

    /// Makes (or remakes) the chain, then jumps to it if nothing does yet.
    /// The chain is filled in one transaction: daemons starting together
    /// never leave it half filled.
    pub(super) async fn ensure(&self, t: Duration) -> Result<()> {
        let mut rules = format!("*filter\n:{} - [0:0]\n", self.chain);
        for r in self.rules {
            rules.push_str(&format!("-A {} {r}\n", self.chain));
        }
        rules.push_str("COMMIT\n");
        iptables_restore(&rules, t)
            .await
            .map_err(|e| failed(&format!("making {}", self.chain), e))?;
        if iptables(&self.jump("-C"), t).await.is_err() {
            iptables(&self.jump("-I"), t)
                .await
                .map_err(|e| failed(&format!("jumping to {} from {}", self.chain, self.from), e))?;
        }
        Ok(())
    }

    /// Removes the jump and the chain; absent already is fine.
    async fn remove(&self, t: Duration) -> Result<()> {
        if iptables(&self.jump("-C"), t).await.is_ok() {
            iptables(&self.jump("-D"), t)
                .await
                .map_err(|e| failed(&format!("removing the jump to {}", self.chain), e))?;
        }
        let _ = iptables(&["-w", "-F", &self.chain], t).await;
        let _ = iptables(&["-w", "-X", &self.chain], t).await;
        Ok(())
    }
}

/// Sets up the forwarding of `cfg.bridge`'s published ports and its guard
/// (or, when `cfg.guard_node` is false, removes the guard). Idempotent; run
/// at every start.
pub async fn apply(cfg: &CniConfig) -> Result<()> {
    let t = cfg.plugin_timeout.min(Duration::from_secs(30));
    // Between instances of this node: owner isolation and the plugins'
    // rules decide. From the overlay: its own chain decides. From anywhere
    // else (a host on the node's network that routes the instances' subnet
    // through the node): nothing but published ports and replies.
    let from_bridge = format!("-i {} -j RETURN", cfg.bridge);
    let from_overlay = format!("-i {}+ -j RETURN", super::overlay::DEVICE_PREFIX);
    Hook {
        from: "FORWARD",
        direction: "-o",
        bridge: &cfg.bridge,
        chain: forward_chain(&cfg.bridge),
        rules: &[
            "-m conntrack --ctstate DNAT -j ACCEPT",
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            &from_bridge,
            &from_overlay,
            "-j DROP",
        ],
    }
    .ensure(t)
    .await?;
    let gateway = cfg.subnet.gateway();
    let dns_udp = format!("-d {gateway}/32 -p udp --dport 53 -j ACCEPT");
    let dns_tcp = format!("-d {gateway}/32 -p tcp --dport 53 -j ACCEPT");
    let guard = Hook {
        from: "INPUT",
        direction: "-i",
        bridge: &cfg.bridge,
        chain: chain(&cfg.bridge),
        rules: &[
            "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            &dns_udp,
            &dns_tcp,
            "-j REJECT",
        ],
    };
    if cfg.guard_node {
        guard.ensure(t).await
    } else {
        guard.remove(t).await
    }
}
