//! The cluster network between nodes (issue 16 §4, SPEC §9): instances on
//! different nodes reach each other by address, encrypted.
//!
//! **Choice.** Every node holds a subnet of the cluster range (handed out at
//! admission and listed in the control plane's signed member list). The
//! overlay is a WireGuard tunnel, one interface per node, routed at layer 3:
//! a route sends each other member's subnet into the tunnel, and the
//! member's WireGuard peer entry (its key, its address, `allowed_ip` = its
//! subnet) sends it on to that node. VXLAN from the kernel was the other
//! candidate, but its frames would still need encrypting, and this kernel has
//! neither a WireGuard module nor ESP (`ip xfrm state add … proto esp`
//! answers "Requested type not found"): a userspace WireGuard, boringtun's
//! device over a TUN interface, gives the tunnel, the encryption, the
//! handshake with forward secrecy, replay protection and the check that a
//! packet's inner source lies in its sender's subnet, all in one
//! well-reviewed implementation. What it costs is measured by the `network`
//! bench (`cargo bench -p container_runtime --bench network`).
//!
//! **Keys.** A node's WireGuard key is its Ed25519 node key in its X25519
//! form (the daemon converts; see `orchestrator_daemon::overlay`): the key
//! the member list names is the key the tunnel authenticates, so no other
//! key has to be handed around, and a removed member's key is dropped from
//! every peer list.
//!
//! **Forwarding entries follow membership.** [`Overlay::apply`] takes the
//! wanted peers and changes only what differs: a peer gone is removed (its
//! route with it), a new one added, a changed one removed and added again.
//!
//! **Filtering.** A packet from the tunnel can only come from a member, with
//! a source inside that member's subnet. On top:
//! - instances are kept off this node through the tunnel too
//!   (`UNIVRS-OVL-IN`: replies only, like the bridge's guard);
//! - a connection from another node's instance to this node's instance
//!   (`UNIVRS-OVL-FWD`) is accepted only when both have the same owner, as
//!   the control plane's directory says ([`Overlay::allow_owners`]), or when
//!   owner isolation is off (`--allow-traffic-between-owners`); replies to
//!   connections this node's instances opened always pass;
//! - traffic from the cluster range to the cluster range is not
//!   masqueraded (a `RETURN` at the head of `nat POSTROUTING`), so that an
//!   instance sees the real address of another node's instance.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::IntoRawFd;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command as Process;
use tracing::{info, warn};

use super::guard::Hook;
use super::iptables::{iptables, iptables_restore};
use super::{CniError, Ipv4Subnet, Result};

/// The X25519 keys the tunnel takes.
pub use boringtun::x25519;

/// The tunnel's default UDP port (WireGuard's own).
pub const DEFAULT_OVERLAY_PORT: u16 = 51820;

/// The tunnel's MTU: a 1500-byte underlay minus WireGuard's 80 bytes. The
/// bridge and the instances' interfaces take it too, so that no packet
/// needs fragmenting on its way.
pub const OVERLAY_MTU: u32 = 1420;

/// Seconds between keepalives, so that a peer behind a NAT stays reachable.
const KEEPALIVE_SECONDS: u16 = 25;

/// Settings of a node's end of the overlay.
#[derive(Clone, Debug)]
pub struct OverlaySettings {
    /// The tunnel interface (at most 15 bytes, unique per host).
    pub device: String,
    /// This node's subnet.
    pub subnet: Ipv4Subnet,
    /// The cluster range.
    pub cidr: Ipv4Subnet,
    /// The UDP port the tunnel listens on.
    pub port: u16,
    /// Whether connections from other nodes' instances are refused (owner
    /// isolation on; see the module doc).
    pub isolate_owners: bool,
}

/// One other member, as the tunnel must know it.
#[derive(Clone, PartialEq, Eq)]
pub struct OverlayPeer {
    /// Its WireGuard (X25519) public key.
    pub public_key: [u8; 32],
    /// Where its tunnel listens.
    pub endpoint: SocketAddr,
    /// Its subnet: the only sources accepted from it, the only
    /// destinations sent to it.
    pub subnet: Ipv4Subnet,
}

impl std::fmt::Debug for OverlayPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlayPeer")
            .field("public_key", &hex::encode(self.public_key))
            .field("endpoint", &self.endpoint)
            .field("subnet", &self.subnet)
            .finish()
    }
}

