//! The OCI runtime spec (`config.json`) of a container, built with `oci-spec`.
//!
//! Starts from `oci-spec`'s defaults — runc's: pid, ipc, uts, mount and cgroup
//! namespaces, a minimal `/dev` (tmpfs plus the default device nodes), `/proc`,
//! `/sys` read-only, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, and runc's masked
//! and read-only paths — and sets what the container asks for:
//!
//! - the process from the image config merged with the manifest
//!   ([`super::image::plan_process`]), with `noNewPrivileges` and Docker's
//!   default capability set (everything else dropped);
//! - the network: the host's (no network namespace) by default, a fresh,
//!   empty network namespace for `univrs.io/network: none`, or, for
//!   `bridge`, the namespace the CNI plugins attached (`super::cni`), joined
//!   by its path;
//! - cgroup limits: cpu quota/period from the cpu limit, cpu shares (weight on
//!   cgroup v2) from the cpu request, the memory limit, the pids limit, and a
//!   device allow-list (deny all, then libcgroups' defaults);
//! - `linux.cgroupsPath` `/<cgroup_root>/<container id>`: every container its own.
//!
//! No seccomp profile: libcontainer's `libseccomp` feature needs Debian's
//! `libseccomp-dev` and is left for a later change (README, "Security").

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxNamespace,
    LinuxNamespaceType, LinuxPids, LinuxResources, PosixRlimitBuilder, PosixRlimitType, Root, Spec,
    User,
};
use orchestrator_shared_types::ContainerConfig;

use super::image::ProcessPlan;

/// CFS period for the cpu quota, in microseconds (Docker's and Kubernetes').
pub const CPU_PERIOD_US: u64 = 100_000;

/// Open-file limit of container processes (soft and hard), at most the
/// daemon's own hard limit.
pub const NOFILE_LIMIT: u64 = 65_536;

/// The capabilities a container keeps: Docker's default set.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
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
    let caps: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
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
    spec.set_linux(Some(linux));
    spec
}

/// A hostname from the container id: at most 63 characters.
fn hostname(id: &str) -> String {
    id.chars().take(63).collect()
}
