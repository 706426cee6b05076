//! The record each attachment keeps on disk (as libcni's cache does), for
//! CHECK, DEL and a restarted daemon.

use std::path::{Path, PathBuf};

use orchestrator_shared_types::private_fs;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::warn;

use super::network::{AttachRequest, CniNetwork};
use super::{CniError, PortMapping, Result};

/// What ADD made, kept on disk for CHECK and DEL (as libcni's cache does):
/// `firewall` removes its rules only for the addresses of the previous
/// result, and `portmap` its DNAT only for the mappings it is given. It is
/// written before ADD starts, without a result, so that a daemon that dies
/// during ADD leaves a record [`CniNetwork::attachments`] lists.
#[derive(Serialize, Deserialize)]
pub(super) struct Kept {
    pub(super) container_id: String,
    pub(super) ifname: String,
    pub(super) netns: PathBuf,
    pub(super) port_mappings: Vec<PortMapping>,
    /// The chain's ADD result; none while ADD runs.
    #[serde(default)]
    pub(super) result: Option<Value>,
    /// Attached ahead of time and not yet given to a container (see
    /// `warm`): no process has run in its namespace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) warm: bool,
}

impl Kept {
    fn request(&self) -> AttachRequest {
        AttachRequest {
            container_id: self.container_id.clone(),
            netns: self.netns.clone(),
            ifname: self.ifname.clone(),
            port_mappings: self.port_mappings.clone(),
            warm: self.warm,
        }
    }
}

impl CniNetwork {
    /// The attachments this network keeps a record of (made, or being made
    /// when a daemon died): for a restarted daemon to DEL those whose
    /// instance is gone.
    pub fn attachments(&self) -> Result<Vec<AttachRequest>> {
        let dir = self.config().results_dir();
        let entries = std::fs::read_dir(&dir).map_err(|source| CniError::Cache {
            action: "listing",
            path: dir.clone(),
            source,
        })?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| CniError::Cache {
                action: "listing",
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match read_kept(&path) {
                Ok(Some(kept)) => found.push(kept.request()),
                Ok(None) => {}
                // One unreadable record must not hide the others.
                Err(e) => warn!(error = %e, "a kept CNI attachment"),
            }
        }
        found.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(found)
    }

    pub(super) fn forget(&self, req: &AttachRequest) -> Result<()> {
        let path = self.kept_path(req);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CniError::Cache {
                action: "removing",
                path,
                source,
            }),
        }
    }

    fn kept_path(&self, req: &AttachRequest) -> PathBuf {
        self.config().results_dir().join(format!(
            "{}-{}-{}.json",
            self.config().name,
            req.container_id,
            req.ifname
        ))
    }

    pub(super) fn keep(&self, kept: &Kept) -> Result<()> {
        let path = self.config().results_dir().join(format!(
            "{}-{}-{}.json",
            self.config().name,
            kept.container_id,
            kept.ifname
        ));
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(kept).map_err(|e| CniError::Cache {
            action: "serialising",
            path: path.clone(),
            source: e.into(),
        })?;
        write_then_rename(&tmp, &path, &bytes).map_err(|source| CniError::Cache {
            action: "writing",
            path,
            source,
        })
    }

    pub(super) fn kept(&self, req: &AttachRequest) -> Result<Option<Kept>> {
        read_kept(&self.kept_path(req))
    }
}

fn read_kept(path: &Path) -> Result<Option<Kept>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CniError::Cache {
                action: "reading",
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| CniError::Cache {
            action: "parsing",
            path: path.to_owned(),
            source: e.into(),
        })
}

/// Not synced: what it keeps is of no use after a reboot (the namespaces
/// are gone), only after a restart of the daemon.
fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::io::Write::write_all(&mut private_fs::create(tmp)?, bytes)?;
    std::fs::rename(tmp, path)
}
