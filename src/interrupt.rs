//! Ctrl-C (SIGINT) and SIGTERM at any moment of a run.
//!
//! A plain sigaction handler is installed first thing in `main`, before
//! the namespace and the runtime exist, so no moment is left where the
//! default action would kill the process and lose the capture. The handler
//! only records which signal came; the run polls it, stops between steps,
//! and still renders and saves what it captured.
//!
//! Threads that make blocking socket calls (the driver's sides, the capture
//! collector) block both signals, so a signal never lands in one of their
//! system calls: a read with SO_RCVTIMEO is not restarted after a handler
//! runs and would be recorded as a bogus EINTR.

use std::sync::atomic::{AtomicI32, Ordering};

static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only the first signal counts; a second Ctrl-C while saving changes nothing.
    let _ = CAUGHT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler is async-signal-safe (one atomic store);
        // the sigaction struct is fully initialised.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread (and threads it starts).
pub fn block_in_this_thread() {
    // SAFETY: a local signal set passed to pthread_sigmask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// The signal that arrived, by name, if one did.
pub fn caught() -> Option<&'static str> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGTERM => Some("SIGTERM"),
        _ => Some("SIGINT"),
    }
}

/// The exit code for an interrupted run: 128 + the signal number.
pub fn exit_code(name: &str) -> u8 {
    if name == "SIGTERM" {
        143
    } else {
        130
    }
}