fn failed(step: &str, why: impl std::fmt::Display) -> CniError {
    CniError::InvalidSetting {
        field: "cluster overlay",
        reason: format!("{step}: {why}"),
    }
}

/// Runs `ip` with `args`; its stdout, or why it failed.
async fn ip(args: &[&str]) -> std::result::Result<String, String> {
    let run = Process::new("ip").args(args).kill_on_drop(true).output();
    match tokio::time::timeout(Duration::from_secs(10), run).await {
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
        Ok(Ok(out)) => Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(Err(e)) => Err(format!("running ip: {e}")),
        Err(_) => Err(format!("ip {} did not finish within 10 s", args.join(" "))),
    }
}

/// A node's end of the overlay: the WireGuard device and what it routes.
pub struct Overlay {
    settings: OverlaySettings,
    /// The device's threads; dropped (they stop) with the overlay.
    _device: boringtun::device::DeviceHandle,
    /// Our end of the device's configuration socket (WireGuard's UAPI).
    control: tokio::sync::Mutex<tokio::net::UnixStream>,
    /// The peers as configured, by public key.
    peers: tokio::sync::Mutex<BTreeMap<[u8; 32], OverlayPeer>>,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Overlay {
    /// Makes the tunnel with the node's WireGuard `private_key` (X25519), no
    /// peers yet, and its filtering. A device of the same name left by an
    /// earlier run is replaced. Call before anything forks (its threads
    /// start here).
    pub async fn start(settings: OverlaySettings, private_key: [u8; 32]) -> Result<Self> {
        let dev = settings.device.clone();
        let _ = ip(&["link", "del", &dev]).await;
        let (ours, theirs) =
            std::os::unix::net::UnixStream::pair().map_err(|e| failed("control socket", e))?;
        let config = boringtun::device::DeviceConfig {
            n_threads: 2,
            use_connected_socket: true,
            use_multi_queue: true,
            // The device owns this end from now on.
            uapi_fd: theirs.into_raw_fd(),
        };
        let device = boringtun::device::DeviceHandle::new(&dev, config)
            .map_err(|e| failed(&format!("making the WireGuard device {dev}"), e))?;
        ours.set_nonblocking(true)
            .map_err(|e| failed("control socket", e))?;
        let control =
            tokio::net::UnixStream::from_std(ours).map_err(|e| failed("control socket", e))?;
        let overlay = Self {
            settings,
            _device: device,
            control: tokio::sync::Mutex::new(control),
            peers: tokio::sync::Mutex::new(BTreeMap::new()),
        };
        overlay
            .set(&format!(
                "private_key={}\nlisten_port={}\n",
                hex::encode(private_key),
                overlay.settings.port
            ))
            .await?;
        // Its own address: the subnet's first (network) address, which no
        // instance takes, is the source of what the node itself sends.
        let own = format!("{}/32", overlay.settings.subnet.addr);
        ip(&["addr", "replace", &own, "dev", &dev])
            .await
            .map_err(|e| failed("addressing the tunnel", e))?;
        let mtu = OVERLAY_MTU.to_string();
        ip(&["link", "set", &dev, "mtu", &mtu, "up"])
            .await
            .map_err(|e| failed("bringing the tunnel up", e))?;
        overlay.filter().await?;
        info!(device = %dev, subnet = %overlay.settings.subnet, cidr = %overlay.settings.cidr,
            port = overlay.settings.port, "cluster overlay (WireGuard) is up");
        Ok(overlay)
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &OverlaySettings {
        &self.settings
    }

    /// Sends one `set=1` transaction to the device; its `errno` must be 0.
    async fn set(&self, body: &str) -> Result<()> {
        let mut control = self.control.lock().await;
        let request = format!("set=1\n{body}\n");
        let exchange = async {
            control.write_all(request.as_bytes()).await?;
            let mut reader = BufReader::new(&mut *control);
            let mut answer = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await? == 0 || line == "\n" {
                    break;
                }
                answer.push_str(&line);
            }
            Ok::<_, std::io::Error>(answer)
        };
        let answer = tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .map_err(|_| failed("configuring the tunnel", "no answer within 5 s"))?
            .map_err(|e| failed("configuring the tunnel", e))?;
        if answer.trim() == "errno=0" {
            Ok(())
        } else {
            Err(failed("configuring the tunnel", answer.trim()))
        }
    }

    /// The chains and rules of the module doc; idempotent.
    async fn filter(&self) -> Result<()> {
        let s = &self.settings;
        let t = Duration::from_secs(10);
        Hook {
            from: "INPUT",
            direction: "-i",
            bridge: &s.device,
            chain: format!("UNIVRS-OVL-IN-{}", short(&s.device)),
            rules: &[
                "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                "-j REJECT",
            ],
        }
        .ensure(t)
        .await?;
        let open = format!("-s {} -d {} -j ACCEPT", s.cidr, s.subnet);
        let owners = format!("-j {}", self.dispatch_chain());
        let mut rules = vec!["-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"];
        if s.isolate_owners {
            // Emptied and filled by `allow_owners`; made here so that the
            // jump to it has a target from the start.
            let empty = format!("*filter\n:{} - [0:0]\nCOMMIT\n", self.dispatch_chain());
            iptables_restore(&empty, t)
                .await
                .map_err(|e| failed("making the owners' dispatch chain", e))?;
            rules.push(&owners);
        } else {
            rules.push(&open);
        }
        rules.push("-j REJECT");
        Hook {
            from: "FORWARD",
            direction: "-i",
            bridge: &s.device,
            chain: format!("UNIVRS-OVL-FWD-{}", short(&s.device)),
            rules: &rules,
        }
        .ensure(t)
        .await?;
        let cidr = s.cidr.to_string();
        let keep = [
            "-w",
            "-t",
            "nat",
            "POSTROUTING",
            "-s",
            &cidr,
            "-d",
            &cidr,
            "-m",
            "comment",
            "--comment",
            "univrs-overlay",
            "-j",
            "RETURN",
        ];
        let mut check = keep.to_vec();
        check.insert(3, "-C");
        if iptables(&check, t).await.is_err() {
            let mut insert = keep.to_vec();
            insert.insert(3, "-I");
            insert.insert(5, "1");
            iptables(&insert, t)
                .await
                .map_err(|e| failed("keeping cluster traffic unmasqueraded", e))?;
        }
        Ok(())
    }

    /// Makes the tunnel's peers and routes `wanted` (other members only),
    /// changing only what differs. Returns how many peers changed.
    pub async fn apply(&self, wanted: &[OverlayPeer]) -> Result<usize> {
        let mut peers = self.peers.lock().await;
        let wanted: BTreeMap<[u8; 32], OverlayPeer> = wanted
            .iter()
            .filter(|p| p.subnet != self.settings.subnet)
            .map(|p| (p.public_key, p.clone()))
            .collect();
        let gone: Vec<OverlayPeer> = peers
            .iter()
            .filter(|(k, p)| wanted.get(*k) != Some(*p))
            .map(|(_, p)| p.clone())
            .collect();
        let new: Vec<OverlayPeer> = wanted
            .iter()
            .filter(|(k, p)| peers.get(*k) != Some(*p))
            .map(|(_, p)| p.clone())
            .collect();
        if gone.is_empty() && new.is_empty() {
            return Ok(0);
        }
        // Removed first: boringtun changes a peer only by removing it and
        // adding it again.
        if !gone.is_empty() {
            let body: String = gone
                .iter()
                .map(|p| format!("public_key={}\nremove=true\n", hex::encode(p.public_key)))
                .collect();
            self.set(&body).await?;
            for p in &gone {
                peers.remove(&p.public_key);
                let subnet = p.subnet.to_string();
                if !wanted.values().any(|w| w.subnet == p.subnet) {
                    let _ = ip(&["route", "del", &subnet, "dev", &self.settings.device]).await;
                }
                info!(subnet = %p.subnet, endpoint = %p.endpoint, "overlay peer removed");
            }
        }
        for p in &new {
            self.set(&format!(
                "public_key={}\nendpoint={}\npersistent_keepalive_interval={KEEPALIVE_SECONDS}\n\
                 replace_allowed_ips=true\nallowed_ip={}\n",
                hex::encode(p.public_key),
                p.endpoint,
                p.subnet
            ))
            .await?;
            peers.insert(p.public_key, p.clone());
            let subnet = p.subnet.to_string();
            if let Err(e) = ip(&["route", "replace", &subnet, "dev", &self.settings.device]).await {
                warn!(subnet = %p.subnet, error = %e, "routing a member's subnet into the overlay");
            }
            info!(subnet = %p.subnet, endpoint = %p.endpoint, "overlay peer added");
        }
        Ok(gone.len() + new.len())
    }

    /// The chain that sends a connection from the tunnel to the chain of
    /// its destination instance's owner.
    fn dispatch_chain(&self) -> String {
        format!("UNIVRS-XD-{}", short(&self.settings.device))
    }

    /// Keeps owners apart across nodes (with owner isolation on): a
    /// connection from another node's instance reaches an instance of this
    /// node only when both have the same owner, as `owners` (every instance
    /// address of the cluster with its owner, from the control plane's
    /// directory) says. Rebuilt whole in one `iptables-restore`
    /// transaction:
    ///
    /// ```text
    /// -A UNIVRS-XD-<dev> -d 10.88.1.2/32 -j UNIVRS-XO-<owner>
    /// -A UNIVRS-XO-<owner> -s 10.88.0.5/32 -j ACCEPT
    /// -A UNIVRS-XO-<owner> -j REJECT
    /// ```
    ///
    /// An owner's chain is named after the first 72 bits of its key, as on
    /// the bridge (`super::isolation`); chains of owners gone are removed.
    pub async fn allow_owners(
        &self,
        owners: &[(Ipv4Addr, orchestrator_shared_types::PublicKey)],
    ) -> Result<()> {
        let s = &self.settings;
        if !s.isolate_owners {
            return Ok(());
        }
        let t = Duration::from_secs(10);
        let chain_of = |o: &orchestrator_shared_types::PublicKey| {
            let hex = o.to_hex();
            format!("UNIVRS-XO-{}", hex.get(..18).unwrap_or(&hex))
        };
        let mut local: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
        let mut remote: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
        for (addr, owner) in owners {
            if s.subnet.contains(*addr) {
                local.entry(chain_of(owner)).or_default().push(*addr);
            } else if s.cidr.contains(*addr) {
                remote.entry(chain_of(owner)).or_default().push(*addr);
            }
        }
        let dispatch = self.dispatch_chain();
        let mut rules = format!("*filter\n:{dispatch} - [0:0]\n");
        for chain in local.keys() {
            rules.push_str(&format!(":{chain} - [0:0]\n"));
        }
        for (chain, addrs) in &local {
            for a in addrs {
                rules.push_str(&format!("-A {dispatch} -d {a}/32 -j {chain}\n"));
            }
            for a in remote.get(chain).into_iter().flatten() {
                rules.push_str(&format!("-A {chain} -s {a}/32 -j ACCEPT\n"));
            }
            rules.push_str(&format!("-A {chain} -j REJECT\n"));
        }
        rules.push_str("COMMIT\n");
        iptables_restore(&rules, t)
            .await
            .map_err(|e| failed("keeping owners apart across nodes", e))?;
        // Chains of owners with no instance here any more: unreferenced now.
        let listed = iptables(&["-w", "-S"], t)
            .await
            .map_err(|e| failed("listing the owners' chains", e))?;
        for line in listed.lines() {
            let Some(chain) = line.strip_prefix("-N ") else {
                continue;
            };
            if chain.starts_with("UNIVRS-XO-") && !local.contains_key(chain) {
                let _ = iptables(&["-w", "-F", chain], t).await;
                let _ = iptables(&["-w", "-X", chain], t).await;
            }
        }
        Ok(())
    }
}

/// `device` within a chain name's 28 bytes (with `UNIVRS-OVL-FWD-`).
fn short(device: &str) -> &str {
    device.get(..13).unwrap_or(device)
}

/// The tunnel's interface on the node whose id (hex) starts with `node`:
/// `uwg-` and 11 hex digits, unique per host even when several nodes share
/// one machine in network namespaces.
pub fn device_name(node_hex: &str) -> String {
    format!("{DEVICE_PREFIX}{}", node_hex.get(..11).unwrap_or(node_hex))
}

/// What every tunnel interface's name starts with.
pub const DEVICE_PREFIX: &str = "uwg-";
