//! A node's warm attachments (`--warm-networks`: bridge attachments made
//! ahead of time), read from its data directory, so that tests counting
//! what bridge networking made can tell them from the instances'.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A node's warm attachments: their ids (also their namespaces' names) and
/// addresses.
#[derive(Clone, Debug, Default)]
pub struct Warm {
    pub ids: BTreeSet<String>,
    pub ips: BTreeSet<Ipv4Addr>,
}

impl Warm {
    /// Whether an iptables rule (as `iptables-save` prints it) belongs to
    /// a warm attachment: it names one's id or address.
    pub fn owns_rule(&self, rule: &str) -> bool {
        self.ids.iter().any(|id| rule.contains(id.as_str()))
            || self
                .ips
                .iter()
                .any(|ip| rule.contains(&format!(" {ip}/32")))
    }

    /// Whether a line of `saved` (`iptables-save`) belongs to a warm
    /// attachment: a rule naming one's id or address, or the declaration of
    /// a chain of its own that such a rule jumps to or fills (bridge's
    /// masquerade chain per attachment; not the plugins' shared chains).
    pub fn owns(&self, saved: &str, line: &str) -> bool {
        if self.owns_rule(line) {
            return true;
        }
        let Some(chain) = line.strip_prefix(':').and_then(|l| l.split(' ').next()) else {
            return false;
        };
        let shared = !chain.starts_with("CNI-")
            || chain.starts_with("CNI-HOSTPORT")
            || ["CNI-FORWARD", "CNI-ADMIN"].contains(&chain);
        !shared
            && saved.lines().filter(|l| self.owns_rule(l)).any(|l| {
                let t: Vec<&str> = l.split(' ').collect();
                t.windows(2)
                    .any(|w| (w[0] == "-A" || w[0] == "-j") && w[1] == chain)
            })
    }
}

/// The records of `data_dir`'s attachments: (every record has its result,
/// the warm ones).
fn read(data_dir: &Path) -> (bool, Warm) {
    let mut warm = Warm::default();
    let mut complete = true;
    let dir = data_dir.join("runtime/cni/results");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        complete &= !v["result"].is_null();
        if v["warm"] != true {
            continue;
        }
        if let Some(id) = v["container_id"].as_str() {
            warm.ids.insert(id.to_owned());
        }
        for ip in v["result"]["ips"].as_array().into_iter().flatten() {
            let addr = ip["address"].as_str().unwrap_or_default();
            if let Ok(ip) = addr.split('/').next().unwrap_or_default().parse() {
                warm.ips.insert(ip);
            }
        }
    }
    (complete, warm)
}

/// The warm attachments of the nodes with these data directories, once
/// each node has made all `per_node` and no attachment is half made (up to
/// 30 s; then as they are).
pub fn settled(data_dirs: &[&Path], per_node: usize) -> Warm {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = Warm::default();
        let mut done = true;
        for dir in data_dirs {
            let (complete, warm) = read(dir);
            done &= complete && warm.ids.len() == per_node;
            all.ids.extend(warm.ids);
            all.ips.extend(warm.ips);
        }
        if done || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
