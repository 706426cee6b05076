//! The youki part of the daemon's configuration: registries reached over
//! plain HTTP, the image pull policy, the image cache size and registry
//! credentials, resolved straight into the runtime's own `YoukiConfig`.

use std::path::PathBuf;

use container_runtime::youki::{RegistryCredentials, YoukiConfig};
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

/// The youki runtime's configuration from `s`, validated; its state lives
/// under `root`.
pub(super) fn resolve(s: &Settings, root: PathBuf) -> Result<YoukiConfig> {
    for r in &s.insecure_registries {
        if !valid_host_port(r) || r.contains('/') {
            return Err(Error::Config(format!(
                "insecure registry {r:?} is not HOST:PORT (e.g. 127.0.0.1:5000)"
            )));
        }
    }
    let mut cfg = YoukiConfig::new(root);
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
    Ok(cfg)
}
