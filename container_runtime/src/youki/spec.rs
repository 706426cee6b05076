//! The OCI runtime spec (`config.json`) of a container, built with `oci-spec`.
//!
//! Starts from `oci-spec`'s defaults — runc's: pid, ipc, uts, mount and cgroup
//! namespaces, a minimal `/dev` (tmpfs plus the default device nodes), `/proc`,
//! `/sys` read-only, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, and runc's masked
//! and read-only paths — and sets what the container asks for:
//!
//! - the process from the image config merged with the manifest
//!   ([`super::image::plan_process`]), with `noNewPrivileges` and Docker's
//!   default capability set without `CAP_NET_RAW` (everything else dropped;
//!   `CAP_NET_RAW` is kept only where the operator allows it,
//!   `YoukiConfig::allow_net_raw`);
//! - Docker's default seccomp profile ([`super::seccomp`]), unless the
//!   operator turned it off (`YoukiConfig::seccomp`);
//! - the network: the host's (no network namespace) by default, a fresh,
//!   empty network namespace for `univrs.io/network: none`, or, for
//!   `bridge`, the namespace the CNI plugins attached (`super::cni`), joined
//!   by its path, with a `resolv.conf` naming the node's DNS server bound
//!   read-only at `/etc/resolv.conf`;
//! - cgroup limits: cpu quota/period from the cpu limit, cpu shares (weight on
//!   cgroup v2) from the cpu request, the memory limit, the pids limit, and a
//!   device allow-list (deny all, then libcgroups' defaults);
//! - `linux.cgroupsPath` `/<cgroup_root>/<container id>`: every container its own.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxNamespace,
    LinuxNamespaceType, LinuxPids, LinuxResources, LinuxSeccomp, Mount, PosixRlimitBuilder,
    PosixRlimitType, Root, Spec, User,
};
use orchestrator_shared_types::private_fs;
use orchestrator_shared_types::ContainerConfig;

use super::image::ProcessPlan;

/// CFS period for the cpu quota, in microseconds (Docker's and Kubernetes').
pub const CPU_PERIOD_US: u64 = 100_000;

/// Open-file limit of container processes (soft and hard), at most the
/// daemon's own hard limit.
pub const NOFILE_LIMIT: u64 = 65_536;

/// The capabilities a container keeps: Docker's default set without
/// `CAP_NET_RAW` (raw and packet sockets: forged packets, ARP and DNS
/// spoofing of the other containers on the bridge), which Kubernetes'
/// restricted profile drops too. busybox's `ping` needs it (other pings may
/// use ICMP datagram sockets, which the node's `net.ipv4.ping_group_range`
/// allows).
pub const DEFAULT_CAPABILITIES: [Capability; 13] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The container's network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// The host's network namespace.
    Host,
    /// A network namespace of its own with only loopback.
    None,
    /// The network namespace at this path (bridge mode: made and attached
    /// by the CNI plugins before the container is created).
    Join(std::path::PathBuf),
}

/// Everything the spec is made from.
pub struct SpecInput<'a> {
    /// The container id (hostname prefix and cgroup leaf).
    pub id: &'a str,
    /// The container as the manifest describes it.
    pub config: &'a ContainerConfig,
    /// Its process, merged with the image's config.
    pub process: &'a ProcessPlan,
    /// Its root filesystem (the merged writable view).
    pub rootfs: &'a Path,
    /// `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// Host or none.
    pub network: NetworkMode,
    /// The seccomp filter (Docker's default profile, [`super::seccomp`]),
    /// or none.
    pub seccomp: Option<LinuxSeccomp>,
    /// Keep `CAP_NET_RAW` as well as [`DEFAULT_CAPABILITIES`].
    pub allow_net_raw: bool,
    /// A file bound read-only at `/etc/resolv.conf` (bridge mode: the
    /// node's DNS server), or the image's own.
    pub resolv_conf: Option<std::path::PathBuf>,
    /// Volumes bound into the container.
    pub volumes: Vec<VolumeBind>,
    /// Secret files (on the container's secrets tmpfs), bound read-only.
    pub secret_files: Vec<VolumeBind>,
}

