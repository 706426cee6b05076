//! How libcontainer is called: each call in a child process forked for it,
//! from a small pool of dedicated threads.
//!
//! libcontainer is synchronous, forks (raw `clone`/`clone3`) and changes
//! process-wide state (container creation `chdir`s for its notify socket).
//! Two hazards follow for a multi-threaded daemon:
//!
//! - **Overlapping calls in one process** fail or hang (STACK.md: the `chdir`
//!   of one create pulls the directory from under another).
//! - **Forking a multi-threaded process.** A raw `clone` skips glibc's fork
//!   handlers, so the child inherits malloc's arena locks in whatever state
//!   other threads held them, and its first allocation can deadlock. That was
//!   seen here: one create in a few hundred hung in `realloc` inside the
//!   container's init.
//!
//! - **A thread starting or ending while another forks.** Rust's standard
//!   library takes a process-wide lock (its thread-info lock, kept for the
//!   stack-overflow handler) when a thread starts and when it ends. A child
//!   forked at that moment inherits it held, for ever; libcontainer's
//!   intermediate process leaves through `std::process::exit`, which takes
//!   that lock, and hung there. Seen here on the very first create, forked
//!   by one of this pool's threads while the others were still starting. So
//!   the pool is fully started before any call is sent, its threads never
//!   end, and the daemon keeps its runtime's blocking threads alive rather
//!   than ending and restarting them.
//!
//! So every call runs in a child made by glibc's `fork()` — which takes and
//! releases malloc's locks around the fork — and libcontainer forks from that
//! single-threaded child, whose `chdir` touches nobody else. The child runs
//! with tracing switched off (a lock of the log writer could be held by
//! another thread at fork time), sends its result back as JSON over a pipe and
//! `_exit`s. A fork of the daemon costs well under a millisecond.
//!
//! Since calls no longer share a process, they may overlap: a process-wide
//! pool of [`POOL_SIZE`] threads, fed by one channel, runs them — bounded, in
//! arrival order, never on a tokio worker (a mutex around `spawn_blocking`
//! would block those). Different containers never share a bundle, state
//! directory or cgroup.
//!
//! The container's init, a child of that short-lived process, is re-parented
//! to the daemon when the process exits, because the runtime makes the daemon
//! a child subreaper (`PR_SET_CHILD_SUBREAPER`); the daemon then waits for it
//! like any child of its own.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::subscriber::NoSubscriber;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Threads running libcontainer calls at once.
pub const POOL_SIZE: usize = 4;

static WORKER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

fn sender() -> &'static mpsc::Sender<Job> {
    WORKER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        // Every thread of the pool has started before the first call is
        // sent: a thread starting while another forks leaves std's
        // thread-info lock held in the child (see the module's doc).
        let (started_tx, started) = mpsc::channel::<()>();
        let mut threads = 0;
        for i in 0..POOL_SIZE {
            let rx = Arc::clone(&rx);
            let started_tx = started_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("libcontainer-{i}"))
                .spawn(move || {
                    let _ = started_tx.send(());
                    drop(started_tx);
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A panic in one call must not take the thread down
                        // with it; that caller sees `WorkerGone`, the next
                        // are served.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                            tracing::error!("a libcontainer call panicked");
                        }
                    }
                });
            match spawned {
                Ok(_) => threads += 1,
                // With no thread at all, every call answers "worker gone".
                Err(e) => tracing::error!(error = %e, "cannot start a libcontainer worker thread"),
            }
        }
        drop(started_tx);
        for _ in 0..threads {
            let _ = started.recv();
        }
        tx
    })
}

/// No worker thread could take the call (none could be started).
#[derive(Debug)]
struct WorkerGone;

/// Runs `f` on a worker thread and waits for its result.
async fn run<T, F>(f: F) -> Result<T, WorkerGone>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        // The caller may have gone away; its result is then dropped.
        let _ = tx.send(f());
    });
    sender().send(job).map_err(|_| WorkerGone)?;
    rx.await.map_err(|_| WorkerGone)
}

/// Runs `f` in a child forked for it on a worker thread, and returns
/// what it returned. `f` must only make system calls and allocate: it runs
/// in a copy of the process where only this thread exists.
pub async fn run_forked<T, F>(f: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    run(move || fork_and_run(f))
        .await
        .map_err(|_| "the libcontainer worker thread is gone".to_owned())?
}

fn fork_and_run<T, F>(f: F) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let (read_end, write_end) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("creating a pipe: {e}"))?;
    // SAFETY: the child only runs `f` (libcontainer: system calls and
    // allocation, which glibc's fork makes safe) with tracing disabled,
    // writes to a pipe and leaves with `_exit`, running no destructors or
    // atexit handlers of the parent's state.
    #[allow(unsafe_code)]
    let forked = unsafe { fork() };
    match forked {
        Ok(ForkResult::Child) => {
            drop(read_end);
            let result = tracing::subscriber::with_default(NoSubscriber::default(), f);
            let bytes = serde_json::to_vec(&result).unwrap_or_default();
            let mut out = File::from(write_end);
            let code = i32::from(out.write_all(&bytes).is_err());
            // SAFETY: ends the forked child without unwinding into the
            // parent's copied state.
            #[allow(unsafe_code)]
            unsafe {
                libc::_exit(code)
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            let mut bytes = Vec::new();
            let read = File::from(read_end).read_to_end(&mut bytes);
            let status = loop {
                match waitpid(child, None) {
                    Err(Errno::EINTR) => continue,
                    other => break other,
                }
            };
            read.map_err(|e| format!("reading the libcontainer child's answer: {e}"))?;
            serde_json::from_slice::<Result<T, String>>(&bytes).map_err(|_| {
                format!("the libcontainer child ended without an answer ({status:?})")
            })?
        }
        Err(e) => Err(format!("forking for libcontainer: {e}")),
    }
}
