//! A user's secret as the cluster keeps it (SPEC §15, §18): sealed with age
//! on the user's machine to the Ed25519 keys of the nodes the user trusts and
//! to the user's own key. The control plane stores the ciphertext only; a
//! node opens it with its own key just before it starts a container.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::PublicKey;

/// Record kind (in the state store's records) of a sealed secret; the key is
/// `OWNER_HEX:NAME`.
pub const RECORD: &str = "secret";

/// A secret, sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SealedSecret {
    /// Its name, unique per owner (a DNS label).
    pub name: String,
    /// Whose it is.
    #[schemars(with = "String")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub owner: PublicKey,
    /// The keys it is sealed to, as the owner declared them: the nodes that
    /// can open it (node ids) and the owner's own key. Only a node listed
    /// here is given an instance that needs it.
    #[schemars(with = "Vec<String>")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub recipients: Vec<PublicKey>,
    /// The ASCII-armored age file.
    pub sealed: String,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

impl SealedSecret {
    /// The store key of `owner`'s secret `name`.
    pub fn record_key(owner: &PublicKey, name: &str) -> String {
        format!("{owner}:{name}")
    }

    /// Checks the name and the recipients; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !crate::validation::is_dns_label(&self.name) {
            return Err(format!(
                "name: {:?} is not 1-63 of a-z, 0-9 and '-', alphanumeric at both ends",
                self.name
            ));
        }
        if self.recipients.is_empty() {
            return Err("recipients: a secret is sealed to at least one key".to_owned());
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(k) = self.recipients.iter().find(|k| !seen.insert(**k)) {
            return Err(format!("recipients: {k} is listed twice"));
        }
        Ok(())
    }
}

/// Most secrets (`secret_env` and `secret_files` together) one container uses.
pub const MAX_SECRETS_PER_CONTAINER: usize = 64;

/// Trees of the container a secret file may not be put in: the kernel's
/// views and the devices, which the runtime mounts itself.
const RESERVED_TREES: [&str; 3] = ["/proc", "/sys", "/dev"];

impl crate::ContainerConfig {
    /// The secrets this container names, in `secret_env` then
    /// `secret_files` order (a secret named twice comes twice).
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.secret_env
            .iter()
            .map(|s| s.secret.as_str())
            .chain(self.secret_files.iter().map(|f| f.secret.as_str()))
    }
}

impl crate::WorkloadSpec {
    /// The secrets the workload's containers name (in `secret_env` and
    /// `secret_files`), sorted, each once.
    pub fn secrets(&self) -> std::collections::BTreeSet<&str> {
        self.containers
            .iter()
            .flat_map(crate::ContainerConfig::secret_names)
            .collect()
    }
}

fn under(path: &str, tree: &str) -> bool {
    path == tree
        || path
            .strip_prefix(tree)
            .is_some_and(|rest| rest.starts_with('/') || tree == "/")
}

