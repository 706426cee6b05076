//! The executor libcontainer runs a container's process with: its own
//! default, except that the environment is set with libc rather than with
//! `std::env`.
//!
//! Why: libcontainer's default `setup_envs` calls `std::env::remove_var` and
//! `set_var` in the container's init, which take the process-wide lock of
//! `std::env` for writing. The init is a fork of the daemon (see `worker`),
//! and a fork copies that lock in whatever state another thread of the
//! daemon held it — a thread spawning a CNI plugin or `iptables` holds it for
//! reading — with no thread left in the child to release it. The init then
//! waited forever (seen in `tests/bridge_leaks.rs`: one start in a few dozen,
//! a gdb backtrace ending in `RwLock::write_contended` under `remove_var`).
//! The child is single-threaded, so libc's `clearenv`/`setenv`, which take
//! no lock of ours, are safe there.
//!
//! It also sets the container's `secret_env` after the bundle's environment
//! (see `secrets`): the values live only in this executor's memory, which the
//! init inherits by the fork, never in the bundle's `config.json`.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::Arc;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use oci_spec::runtime::Spec;

/// A NUL-terminated variable name and value, the value wiped when dropped.
pub(super) type SecretVar = (Vec<u8>, zeroize::Zeroizing<Vec<u8>>);

/// [`DefaultExecutor`] with a fork-safe [`Executor::setup_envs`], which also
/// sets `secret_env` (each name and value NUL-terminated).
#[derive(Clone, Default)]
pub(super) struct ForkSafeExecutor {
    secret_env: Arc<Vec<SecretVar>>,
}

impl ForkSafeExecutor {
    /// Sets `secret_env` as well as the bundle's environment.
    pub(super) fn with_secrets(secret_env: Vec<SecretVar>) -> Self {
        Self {
            secret_env: Arc::new(secret_env),
        }
    }
}

impl Executor for ForkSafeExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        // SAFETY: runs in libcontainer's single-threaded init (a fork), where
        // nothing else reads or writes the environment meanwhile.
        #[allow(unsafe_code)]
        unsafe {
            if libc::clearenv() != 0 {
                return Err(ExecutorSetEnvsError::Other("clearenv failed".into()));
            }
        }
        for (key, value) in envs {
            let (Ok(k), Ok(v)) = (CString::new(key.as_str()), CString::new(value)) else {
                return Err(ExecutorSetEnvsError::Other(format!(
                    "environment variable {key:?} contains a NUL byte"
                )));
            };
            // SAFETY: as above; both strings are NUL-terminated.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::setenv(k.as_ptr(), v.as_ptr(), 1) };
            if rc != 0 {
                return Err(ExecutorSetEnvsError::Other(format!(
                    "setting environment variable {key:?}: {}",
                    std::io::Error::last_os_error()
                )));
            }
        }
        for (name, value) in self.secret_env.iter() {
            // Both NUL-terminated by `secrets::open`, which refused a value
            // with a NUL inside; checked again rather than trusted.
            let terminated = |b: &[u8]| b.last() == Some(&0) && !b[..b.len() - 1].contains(&0);
            if !terminated(name) || !terminated(value) {
                return Err(ExecutorSetEnvsError::Other(
                    "a secret variable is not a NUL-terminated string".into(),
                ));
            }
            // SAFETY: as above; both are NUL-terminated with no NUL inside.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::setenv(name.as_ptr().cast(), value.as_ptr().cast(), 1) };
            if rc != 0 {
                return Err(ExecutorSetEnvsError::Other(format!(
                    "setting a secret variable: {}",
                    std::io::Error::last_os_error()
                )));
            }
        }
        Ok(())
    }
}
