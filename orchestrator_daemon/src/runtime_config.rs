//! The youki part of the daemon's configuration: registries reached over
//! plain HTTP, the image pull policy, the image cache size and registry
//! credentials.

use std::collections::BTreeMap;

use orchestrator_shared_types::MemoryQuantity;
use serde::Deserialize;

use super::config::{valid_host_port, FileConfig, Overrides};
use crate::error::{Error, Result};
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

/// Settings of the youki runtime.
#[derive(Clone, Debug)]
pub struct RuntimeSettings {
    /// Registries (`HOST:PORT`) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// When images are pulled.
    pub pull_policy: PullPolicy,
    /// Size above which unused images are removed.
    pub image_cache_bytes: u64,
    /// Credentials per registry host.
    pub registry_auth: BTreeMap<String, RegistryAuth>,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            pull_policy: PullPolicy::IfNotPresent,
            image_cache_bytes: DEFAULT_IMAGE_CACHE_BYTES,
            registry_auth: BTreeMap::new(),
        }
    }
}

/// Default size of the image cache: 10 GiB.
pub const DEFAULT_IMAGE_CACHE_BYTES: u64 = 10 << 30;

/// The image and registry settings of `flags` over `file`, validated.
pub(super) fn resolve(flags: &Overrides, file: &FileConfig) -> Result<RuntimeSettings> {
    let mut insecure_registries = file.insecure_registries.clone();
    insecure_registries.extend(flags.insecure_registries.iter().cloned());
    for r in &insecure_registries {
        if !valid_host_port(r) || r.contains('/') {
            return Err(Error::Config(format!(
                "insecure registry {r:?} is not HOST:PORT (e.g. 127.0.0.1:5000)"
            )));
        }
    }
    let pull_policy = match flags
        .image_pull_policy
        .as_deref()
        .or(file.image_pull_policy.as_deref())
    {
        Some(p) => p
            .parse::<PullPolicy>()
            .map_err(|e| Error::Config(format!("image pull policy: {e}")))?,
        None => PullPolicy::IfNotPresent,
    };
    let image_cache_bytes = match flags
        .image_cache_size
        .as_deref()
        .or(file.image_cache_size.as_deref())
    {
        Some(s) => s
            .parse::<MemoryQuantity>()
            .map_err(|e| Error::Config(format!("image cache size: {e}")))?
            .bytes(),
        None => DEFAULT_IMAGE_CACHE_BYTES,
    };
    Ok(RuntimeSettings {
        insecure_registries,
        pull_policy,
        image_cache_bytes,
        registry_auth: file.registry_auth.clone(),
    })
}
