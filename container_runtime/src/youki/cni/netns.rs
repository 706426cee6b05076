//! Named network namespaces, made as `ip netns add` makes them: a new
//! namespace bind-mounted on a file of a shared mount, so that it outlives
//! every process in it and an unmount reaches every mount namespace.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::config::check_id;
use super::{CniError, Result};

/// Where `ip netns` keeps its namespaces (so `ip -n NAME` finds ours).
pub const DEFAULT_NETNS_DIR: &str = "/run/netns";

/// Serialises turning the directory into a shared mount, so that two
/// creations never stack two bind mounts of it.
static DIR_SETUP: Mutex<()> = Mutex::new(());

/// A named network namespace: a file bind-mounted on the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetNs {
    path: PathBuf,
}

impl NetNs {
    /// The namespace `name` in `dir`, whether or not it exists.
    pub fn at(dir: &Path, name: &str) -> Result<Self> {
        check_id("netns", name)?;
        Ok(Self {
            path: dir.join(name),
        })
    }

    /// Creates the namespace `name` in `dir` (which is created, and made a
    /// shared mount as `ip netns` does). Blocks briefly: a thread of its own
    /// enters the new namespace, bind-mounts it, and ends.
    pub fn create(dir: &Path, name: &str) -> Result<Self> {
        let ns = Self::at(dir, name)?;
        let err = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source: std::io::Error| CniError::Netns {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(err("creating the directory of", &ns.path))?;
        make_shared(dir).map_err(err("sharing the mounts of the directory of", &ns.path))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&ns.path)
            .map_err(err("creating the file of", &ns.path))?;
        let target = ns.path.clone();
        let made = std::thread::spawn(move || -> std::io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")));
        if let Err(e) = made {
            if let Err(rm) = std::fs::remove_file(&ns.path) {
                tracing::warn!(path = %ns.path.display(), error = %rm, "removing a failed namespace file");
            }
            return Err(err("creating", &ns.path)(e));
        }
        Ok(ns)
    }

    /// The namespace's file (`CNI_NETNS`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the namespace is mounted on its file.
    pub fn exists(&self) -> bool {
        let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return false;
        };
        let p = self.path.to_string_lossy();
        mounts
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(p.as_ref()) && l.contains(" nsfs "))
    }

    /// Unmounts and deletes the namespace's file; the namespace ends with
    /// its last process. Idempotent.
    pub fn remove(&self) -> Result<()> {
        let err = |action: &'static str| {
            let path = self.path.clone();
            move |source: std::io::Error| CniError::Netns {
                action,
                path,
                source,
            }
        };
        // Unmount every stacked mount (EINVAL: nothing is mounted there any more).
        loop {
            match umount2(&self.path, MntFlags::MNT_DETACH) {
                Ok(()) => continue,
                Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
                Err(e) => return Err(err("unmounting")(e.into())),
            }
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err("removing the file of")(e)),
        }
    }
}

/// Makes `dir` a shared mount (binding it on itself first if it is not a
/// mount point), as `ip netns add` does.
fn make_shared(dir: &Path) -> std::io::Result<()> {
    let _guard = DIR_SETUP.lock().unwrap_or_else(|p| p.into_inner());
    let share = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match share() {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => {
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            Ok(share()?)
        }
        Err(e) => Err(e.into()),
    }
}