/// A volume mounted on the node, bound into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeBind {
    /// Where it is mounted on the node.
    pub source: std::path::PathBuf,
    /// Where it appears in the container.
    pub destination: String,
    /// Bound read-only.
    pub read_only: bool,
}

/// CPU shares for a request of `millis` millicores, as Kubernetes computes them.
pub fn cpu_shares(millis: u64) -> u64 {
    (millis.saturating_mul(1024) / 1000).max(2)
}

/// CFS quota in microseconds per [`CPU_PERIOD_US`] for a limit of `millis`.
pub fn cpu_quota(millis: u64) -> i64 {
    let quota = millis.saturating_mul(CPU_PERIOD_US) / 1000;
    // The kernel's minimum quota is 1 ms.
    i64::try_from(quota.max(1000)).unwrap_or(i64::MAX)
}

fn resources(config: &ContainerConfig) -> LinuxResources {
    let mut res = LinuxResources::default();
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".to_owned()));
    res.set_devices(Some(vec![deny_all]));

    let req = &config.resources;
    let mut cpu = LinuxCpu::default();
    let mut cpu_set = false;
    if let Some(limit) = req.limits.cpu {
        cpu.set_quota(Some(cpu_quota(limit.millis())));
        cpu.set_period(Some(CPU_PERIOD_US));
        cpu_set = true;
    }
    if let Some(request) = req.requests.cpu.or(req.limits.cpu) {
        cpu.set_shares(Some(cpu_shares(request.millis())));
        cpu_set = true;
    }
    if cpu_set {
        res.set_cpu(Some(cpu));
    }
    if let Some(limit) = req.limits.memory {
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(i64::try_from(limit.bytes()).unwrap_or(i64::MAX)));
        res.set_memory(Some(memory));
    }
    if let Some(limit) = req.limits.pids {
        let mut pids = LinuxPids::default();
        pids.set_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        res.set_pids(Some(pids));
    }
    res
}

/// Writes `spec` as a bundle's `config.json`, mode 0600: it holds the
/// container's environment (`Spec::save` would make it 0644).
pub fn save(path: &Path, spec: &Spec) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(private_fs::create(path)?);
    serde_json::to_writer(&mut out, spec)?;
    std::io::Write::flush(&mut out)
}

