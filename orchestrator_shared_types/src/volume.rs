//! Volumes (SPEC §9): named, owned by the workload's owner, living on one
//! node, their size enforced by that node's kernel.
//!
//! - [`VolumeMount`]: a container's `volumes:` entry in a manifest.
//! - [`VolumeRecord`]: what the control plane keeps about one volume (record
//!   kind [`VOLUME_RECORD`], key [`volume_key`]): its node and size, written
//!   before the first instance that uses it starts.
//! - `check`: the manifest rules (names, paths, sizes, one size per name).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, PublicKey};
use crate::quantity::MemoryQuantity;
use crate::validation::is_dns_label;
use crate::workload::WorkloadSpec;

/// The store's record kind of volumes.
pub const VOLUME_RECORD: &str = "volume";
/// The smallest volume.
pub const MIN_VOLUME_BYTES: u64 = 4 << 20;
/// The largest volume.
pub const MAX_VOLUME_BYTES: u64 = 1 << 40;

/// A named volume mounted into a container. Every instance using it shares
/// it, and runs on the node where it lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VolumeMount {
    /// The volume's name, unique per owner: a DNS label (a-z, 0-9, `-`).
    pub name: String,
    /// Where it appears in the container: an absolute path without `..`.
    pub mount_path: String,
    /// Its size (`64Mi`, `1Gi`), 4Mi to 1Ti; the same wherever the workload
    /// names this volume. Fixed when the volume is made.
    pub size: MemoryQuantity,
    /// Mount it read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// A volume as the control plane keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// Its owner.
    pub owner: PublicKey,
    /// Its name.
    pub name: String,
    /// The node it lives on.
    pub node: NodeId,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// Being wiped: no instance may start with it until it is gone.
    #[serde(default)]
    pub deleting: bool,
}

/// The record key of `owner`'s volume `name`: `OWNERHEX:NAME`.
pub fn volume_key(owner: &PublicKey, name: &str) -> String {
    format!("{}:{name}", owner.to_hex())
}

impl WorkloadSpec {
    /// The volumes the workload uses, by name, with their size in bytes.
    pub fn volumes(&self) -> BTreeMap<String, u64> {
        self.containers
            .iter()
            .flat_map(|c| &c.volumes)
            .map(|v| (v.name.clone(), v.size.bytes()))
            .collect()
    }
}

/// Whether `path` is absolute, has no `..` or empty component, and no NUL.
pub(crate) fn is_mount_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && path.len() <= 4096
        && !path.contains('\0')
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != ".." && c != ".")
}

/// Problems with the `volumes` of `spec`'s containers, as (field, message).
pub(crate) fn check(spec: &WorkloadSpec, problems: &mut Vec<(String, String)>) {
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let mut paths = HashSet::new();
        for (j, v) in c.volumes.iter().enumerate() {
            let path = format!("containers[{i}].volumes[{j}]");
            if !is_dns_label(&v.name) {
                problems.push((
                    format!("{path}.name"),
                    format!("{:?} is not a DNS label (a-z, 0-9, -; at most 63)", v.name),
                ));
            }
            if !is_mount_path(&v.mount_path) {
                problems.push((
                    format!("{path}.mount_path"),
                    format!(
                        "{:?} is not an absolute path without . or .. components",
                        v.mount_path
                    ),
                ));
            } else if !paths.insert(v.mount_path.as_str()) {
                problems.push((
                    format!("{path}.mount_path"),
                    format!("{:?} is mounted twice in this container", v.mount_path),
                ));
            }
            let bytes = v.size.bytes();
            if !(MIN_VOLUME_BYTES..=MAX_VOLUME_BYTES).contains(&bytes) {
                problems.push((
                    format!("{path}.size"),
                    format!("{} is not between 4Mi and 1Ti", v.size),
                ));
            }
            match sizes.insert(v.name.as_str(), bytes) {
                Some(other) if other != bytes => problems.push((
                    format!("{path}.size"),
                    format!(
                        "volume {:?} is given another size elsewhere in the workload ({} bytes)",
                        v.name, other
                    ),
                )),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(volumes: &str) -> Vec<String> {
        let yaml = format!(
            "name: db\ncontainers:\n- name: main\n  image: busybox\n  volumes: {volumes}\n"
        );
        let spec: WorkloadSpec = crate::manifest::from_yaml(&yaml).expect("parses");
        let mut p = Vec::new();
        check(&spec, &mut p);
        p.into_iter().map(|(f, m)| format!("{f}: {m}")).collect()
    }

    #[test]
    fn a_good_volume_passes_and_round_trips() {
        assert!(problems("[{name: data, mount_path: /data, size: 64Mi}]").is_empty());
        let spec: WorkloadSpec = crate::manifest::from_yaml(
            "name: db\ncontainers:\n- name: main\n  image: busybox\n  volumes: [{name: data, mount_path: /data, size: 64Mi, read_only: true}]\n",
        )
        .expect("parses");
        assert_eq!(
            spec.volumes(),
            BTreeMap::from([("data".to_owned(), 64 << 20)])
        );
        let v = &spec.containers[0].volumes[0];
        assert!(v.read_only);
        let back: VolumeMount =
            serde_json::from_value(serde_json::to_value(v).expect("encodes")).expect("decodes");
        assert_eq!(&back, v);
    }

    #[test]
    fn bad_names_paths_and_sizes_are_named() {
        let p = problems("[{name: Data, mount_path: data/../x, size: 1Mi}]");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("containers[0].volumes[0].name"), "{p:?}");
        assert!(
            p[1].starts_with("containers[0].volumes[0].mount_path"),
            "{p:?}"
        );
        assert!(p[2].contains("not between 4Mi and 1Ti"), "{p:?}");
        assert_eq!(
            problems("[{name: a, mount_path: /x/../y, size: 8Mi}]").len(),
            1
        );
        assert_eq!(problems("[{name: a, mount_path: /, size: 8Mi}]").len(), 1);
        assert_eq!(problems("[{name: a, mount_path: /x, size: 2Ti}]").len(), 1);
    }

    #[test]
    fn one_path_once_and_one_size_per_name() {
        let p = problems(
            "[{name: a, mount_path: /x, size: 8Mi}, {name: b, mount_path: /x, size: 8Mi}]",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("mounted twice"), "{p:?}");
        let p = problems(
            "[{name: a, mount_path: /x, size: 8Mi}, {name: a, mount_path: /y, size: 16Mi}]",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("another size"), "{p:?}");
    }
}
