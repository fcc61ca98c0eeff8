//! Transparent huge pages: refused for this process, given back to the command it runs.
//!
//! mimalloc gives each thread's heap its own region, and where the kernel hands out huge
//! pages the first touch of each region costs 2 MiB: record held 10 MB more at start (24
//! against 15 MB) and peaked 20 MB higher under a load of distinct requests (66–68 against
//! 45–47 MB), for no req/s that the benchmarks could tell apart (benches/RESULTS.md,
//! "Phase O"). mimalloc is built with its `no_thp` feature, so it does not ask for them;
//! [`refuse`] also turns away the ones a system set to `always` would give.
//!
//! The kernel's setting is inherited across fork and exec, so a command run with `-- CMD`
//! (a test suite, maybe a JVM) would run without huge pages too: [`give_back`] restores, in
//! the child, what this process had.

#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};

/// Huge pages were allowed for this process before [`refuse`] turned them off.
#[cfg(target_os = "linux")]
static ALLOWED_BEFORE: AtomicBool = AtomicBool::new(false);

/// Turn huge pages off for this process; call it first thing, before threads start.
pub fn refuse() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl calls that take no memory; if the kernel refuses them, nothing changes.
    unsafe {
        // 0: allowed, 1: already off, -1: not known to this kernel.
        if libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
        {
            ALLOWED_BEFORE.store(true, Ordering::Relaxed);
        }
    }
}

/// Let `command` have huge pages again if this process had them before [`refuse`].
pub fn give_back(command: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    if ALLOWED_BEFORE.load(Ordering::Relaxed) {
        // SAFETY: the closure runs in the child between fork and exec, and makes one
        // system call (async-signal-safe), touching no memory of the parent's.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}
