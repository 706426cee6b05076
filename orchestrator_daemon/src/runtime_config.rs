//! The youki part of the daemon's configuration: registries reached over
//! plain HTTP, the image pull policy, the image cache size, the limits on
//! image pulls, the image store quota, registry credentials, the bridge
//! network and the containers' confinement (seccomp, `CAP_NET_RAW`),
//! resolved straight into the runtime's own `YoukiConfig`.

use std::path::PathBuf;

use container_runtime::youki::cni::{check_plugins, CniConfig, Ipv4Subnet};
use container_runtime::youki::image::limit_names;
use container_runtime::youki::{ImageLimits, RegistryCredentials, YoukiConfig};
use orchestrator_shared_types::MemoryQuantity;
use serde::Deserialize;

use super::config::valid_host_port;
use crate::error::{Error, Result};
use crate::settings::Settings;
pub use container_runtime::youki::PullPolicy;

/// Basic-auth credentials of one registry, from the configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

/// Default size of the image cache: 10 GiB.
pub const DEFAULT_IMAGE_CACHE_BYTES: u64 = 10 << 30;

/// The `[image_limits]` table of the configuration file; sizes are
/// quantities (`4Mi`, `2Gi`), counts plain integers. Absent keys keep the
/// defaults of [`ImageLimits`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageLimitsSettings {
    /// Largest manifest or image index [default: 4Mi].
    pub max_manifest_size: Option<String>,
    /// Largest image config [default: 4Mi].
    pub max_config_size: Option<String>,
    /// Largest layer as downloaded (compressed) [default: 4Gi].
    pub max_layer_size: Option<String>,
    /// Largest layer once decompressed [default: 8Gi].
    pub max_layer_unpacked_size: Option<String>,
    /// Most entries (files, directories, links) in one layer [default: 1000000].
    pub max_layer_entries: Option<u64>,
    /// Most layers in one image [default: 128].
    pub max_layers: Option<u64>,
    /// Largest image: its blobs plus its layers decompressed [default: 16Gi].
    pub max_image_size: Option<String>,
}

fn size(name: &str, value: &Option<String>, default: u64) -> Result<u64> {
    match value {
        Some(v) => v
            .parse::<MemoryQuantity>()
            .map(MemoryQuantity::bytes)
            .map_err(|e| Error::Config(format!("{name}: {e}"))),
        None => Ok(default),
    }
}

/// The limits on image pulls and the store quota from `s`, validated.
fn image_limits(s: &Settings) -> Result<ImageLimits> {
    let d = ImageLimits::default();
    let t = s.image_limits.clone().unwrap_or_default();
    let limits = ImageLimits {
        max_manifest_bytes: size(
            limit_names::MANIFEST,
            &t.max_manifest_size,
            d.max_manifest_bytes,
        )?,
        max_config_bytes: size(limit_names::CONFIG, &t.max_config_size, d.max_config_bytes)?,
        max_layer_bytes: size(limit_names::LAYER, &t.max_layer_size, d.max_layer_bytes)?,
        max_layer_unpacked_bytes: size(
            limit_names::LAYER_UNPACKED,
            &t.max_layer_unpacked_size,
            d.max_layer_unpacked_bytes,
        )?,
        max_layer_entries: t.max_layer_entries.unwrap_or(d.max_layer_entries),
        max_layers: t.max_layers.unwrap_or(d.max_layers),
        max_image_bytes: size(limit_names::IMAGE, &t.max_image_size, d.max_image_bytes)?,
        store_quota_bytes: size(
            limit_names::STORE_QUOTA,
            &s.image_store_quota,
            d.store_quota_bytes,
        )?,
    };
    for (name, value) in [
        (limit_names::MANIFEST, limits.max_manifest_bytes),
        (limit_names::CONFIG, limits.max_config_bytes),
        (limit_names::LAYER, limits.max_layer_bytes),
        (limit_names::LAYER_UNPACKED, limits.max_layer_unpacked_bytes),
        (limit_names::LAYER_ENTRIES, limits.max_layer_entries),
        (limit_names::LAYERS, limits.max_layers),
        (limit_names::IMAGE, limits.max_image_bytes),
        (limit_names::STORE_QUOTA, limits.store_quota_bytes),
    ] {
        if value == 0 {
            return Err(Error::Config(format!(
                "{name} is 0: every image would be refused"
            )));
        }
    }
    Ok(limits)
}

