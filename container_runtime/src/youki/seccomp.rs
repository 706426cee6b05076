//! The seccomp filter every container gets by default: Docker's default
//! profile, as `linux.seccomp` of the OCI spec, loaded by libcontainer (its
//! `libseccomp` feature, Debian's `libseccomp-dev`) just before the
//! container's process is executed.
//!
//! It follows moby's `profiles/seccomp/default.json` as of moby commit
//! `00f3d189e420d485e42d15fe494f96d272284e0e` (compare with that file when
//! updating): every syscall not listed fails with `EPERM`; the list below is its
//! unconditional allow list, plus the rules Docker adds for the capabilities
//! we grant (Docker's default set, see `spec.rs`). Docker resolves its
//! `includes`/`excludes` when it writes the spec; so do we, for our fixed
//! capability set and at compile time for the architecture:
//!
//! - architectures: x86-64 with x86 and x32, or aarch64 with arm, as Docker's
//!   `archMap`; on any other architecture only the native one;
//! - `socket` for every family but `AF_VSOCK`; `personality` only with the
//!   values Docker allows; `chroot` (we grant `CAP_SYS_CHROOT`);
//! - `clone` only without namespace flags (we do not grant `CAP_SYS_ADMIN`),
//!   and `clone3` fails with `ENOSYS`, as in Docker, so that libc falls back
//!   to `clone`, whose flags the filter can see;
//! - `arch_prctl` and `modify_ldt` on x86-64, the ARM-only calls on aarch64.
//!
//! What is simplified or stricter than Docker:
//!
//! - no `ptrace`, `process_vm_readv` or `process_vm_writev` (Docker allows
//!   them on kernels from 4.8): debuggers and `strace` do not work inside a
//!   container;
//! - no rules for capabilities we never grant (`CAP_SYS_ADMIN`,
//!   `CAP_SYS_PTRACE`, `CAP_SYS_TIME`, `CAP_SYS_MODULE`, `CAP_BPF`, …): so no
//!   `mount`, `umount2`, `unshare`, `setns`, `bpf`, `perf_event_open`,
//!   `kexec_load`, `init_module`, `reboot`, `settimeofday`, … ; `keyctl`,
//!   `add_key`, `request_key`, `userfaultfd` and `open_by_handle_at` are not
//!   allowed either (as in Docker);
//! - no s390, MIPS, PowerPC or RISC-V specifics.
//!
//! One difference in form: libcontainer 0.7 reads `SCMP_CMP_MASKED_EQ` as
//! "`arg & valueTwo == value`" (runc and Docker: mask in `value`, compared
//! value in `valueTwo`), so the `clone` rule puts the mask in `valueTwo`.
//! `the_clone_rule_masks_namespace_flags` and the container tests (every
//! shell forks through `clone`) hold it to that.
//!
//! Syscalls that this host's libseccomp does not know are skipped by
//! libcontainer with a warning, as runc does.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};
use oci_spec::OciSpecError;

/// `EPERM`: what a syscall outside the profile returns.
pub const EPERM: u32 = 1;

/// `ENOSYS`: what `clone3` returns, so that libc falls back to `clone`.
pub const ENOSYS: u32 = 38;

/// `AF_VSOCK`, the one socket family Docker refuses.
const AF_VSOCK: u64 = 40;

/// The `clone` flags that make namespaces (`CLONE_NEWNS`, `CLONE_NEWCGROUP`,
/// `CLONE_NEWUTS`, `CLONE_NEWIPC`, `CLONE_NEWUSER`, `CLONE_NEWPID`,
/// `CLONE_NEWNET`): Docker's mask, 2114060288.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `personality` values Docker allows: `PER_LINUX`, `UNAME26`,
/// `PER_LINUX32`, `UNAME26 | PER_LINUX32`, and `0xffffffff` (query).
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Docker's unconditional allow list (moby `profiles/seccomp/default.json`),
/// then `chroot`, which Docker allows with `CAP_SYS_CHROOT` (containers keep
/// it). Names separated by white space.
const ALLOWED: &str = "\
    accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 \
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime \
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect \
    copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old \
    epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit \
    exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir \
    fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr \
    flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync \
    ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents \
    getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 \
    getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid \
    getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname \
    getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr \
    inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy \
    io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit \
    io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule \
    landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat \
    listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise \
    membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 \
    mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive \
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget \
    msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat \
    _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc \
    pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 \
    process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead \
    readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg \
    remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq \
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend \
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr \
    sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler \
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr \
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop \
    semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid \
    setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid \
    setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid \
    setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address \
    setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd \
    signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 \
    statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create \
    timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime \
    timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime \
    timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat \
    utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev \
    chroot";

/// The architectures of the filter, and the syscalls Docker allows only on
/// them.
#[cfg(target_arch = "x86_64")]
fn arch() -> (Vec<Arch>, &'static [&'static str]) {
    (
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        &["arch_prctl", "modify_ldt"],
    )
}

#[cfg(target_arch = "aarch64")]
fn arch() -> (Vec<Arch>, &'static [&'static str]) {
    (
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    )
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn arch() -> (Vec<Arch>, &'static [&'static str]) {
    (vec![Arch::ScmpArchNative], &[])
}

