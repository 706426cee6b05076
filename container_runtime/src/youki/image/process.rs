//! The process of a container: [`plan_process`] merges an image's config with
//! the container's command, arguments and environment, and resolves the
//! image's user and groups through the rootfs' `/etc/passwd` and `/etc/group`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::Path;

use super::unpack::resolve_in_root;
use super::Image;

/// `PATH` given to a process when neither its image nor its container sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolved process of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessPlan {
    /// Executable and arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE`: the image's environment first, the container's overriding same keys.
    pub env: Vec<String>,
    /// Working directory (default `/`).
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups from the image's `/etc/group`.
    pub additional_gids: Vec<u32>,
}

/// Merges `image`'s config with a container's `command`, `args` and `env`
/// (Docker/Kubernetes rules): `command` replaces the Entrypoint and drops Cmd
/// unless `args` are given; `args` replace Cmd; neither gives Entrypoint+Cmd.
/// An empty result is an error. The image's `User` (`uid`, `uid:gid`, `name`,
/// `name:group`) is resolved through the rootfs' `/etc/passwd` and
/// `/etc/group`. `PATH` defaults to [`DEFAULT_PATH`].
pub fn plan_process(
    image: &Image,
    command: &[String],
    args: &[String],
    env: &BTreeMap<String, String>,
) -> Result<ProcessPlan, String> {
    let cfg = &image.config;
    let argv: Vec<String> = match (command.is_empty(), args.is_empty()) {
        (false, _) => command.iter().chain(args).cloned().collect(),
        (true, false) => cfg.entrypoint.iter().chain(args).cloned().collect(),
        (true, true) => cfg.entrypoint.iter().chain(&cfg.cmd).cloned().collect(),
    };
    if argv.is_empty() {
        return Err(format!(
            "image {} has no entrypoint or cmd and the container sets no command",
            image.reference
        ));
    }

    let mut merged = EnvList::default();
    cfg.env.iter().cloned().for_each(|e| merged.set(e));
    env.iter().for_each(|(k, v)| merged.set(format!("{k}={v}")));
    if !merged.positions.contains_key("PATH") {
        merged.set(format!("PATH={DEFAULT_PATH}"));
    }

    let cwd = match cfg.working_dir.as_deref().map(str::trim) {
        None | Some("") => "/".to_owned(),
        Some(dir) if dir.starts_with('/') => dir.to_owned(),
        Some(dir) => format!("/{dir}"),
    };
    let (uid, gid, additional_gids) =
        resolve_user(&image.rootfs, cfg.user.as_deref().unwrap_or(""))
            .map_err(|e| format!("image {}: {e}", image.reference))?;
    Ok(ProcessPlan {
        args: argv,
        env: merged.entries,
        cwd,
        uid,
        gid,
        additional_gids,
    })
}

/// `KEY=VALUE` entries in first-set order; setting a key again replaces its value in place.
#[derive(Default)]
struct EnvList {
    entries: Vec<String>,
    positions: HashMap<String, usize>,
}

impl EnvList {
    fn set(&mut self, entry: String) {
        let key = entry
            .split_once('=')
            .map_or(entry.as_str(), |(k, _)| k)
            .to_owned();
        match self.positions.get(&key) {
            Some(&i) => self.entries[i] = entry,
            None => {
                self.positions.insert(key, self.entries.len());
                self.entries.push(entry);
            }
        }
    }
}

/// `uid`, primary `gid` and supplementary groups of a `user[:group]` spec.
fn resolve_user(rootfs: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>), String> {
    let spec = spec.trim();
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let passwd = read_rootfs_file(rootfs, "etc/passwd")?;
    let users = passwd.as_deref().map(parse_db).unwrap_or_default();
    // passwd: name:password:uid:gid:gecos:home:shell
    let entry = match user.parse::<u32>() {
        Ok(uid) => users
            .iter()
            .find(|f| f.get(2).and_then(|u| u.parse().ok()) == Some(uid)),
        Err(_) => Some(
            users
                .iter()
                .find(|f| f[0] == user)
                .ok_or_else(|| format!("user `{user}` not found in /etc/passwd"))?,
        ),
    };
    let uid = match (user.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(fields)) => fields
            .get(2)
            .and_then(|u| u.parse().ok())
            .ok_or_else(|| format!("user `{user}` has a malformed /etc/passwd entry"))?,
        (Err(_), None) => return Err(format!("user `{user}` not found in /etc/passwd")),
    };
    let mut gid = entry
        .and_then(|f| f.get(3))
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);

    let group_file = read_rootfs_file(rootfs, "etc/group")?;
    // group: name:password:gid:member,member
    let groups = group_file.as_deref().map(parse_db).unwrap_or_default();
    if let Some(group) = group.filter(|g| !g.is_empty()) {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == group)
                .and_then(|f| f.get(2))
                .and_then(|g| g.parse().ok())
                .ok_or_else(|| format!("group `{group}` not found in /etc/group"))?,
        };
    }
    let mut additional: Vec<u32> = match entry.map(|f| f[0]) {
        Some(name) => groups
            .iter()
            .filter(|f| {
                f.get(3)
                    .is_some_and(|m| m.split(',').any(|m| m.trim() == name))
            })
            .filter_map(|f| f.get(2).and_then(|g| g.parse().ok()))
            .filter(|g| *g != gid)
            .collect(),
        None => Vec::new(),
    };
    additional.sort_unstable();
    additional.dedup();
    Ok((uid, gid, additional))
}

/// Non-comment lines of a colon-separated database, split; the first field is never missing.
fn parse_db(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect()
}

/// Reads a file of the rootfs (symlinks resolved inside it); `None` if absent.
fn read_rootfs_file(rootfs: &Path, rel: &str) -> Result<Option<String>, String> {
    let path =
        resolve_in_root(rootfs, Path::new(rel)).map_err(|e| format!("resolving /{rel}: {e}"))?;
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading /{rel}: {e}")),
    }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
