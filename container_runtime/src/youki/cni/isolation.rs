//! Owners kept apart on a node's bridge (issue 16 §6, SPEC §9): an instance
//! accepts connections from instances of its own owner, and from anyone on
//! its published ports, and from no other instance.
//!
//! Frames between two instances on the bridge cross the host's `FORWARD`
//! chain (`br_netfilter`, which [`apply`] makes sure is on). One jump at the
//! head of `FORWARD` for traffic from the bridge to the bridge goes to
//! `UNIVRS-ISO-<bridge>`, which lets replies (conntrack `ESTABLISHED`) and
//! connections to published ports (conntrack `DNAT`) go on, then sends a
//! packet for each instance address to its owner's chain:
//!
//! ```text
//! -A UNIVRS-ISO-univrs0 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
//! -A UNIVRS-ISO-univrs0 -m conntrack --ctstate DNAT -j RETURN
//! -A UNIVRS-ISO-univrs0 -d 10.88.0.2/32 -m comment --comment univrs-id:u-… -j UNIVRS-O-<owner>
//! -A UNIVRS-O-<owner> -s 10.88.0.3/32 -m comment --comment univrs-id:u-… -j RETURN
//! -A UNIVRS-O-<owner> -j REJECT
//! ```
//!
//! `RETURN` goes on to the plugins' own rules (`CNI-FORWARD` accepts);
//! `REJECT` refuses at once. An owner's chain is named after the first 72
//! bits of its key (`UNIVRS-O-` and 18 hex digits, within iptables' 28
//! characters): making a key that shares them is out of reach. Every rule of
//! an instance carries its container id in a comment, and DEL removes
//! exactly those (and the owner's chain with its last instance), also after
//! a daemon restart: the rules outlive the daemon, like the plugins'.
//!
//! Containers without an owner (the label `univrs.io/owner`, which the
//! orchestrator always sets) are not isolated. An operator can turn the
//! isolation off (`CniConfig::isolate_owners`, the daemon's
//! `--allow-traffic-between-owners`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use tracing::warn;

use super::iptables::{iptables, iptables_restore};
use super::{CniConfig, CniError, Result};

/// The dispatch chain of `bridge` (at most 25 bytes: the bridge name is at
/// most 15).
pub fn chain(bridge: &str) -> String {
    format!("UNIVRS-ISO-{bridge}")
}

/// Hex digits of an owner's key in its chain's name.
const OWNER_DIGITS: usize = 18;

/// The chain of the owner whose key is `owner` (lowercase hex).
fn owner_chain(owner: &str) -> Result<String> {
    let ok = owner.len() >= OWNER_DIGITS
        && owner
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok {
        return Err(failed(
            "owner",
            format!("{owner:?} is not an owner's key in lowercase hex"),
        ));
    }
    Ok(format!("UNIVRS-O-{}", &owner[..OWNER_DIGITS]))
}

/// The comment on every rule of `container_id` (no spaces or quotes, so
/// that `iptables -S` prints it as one word, quoted or not).
fn comment(container_id: &str) -> String {
    format!("univrs-id:{container_id}")
}

fn failed(step: &str, why: String) -> CniError {
    CniError::InvalidSetting {
        field: "owner isolation",
        reason: format!("{step}: {why}"),
    }
}

/// Held while owner chains are made, filled and removed: two instances of
/// one owner starting, or one starting while the last one goes, would
/// otherwise both make the chain, or fill one being removed. Holds the owner
/// chains known to exist (made or seen by this process, and not removed by
/// it since), so that admitting an instance of a known owner is one
/// `iptables-restore`.
static OWNERS: tokio::sync::Mutex<BTreeSet<String>> =
    tokio::sync::Mutex::const_new(BTreeSet::new());

fn timeout(cfg: &CniConfig) -> Duration {
    cfg.plugin_timeout.min(Duration::from_secs(30))
}

/// The rules at the head of the dispatch chain.
const BASE: [&[&str]; 2] = [
    &[
        "-m",
        "conntrack",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-j",
        "RETURN",
    ],
    &["-m", "conntrack", "--ctstate", "DNAT", "-j", "RETURN"],
];