fn rule<'a>(names: impl IntoIterator<Item = &'a str>, action: LinuxSeccompAction) -> LinuxSyscall {
    let mut r = LinuxSyscall::default();
    r.set_names(names.into_iter().map(str::to_owned).collect());
    r.set_action(action);
    r
}

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> Result<LinuxSeccompArg, OciSpecError> {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    match value_two {
        Some(v) => b.value_two(v),
        None => b,
    }
    .build()
}

fn allow_if(name: &str, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut r = rule([name], LinuxSeccompAction::ScmpActAllow);
    r.set_args(Some(args));
    r
}

/// Docker's default profile for containers without `CAP_SYS_ADMIN`. Fails
/// only if `oci-spec` refuses one of its rules.
pub fn default_profile() -> Result<LinuxSeccomp, OciSpecError> {
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpMaskedEq, ScmpCmpNe};
    let (architectures, arch_specific) = arch();
    let mut syscalls = vec![
        rule(ALLOWED.split_whitespace(), LinuxSeccompAction::ScmpActAllow),
        rule(
            arch_specific.iter().copied(),
            LinuxSeccompAction::ScmpActAllow,
        ),
        allow_if("socket", vec![arg(0, ScmpCmpNe, AF_VSOCK, None)?]),
        // libcontainer's reading of MASKED_EQ: `arg0 & valueTwo == value`.
        allow_if(
            "clone",
            vec![arg(0, ScmpCmpMaskedEq, 0, Some(CLONE_NAMESPACE_FLAGS))?],
        ),
    ];
    for p in PERSONALITIES {
        syscalls.push(allow_if("personality", vec![arg(0, ScmpCmpEq, p, None)?]));
    }
    let mut clone3 = rule(["clone3"], LinuxSeccompAction::ScmpActErrno);
    clone3.set_errno_ret(Some(ENOSYS));
    syscalls.push(clone3);

    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(EPERM));
    profile.set_architectures(Some(architectures));
    profile.set_syscalls(Some(syscalls));
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules that mention `name`.
    fn rules_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn everything_not_listed_fails_with_eperm() {
        let p = default_profile().expect("the profile");
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(EPERM));
        let arches = p.architectures().clone().unwrap_or_default();
        assert!(!arches.is_empty());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            arches,
            [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
    }

    #[test]
    fn the_dangerous_syscalls_are_not_allowed() {
        let p = default_profile().expect("the profile");
        for name in [
            "unshare",
            "setns",
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "keyctl",
            "add_key",
            "request_key",
            "bpf",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kexec_load",
            "kexec_file_load",
            "open_by_handle_at",
            "init_module",
            "finit_module",
            "delete_module",
            "reboot",
            "swapon",
            "swapoff",
            "acct",
            "settimeofday",
            "clock_settime",
            "userfaultfd",
            "perf_event_open",
            "fsopen",
            "move_mount",
            "open_tree",
            "iopl",
            "ioperm",
            "syslog",
            "sethostname",
        ] {
            let allowing: Vec<_> = rules_for(&p, name)
                .into_iter()
                .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
                .collect();
            assert!(allowing.is_empty(), "{name} is allowed by {allowing:?}");
        }
    }

    #[test]
    fn clone3_fails_with_enosys_so_libc_falls_back_to_clone() {
        let p = default_profile().expect("the profile");
        let rules = rules_for(&p, "clone3");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(rules[0].errno_ret(), Some(ENOSYS));
    }

    #[test]
    fn the_clone_rule_masks_namespace_flags() {
        let p = default_profile().expect("the profile");
        let rules = rules_for(&p, "clone");
        assert_eq!(rules.len(), 1, "{rules:?}");
        let args = rules[0].args().clone().unwrap_or_default();
        assert_eq!(args.len(), 1);
        let a = args[0];
        assert_eq!(a.index(), 0);
        assert_eq!(a.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        // libcontainer compares `arg & value_two` with `value`.
        assert_eq!((a.value_two(), a.value()), (Some(CLONE_NAMESPACE_FLAGS), 0));
        // CLONE_NEWNS, CLONE_NEWUSER and CLONE_NEWNET are in the mask.
        for flag in [0x0002_0000, 0x1000_0000, 0x4000_0000] {
            assert_ne!(CLONE_NAMESPACE_FLAGS & flag, 0, "{flag:#x}");
        }
    }

    #[test]
    fn conditional_syscalls_are_allowed_only_with_their_arguments() {
        let p = default_profile().expect("the profile");
        for name in ["socket", "personality", "clone"] {
            let rules = rules_for(&p, name);
            assert!(!rules.is_empty(), "{name} has no rule");
            assert!(
                rules.iter().all(|r| r.args().is_some()),
                "{name} is allowed unconditionally"
            );
        }
        let values: Vec<u64> = rules_for(&p, "personality")
            .iter()
            .flat_map(|r| r.args().clone().unwrap_or_default())
            .map(|a| a.value())
            .collect();
        assert_eq!(values, PERSONALITIES);
    }

    #[test]
    fn everyday_syscalls_are_allowed() {
        let p = default_profile().expect("the profile");
        for name in [
            "read", "execve", "openat", "wait4", "futex", "chroot", "bind",
        ] {
            assert!(
                rules_for(&p, name)
                    .iter()
                    .any(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none()),
                "{name} is not allowed"
            );
        }
    }
}
