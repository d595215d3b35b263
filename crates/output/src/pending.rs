//! Temporary files and directories still being written, removed if the process is interrupted
//! (SIGINT, SIGTERM, SIGHUP) once [`install_signal_cleanup`] has run.
//!
//! A signal is taken by one thread (`sigwait`), never in an asynchronous handler, so the
//! cleanup may lock and allocate. The lock on the registry also guards the few steps that must
//! not be cut in half (swapping a report directory in, then moving the user's files across):
//! the signal thread waits for them to finish before it removes anything.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Paths to remove on interruption.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set once a termination signal has arrived.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How often the cleanup retries removing a directory that a writer is still filling.
const REMOVE_ATTEMPTS: usize = 20;

pub(crate) fn lock() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn register(p: &Path) {
    lock().push(p.to_path_buf());
}

pub(crate) fn unregister_locked(list: &mut Vec<PathBuf>, p: &Path) {
    if let Some(i) = list.iter().rposition(|q| q == p) {
        list.swap_remove(i);
    }
}

pub(crate) fn unregister(p: &Path) {
    unregister_locked(&mut lock(), p);
}

/// Whether a termination signal has arrived: long writers check it between files.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The error a writer returns when it stops because of [`interrupted`].
pub fn interrupted_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted by a signal")
}

/// Remove every registered temporary path (what the signal thread does before the process
/// dies).
pub fn remove_pending() {
    let mut list = lock();
    for p in list.drain(..) {
        for _ in 0..REMOVE_ATTEMPTS {
            let r = match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
                Ok(_) => std::fs::remove_file(&p),
                Err(_) => break,
            };
            if r.is_ok() {
                break;
            }
        }
    }
}

/// Block SIGINT, SIGTERM and SIGHUP in the calling thread (and the threads it starts later)
/// and start a thread that, on one of them, removes the pending temporary paths and then dies
/// of the same signal. Call it first in `main`, before any other thread exists.
#[cfg(unix)]
pub fn install_signal_cleanup() -> std::io::Result<()> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; the calls only read and
    // write the sets passed, and pthread_sigmask/sigwait/raise are thread-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        std::thread::Builder::new()
            .name("signal-cleanup".into())
            .spawn(move || loop {
                let mut sig: libc::c_int = 0;
                if libc::sigwait(&set, &mut sig) != 0 {
                    continue;
                }
                INTERRUPTED.store(true, Ordering::SeqCst);
                remove_pending();
                libc::signal(sig, libc::SIG_DFL);
                let mut one: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut one);
                libc::sigaddset(&mut one, sig);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
                libc::raise(sig);
                std::process::exit(128 + sig);
            })?;
    }
    Ok(())
}

/// Elsewhere the default signal behaviour stays; temporary paths may then be left behind.
#[cfg(not(unix))]
pub fn install_signal_cleanup() -> std::io::Result<()> {
    Ok(())
}