/// Makes the dispatch chain, its head and the jump to it, if missing (never
/// flushed: the rules of running instances stay across restarts); makes
/// sure bridged traffic goes through iptables. Idempotent; run at every
/// start.
pub async fn apply(cfg: &CniConfig) -> Result<()> {
    let t = timeout(cfg);
    br_netfilter();
    let iso = chain(&cfg.bridge);
    if iptables(&["-w", "-S", &iso], t).await.is_err() {
        iptables(&["-w", "-N", &iso], t)
            .await
            .map_err(|e| failed(&format!("making {iso}"), e))?;
    }
    for (i, rule) in BASE.iter().enumerate() {
        let mut check = vec!["-w", "-C", iso.as_str()];
        check.extend_from_slice(rule);
        if iptables(&check, t).await.is_err() {
            let pos = (i + 1).to_string();
            let mut insert = vec!["-w", "-I", iso.as_str(), pos.as_str()];
            insert.extend_from_slice(rule);
            iptables(&insert, t)
                .await
                .map_err(|e| failed(&format!("filling {iso}"), e))?;
        }
    }
    let jumps = iptables(&jump(cfg, &iso, "-C"), t).await.is_ok();
    if cfg.isolate_owners {
        lead(cfg, t).await?;
    } else if jumps {
        // Turned off: the rules of running instances stay, unused, until
        // their DEL.
        iptables(&jump(cfg, &iso, "-D"), t)
            .await
            .map_err(|e| failed(&format!("removing the jump to {iso}"), e))?;
    }
    Ok(())
}

/// The arguments of `iptables` that check (`-C`), insert at the head
/// (`-I`) or delete (`-D`) the jump from `FORWARD` to `iso`.
fn jump<'a>(cfg: &'a CniConfig, iso: &'a str, op: &'static str) -> Vec<&'a str> {
    let mut args = vec!["-w", op, "FORWARD"];
    if op == "-I" {
        args.push("1");
    }
    args.extend([
        "-i",
        cfg.bridge.as_str(),
        "-o",
        cfg.bridge.as_str(),
        "-j",
        iso,
    ]);
    args
}

/// Whether, in `rules` (what `iptables -S FORWARD` prints), `jump_rule`
/// comes before every rule but other bridges' dispatch jumps: a rule that
/// accepts earlier (the `firewall` plugin's `CNI-FORWARD`, made again at
/// its head when its chain was removed) would let every owner reach every
/// other.
fn leads(rules: &str, jump_rule: &str) -> bool {
    for line in rules.lines().filter(|l| l.starts_with("-A FORWARD ")) {
        if line == jump_rule {
            return true;
        }
        if !line.contains(" -j UNIVRS-ISO-") {
            return false;
        }
    }
    false
}

/// Puts the jump to this bridge's dispatch chain at the head of `FORWARD`
/// unless it leads already ([`leads`]); run at start and before each
/// instance is admitted, since other software inserts at the head too.
async fn lead(cfg: &CniConfig, t: Duration) -> Result<()> {
    let iso = chain(&cfg.bridge);
    let rules = iptables(&["-w", "-S", "FORWARD"], t)
        .await
        .map_err(|e| failed("listing FORWARD", e))?;
    let jump_rule = format!("-A FORWARD -i {b} -o {b} -j {iso}", b = cfg.bridge.as_str());
    if leads(&rules, &jump_rule) {
        return Ok(());
    }
    if rules.lines().any(|l| l == jump_rule) {
        warn!(chain = %iso, "a rule ahead of the owners' isolation in FORWARD: moving it to the head");
        iptables(&jump(cfg, &iso, "-D"), t)
            .await
            .map_err(|e| failed(&format!("moving the jump to {iso}"), e))?;
    }
    iptables(&jump(cfg, &iso, "-I"), t)
        .await
        .map_err(|e| failed(&format!("jumping to {iso} from FORWARD"), e))?;
    Ok(())
}

/// Bridged frames must go through iptables, or no rule here (nor the
/// `firewall` plugin's) sees traffic between instances: turns it on if the
/// module is loaded and it is off, and says loudly when it cannot.
fn br_netfilter() {
    let knob = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    match std::fs::read_to_string(knob) {
        Ok(v) if v.trim() == "1" => {}
        Ok(_) => {
            if let Err(e) = std::fs::write(knob, "1") {
                warn!(error = %e, "cannot turn on {knob}: instances of different owners on this node are NOT kept apart");
            }
        }
        Err(_) => warn!(
            "{knob} is missing (module br_netfilter not loaded; `modprobe br_netfilter`): \
             instances of different owners on this node are NOT kept apart"
        ),
    }
}