/// Problems with the `secret_env` and `secret_files` of `spec`'s
/// containers, as (field, message).
pub(crate) fn check(spec: &crate::WorkloadSpec, problems: &mut Vec<(String, String)>) {
    use std::collections::HashSet;
    let name_problem = |field: String, name: &str| {
        (
            field,
            format!("{name:?} is not a secret name (a DNS label: a-z, 0-9, -; at most 63)"),
        )
    };
    for (i, c) in spec.containers.iter().enumerate() {
        let path = format!("containers[{i}]");
        if c.secret_env.len() + c.secret_files.len() > MAX_SECRETS_PER_CONTAINER {
            problems.push((
                path.clone(),
                format!("at most {MAX_SECRETS_PER_CONTAINER} secrets per container"),
            ));
        }
        let mut vars = HashSet::new();
        for (j, s) in c.secret_env.iter().enumerate() {
            let field = format!("{path}.secret_env[{j}]");
            if !crate::validation::is_env_name(&s.name) {
                problems.push((format!("{field}.name"), "not a valid variable name".into()));
            } else if c.env.contains_key(&s.name) {
                problems.push((
                    format!("{field}.name"),
                    format!("{:?} is also set in env: give it one value", s.name),
                ));
            } else if !vars.insert(s.name.as_str()) {
                problems.push((
                    format!("{field}.name"),
                    format!("{:?} is set twice", s.name),
                ));
            }
            if !crate::validation::is_dns_label(&s.secret) {
                problems.push(name_problem(format!("{field}.secret"), &s.secret));
            }
        }
        let mut files = HashSet::new();
        for (j, f) in c.secret_files.iter().enumerate() {
            let field = format!("{path}.secret_files[{j}]");
            if !crate::volume::is_mount_path(&f.path) {
                problems.push((
                    format!("{field}.path"),
                    format!(
                        "{:?} is not an absolute path without . or .. components",
                        f.path
                    ),
                ));
            } else if let Some(tree) = RESERVED_TREES.iter().find(|t| under(&f.path, t)) {
                problems.push((
                    format!("{field}.path"),
                    format!("{:?} is under {tree}, which the runtime mounts", f.path),
                ));
            } else if let Some(v) = c
                .volumes
                .iter()
                .find(|v| under(&f.path, &v.mount_path) || under(&v.mount_path, &f.path))
            {
                problems.push((
                    format!("{field}.path"),
                    format!(
                        "{:?} overlaps volume {:?} mounted at {:?}",
                        f.path, v.name, v.mount_path
                    ),
                ));
            } else if !files.insert(f.path.as_str()) {
                problems.push((
                    format!("{field}.path"),
                    format!("{:?} is given twice", f.path),
                ));
            }
            if !crate::validation::is_dns_label(&f.secret) {
                problems.push(name_problem(format!("{field}.secret"), &f.secret));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::WorkloadSpec;

    fn problems(container: &str) -> Vec<String> {
        let yaml = format!("name: web\ncontainers:\n- name: main\n  image: busybox\n{container}");
        let spec: WorkloadSpec = crate::manifest::from_yaml(&yaml).expect("parses");
        match spec.validate() {
            Ok(()) => Vec::new(),
            Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn secrets_by_env_and_file_are_valid_and_named() {
        let yaml = "name: web\ncontainers:\n- name: main\n  image: busybox\n  \
                    secret_env: [{name: DB_PASSWORD, secret: db}]\n  \
                    secret_files: [{path: /run/secrets/tls.key, secret: tls}, {path: /etc/db, secret: db}]\n";
        let spec: WorkloadSpec = crate::manifest::from_yaml(yaml).expect("parses");
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(
            spec.secrets().into_iter().collect::<Vec<_>>(),
            ["db", "tls"]
        );
    }

    #[test]
    fn bad_secret_references_are_refused_naming_the_field() {
        let p = problems("  secret_env: [{name: 1X, secret: db}, {name: A, secret: Bad_Name}]\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("containers[0].secret_env[0].name"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("containers[0].secret_env[1].secret"),
            "{p:?}"
        );
        let p = problems("  env: {A: x}\n  secret_env: [{name: A, secret: db}]\n");
        assert!(p[0].contains("also set in env"), "{p:?}");
        let p = problems("  secret_env: [{name: A, secret: db}, {name: A, secret: db}]\n");
        assert!(p[0].contains("set twice"), "{p:?}");
        for bad in [
            "relative",
            "/a/../b",
            "/",
            "/proc/self/x",
            "/dev/shm/k",
            "/sys",
        ] {
            let p = problems(&format!(
                "  secret_files: [{{path: {bad:?}, secret: db}}]\n"
            ));
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(
                p[0].starts_with("containers[0].secret_files[0].path"),
                "{p:?}"
            );
        }
        let p = problems(
            "  volumes: [{name: data, mount_path: /data, size: 8Mi}]\n  \
             secret_files: [{path: /data/key, secret: db}]\n",
        );
        assert!(p[0].contains("overlaps volume"), "{p:?}");
        let p = problems("  secret_files: [{path: /k, secret: a}, {path: /k, secret: b}]\n");
        assert!(p[0].contains("given twice"), "{p:?}");
        let many: Vec<String> = (0..65)
            .map(|i| format!("{{name: V{i}, secret: s}}"))
            .collect();
        let p = problems(&format!("  secret_env: [{}]\n", many.join(", ")));
        assert!(p[0].contains("at most 64 secrets"), "{p:?}");
    }

    #[test]
    fn paths_under_a_tree() {
        assert!(super::under("/proc", "/proc"));
        assert!(super::under("/proc/x", "/proc"));
        assert!(!super::under("/process", "/proc"));
    }
}