/// The spec of one container.
pub fn build(input: &SpecInput<'_>) -> Spec {
    let mut spec = Spec::default();

    let mut root = Root::default();
    root.set_path(input.rootfs.to_path_buf());
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    spec.set_hostname(Some(hostname(input.id)));

    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(input.process.args.clone()));
    process.set_env(Some(input.process.env.clone()));
    process.set_cwd(input.process.cwd.clone().into());
    let mut user = User::default();
    user.set_uid(input.process.uid);
    user.set_gid(input.process.gid);
    if !input.process.additional_gids.is_empty() {
        user.set_additional_gids(Some(input.process.additional_gids.clone()));
    }
    process.set_user(user);
    process.set_no_new_privileges(Some(true));
    let mut caps: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
    if input.allow_net_raw {
        caps.insert(Capability::NetRaw);
    }
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(caps.clone()));
    capabilities.set_effective(Some(caps.clone()));
    capabilities.set_permitted(Some(caps));
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    process.set_capabilities(Some(capabilities));
    // Never above the daemon's own hard limit: raising it needs
    // CAP_SYS_RESOURCE, which a daemon in a container may not have.
    let nofile_limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(NOFILE_LIMIT, |(_, hard)| hard.min(NOFILE_LIMIT));
    match PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(nofile_limit)
        .hard(nofile_limit)
        .build()
    {
        Ok(nofile) => {
            process.set_rlimits(Some(vec![nofile]));
        }
        Err(e) => tracing::warn!(error = %e, "keeping the default open-file limit"),
    }
    spec.set_process(Some(process));

    let mut linux = spec.linux().clone().unwrap_or_default();
    let namespaces: Vec<LinuxNamespace> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|ns| input.network != NetworkMode::Host || ns.typ() != LinuxNamespaceType::Network)
        .map(|mut ns| {
            if let (NetworkMode::Join(path), LinuxNamespaceType::Network) =
                (&input.network, ns.typ())
            {
                ns.set_path(Some(path.clone()));
            }
            ns
        })
        .collect();
    linux.set_namespaces(Some(namespaces));
    linux.set_cgroups_path(Some(input.cgroups_path.clone().into()));
    linux.set_resources(Some(resources(input.config)));
    linux.set_seccomp(input.seccomp.clone());
    spec.set_linux(Some(linux));
    if let Some(path) = &input.resolv_conf {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        let mut resolv = Mount::default();
        resolv.set_destination("/etc/resolv.conf".into());
        resolv.set_typ(Some("bind".into()));
        resolv.set_source(Some(path.clone()));
        resolv.set_options(Some(
            ["rbind", "ro", "nosuid", "nodev", "noexec"]
                .map(String::from)
                .to_vec(),
        ));
        mounts.push(resolv);
        spec.set_mounts(Some(mounts));
    }
    if !input.volumes.is_empty() {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for v in &input.volumes {
            let mut m = Mount::default();
            m.set_destination(v.destination.clone().into());
            m.set_typ(Some("bind".into()));
            m.set_source(Some(v.source.clone()));
            let mode = if v.read_only { "ro" } else { "rw" };
            m.set_options(Some(
                ["rbind", mode, "nosuid", "nodev"]
                    .map(String::from)
                    .to_vec(),
            ));
            mounts.push(m);
        }
        spec.set_mounts(Some(mounts));
    }
    if !input.secret_files.is_empty() {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for f in &input.secret_files {
            let mut m = Mount::default();
            m.set_destination(f.destination.clone().into());
            m.set_typ(Some("bind".into()));
            m.set_source(Some(f.source.clone()));
            m.set_options(Some(
                ["bind", "ro", "nosuid", "nodev", "noexec"]
                    .map(String::from)
                    .to_vec(),
            ));
            mounts.push(m);
        }
        spec.set_mounts(Some(mounts));
    }
    spec
}

/// A hostname from the container id: at most 63 characters.
fn hostname(id: &str) -> String {
    id.chars().take(63).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(seccomp: Option<LinuxSeccomp>, allow_net_raw: bool) -> Spec {
        let config = ContainerConfig {
            name: "main".into(),
            image: "busybox".into(),
            command: Vec::new(),
            args: Vec::new(),
            env: Default::default(),
            secret_env: Vec::new(),
            secret_files: Vec::new(),
            volumes: Vec::new(),
            ports: Vec::new(),
            resources: Default::default(),
            liveness_probe: None,
            readiness_probe: None,
        };
        let process = ProcessPlan {
            args: vec!["sh".into()],
            env: Vec::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
        };
        build(&SpecInput {
            id: "c1",
            config: &config,
            process: &process,
            rootfs: Path::new("/nonexistent"),
            cgroups_path: "/univrs/c1".into(),
            network: NetworkMode::Host,
            seccomp,
            allow_net_raw,
            resolv_conf: None,
            volumes: Vec::new(),
            secret_files: Vec::new(),
        })
    }

    fn caps(spec: &Spec) -> LinuxCapabilities {
        spec.process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .expect("capabilities")
    }

    #[test]
    fn containers_get_the_seccomp_profile_and_no_cap_net_raw() {
        let profile = super::super::seccomp::default_profile().expect("the profile");
        let spec = spec_with(Some(profile.clone()), false);
        let linux = spec.linux().clone().expect("linux");
        assert_eq!(linux.seccomp(), &Some(profile));
        let caps = caps(&spec);
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            let set = set.clone().expect("a capability set");
            assert!(!set.contains(&Capability::NetRaw));
            assert_eq!(set.len(), DEFAULT_CAPABILITIES.len());
        }
    }

    #[test]
    fn the_operator_can_relax_both() {
        let spec = spec_with(None, true);
        assert_eq!(spec.linux().clone().expect("linux").seccomp(), &None);
        let caps = caps(&spec);
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            assert!(set
                .clone()
                .expect("a capability set")
                .contains(&Capability::NetRaw));
        }
    }
}