/// Lets instances of `owner` reach the instance `container_id` at `addr`,
/// and refuses every other instance: its rules (and its owner's chain, for
/// the owner's first instance here) in one `iptables-restore`, a single
/// transaction — on the path of every bridged instance's start.
pub async fn admit(cfg: &CniConfig, container_id: &str, owner: &str, addr: Ipv4Addr) -> Result<()> {
    let t = timeout(cfg);
    let own = owner_chain(owner)?;
    if cfg.isolate_owners {
        lead(cfg, t).await?;
    }
    let mut known = OWNERS.lock().await;
    let rules = |exists: bool| {
        let note = comment(container_id);
        let iso = chain(&cfg.bridge);
        // A chain declared in `--noflush` input is made, or emptied if it
        // exists: declared only when it does not.
        let make = if exists {
            String::new()
        } else {
            format!(":{own} - [0:0]\n-A {own} -j REJECT\n")
        };
        format!(
            "*filter\n{make}\
             -I {own} 1 -s {addr}/32 -m comment --comment {note} -j RETURN\n\
             -A {iso} -d {addr}/32 -m comment --comment {note} -j {own}\n\
             COMMIT\n"
        )
    };
    let was_known = known.contains(&own);
    let exists = was_known || iptables(&["-w", "-S", &own], t).await.is_ok();
    let mut done = iptables_restore(&rules(exists), t).await;
    if done.is_err() && was_known {
        // Removed behind our back (an operator's flush): look again.
        known.remove(&own);
        let exists = iptables(&["-w", "-S", &own], t).await.is_ok();
        done = iptables_restore(&rules(exists), t).await;
    }
    done.map_err(|e| failed(&format!("admitting {addr} to {own}"), e))?;
    known.insert(own);
    Ok(())
}

/// Removes every rule of `container_id` (found by its comment, deleted by
/// its full specification), then the owner chains left with no instance.
/// Idempotent.
pub async fn release(cfg: &CniConfig, container_id: &str) -> Result<()> {
    let t = timeout(cfg);
    let mut known = OWNERS.lock().await;
    let listing = iptables(&["-w", "-S"], t)
        .await
        .map_err(|e| failed("listing the filter table", e))?;
    let note = comment(container_id);
    let iso = chain(&cfg.bridge);
    let mut owners = Vec::new();
    // Dispatch rules first: an owner chain is deleted only once nothing
    // jumps to it.
    let mut mine: Vec<Vec<&str>> = listing
        .lines()
        // iptables-nft quotes every comment; ours has no space or quote.
        .map(|l| {
            l.split_whitespace()
                .map(|w| w.trim_matches('"'))
                .collect::<Vec<_>>()
        })
        .filter(|w| {
            w.len() > 2 && w[0] == "-A" && w.windows(2).any(|p| p == ["--comment", note.as_str()])
        })
        .filter(|w| w[1] == iso || w[1].starts_with("UNIVRS-O-"))
        .collect();
    mine.sort_by_key(|w| w[1] != iso);
    let mut first: Option<CniError> = None;
    for mut rule in mine {
        if rule[1].starts_with("UNIVRS-O-") {
            owners.push(rule[1].to_owned());
        }
        rule[0] = "-D";
        let mut args = vec!["-w"];
        args.extend(rule);
        if let Err(e) = iptables(&args, t).await {
            first.get_or_insert(failed("removing an instance's rule", e));
        }
    }
    owners.sort();
    owners.dedup();
    for own in owners {
        // Empty but for its REJECT: no instance of that owner is left here.
        let rules = iptables(&["-w", "-S", &own], t).await.unwrap_or_default();
        if rules.lines().filter(|l| l.starts_with("-A ")).count() == 1 {
            let _ = iptables(&["-w", "-F", &own], t).await;
            match iptables(&["-w", "-X", &own], t).await {
                Ok(_) => {
                    known.remove(&own);
                }
                Err(e) => {
                    first.get_or_insert(failed(&format!("removing {own}"), e));
                }
            }
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod lead_tests {
    use super::leads;

    const JUMP: &str = "-A FORWARD -i univrs0 -o univrs0 -j UNIVRS-ISO-univrs0";

    #[test]
    fn the_jump_must_come_before_any_rule_that_accepts() {
        let fresh = format!("-P FORWARD DROP\n{JUMP}\n-A FORWARD -j CNI-FORWARD\n");
        assert!(leads(&fresh, JUMP));
        let behind_other_bridges =
            format!("-P FORWARD DROP\n-A FORWARD -i ucni1 -o ucni1 -j UNIVRS-ISO-ucni1\n{JUMP}\n");
        assert!(leads(&behind_other_bridges, JUMP));
        // Seen on a CI machine: the firewall plugin's chain made again at the head.
        let overtaken = format!(
            "-P FORWARD DROP\n-A FORWARD -m comment --comment \"CNI firewall plugin rules\" \
             -j CNI-FORWARD\n{JUMP}\n"
        );
        assert!(!leads(&overtaken, JUMP));
        assert!(!leads("-P FORWARD DROP\n", JUMP));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_chains_fit_iptables_and_refuse_anything_but_a_key() {
        let key = "ab".repeat(32);
        let c = owner_chain(&key).expect("a key");
        assert_eq!(c, "UNIVRS-O-ababababababababab");
        assert!(c.len() <= 28);
        assert!(chain("univrs-fifteen1").len() <= 28);
        for bad in [
            "",
            "ABABABABABABABABABAB",
            "abab",
            "ab ab-ab;ab/abababababab",
            "zz".repeat(10).as_str(),
        ] {
            assert!(owner_chain(bad).is_err(), "{bad:?}");
        }
    }
}