/// The youki runtime's configuration from `s`, validated, its state under
/// `root`; and why bridge networking is off, when it is.
pub(super) fn resolve(s: &Settings, root: PathBuf) -> Result<(YoukiConfig, Option<String>)> {
    let root_dir = root.clone();
    let root = &root_dir;
    for r in &s.insecure_registries {
        if !valid_host_port(r) || r.contains('/') {
            return Err(Error::Config(format!(
                "insecure registry {r:?} is not HOST:PORT (e.g. 127.0.0.1:5000)"
            )));
        }
    }
    let mut cfg = YoukiConfig::new(root.clone());
    cfg.insecure_registries = s.insecure_registries.clone();
    if let Some(p) = &s.image_pull_policy {
        cfg.pull_policy = p
            .parse::<PullPolicy>()
            .map_err(|e| Error::Config(format!("image pull policy: {e}")))?;
    }
    cfg.image_cache_bytes = match &s.image_cache_size {
        Some(size) => size
            .parse::<MemoryQuantity>()
            .map_err(|e| Error::Config(format!("image cache size: {e}")))?
            .bytes(),
        None => DEFAULT_IMAGE_CACHE_BYTES,
    };
    cfg.image_limits = image_limits(s)?;
    if cfg.image_cache_bytes > cfg.image_limits.store_quota_bytes {
        return Err(Error::Config(format!(
            "image cache size ({} bytes) is above the {} ({} bytes): pulls would be refused before unused images are removed",
            cfg.image_cache_bytes,
            limit_names::STORE_QUOTA,
            cfg.image_limits.store_quota_bytes
        )));
    }
    let (cni, bridge_off) = bridge_network(s, root)?;
    cfg.cni = cni;
    cfg.seccomp = !s.no_seccomp.unwrap_or(false);
    cfg.allow_net_raw = s.allow_net_raw.unwrap_or(false);
    cfg.allow_host_network = s.allow_host_network.unwrap_or(false);
    cfg.credentials = s
        .registry_auth
        .iter()
        .map(|(host, a)| {
            (
                host.clone(),
                RegistryCredentials {
                    username: a.username.clone(),
                    password: a.password.clone(),
                },
            )
        })
        .collect();
    Ok((cfg, bridge_off))
}

/// `FIRST-LAST` as a range of ports, or none when it is not one.
fn port_range(s: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (first, last) = s.split_once('-')?;
    let (first, last): (u16, u16) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first >= 1 && first <= last).then_some(first..=last)
}

/// The default subnet of a node's bridge network.
pub const DEFAULT_NODE_SUBNET: &str = "10.88.0.0/24";

/// Bridge attachments made ahead of time by default (`--warm-networks`).
pub const DEFAULT_WARM_NETWORKS: usize = 2;
/// The most `--warm-networks` accepts.
pub const MAX_WARM_NETWORKS: usize = 32;

/// The node's bridge network (`network: bridge`, the default): its subnet from
/// `--node-subnet`, its plugins from `--cni-bin-dir`, its leases and records
/// under `root`. Plugins missing leave it off, and the second value says
/// why (logged at start): the node then offers only `none` (and `host` if
/// its operator allows it).
fn bridge_network(
    s: &Settings,
    root: &std::path::Path,
) -> Result<(Option<CniConfig>, Option<String>)> {
    let subnet = s.node_subnet.as_deref().unwrap_or(DEFAULT_NODE_SUBNET);
    let subnet: Ipv4Subnet = subnet
        .parse()
        .map_err(|e| Error::Config(format!("node subnet {subnet:?}: {e}")))?;
    let mut cni = CniConfig::new(root.join("cni"), subnet);
    if let Some(dir) = &s.cni_bin_dir {
        cni.bin_dir = dir.clone();
    }
    cni.guard_node = !s.allow_instances_to_node.unwrap_or(false);
    cni.isolate_owners = !s.allow_traffic_between_owners.unwrap_or(false);
    if let Some(range) = &s.host_port_range {
        cni.host_port_range = port_range(range).ok_or_else(|| {
            Error::Config(format!(
                "host port range {range:?} is not FIRST-LAST with 1 <= FIRST <= LAST <= 65535"
            ))
        })?;
    }
    cni.warm = s.warm_networks.unwrap_or(DEFAULT_WARM_NETWORKS);
    if cni.warm > MAX_WARM_NETWORKS {
        return Err(Error::Config(format!(
            "--warm-networks {}: at most {MAX_WARM_NETWORKS} (each holds an address of the node's subnet)",
            cni.warm
        )));
    }
    Ok(match check_plugins(&cni.bin_dir) {
        Ok(()) => (Some(cni), None),
        Err(e) => (None, Some(e.to_string())),
    })
}
