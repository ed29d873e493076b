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

/// Sends `sig` to the process `pid` (or its group when negative).
pub fn kill(pid: i32, sig: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) takes no pointers.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A signal's C name (`SIGTERM`), or `signal N`.
pub fn name(sig: i32) -> String {
    match sig {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGSTOP => "SIGSTOP".into(),
        libc::SIGCONT => "SIGCONT".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        other => format!("signal {other}"),
    }
}

pub use libc::{SIGINT, SIGKILL, SIGTERM};

extern "C" fn do_nothing(_: libc::c_int) {}

/// SIGINT does nothing to this process from now on (a terminal's Ctrl-C
/// reaches the traced program, which decides; hc-trace lives on to show what
/// happened). A handler, not SIG_IGN, so a program started afterwards gets
/// the default action: exec resets handled signals but keeps ignored ones.
pub fn let_sigint_pass() {
    // SAFETY: installs an async-signal-safe handler that does nothing; the
    // sigaction struct is fully initialised.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = do_nothing as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

/// A signal sent to hc-trace by another process (kill, timeout, a CI
/// cancellation) during `exec`: the first one's number.
static EXEC_SENT: AtomicI32 = AtomicI32::new(0);
/// Ctrl-C's from the terminal during `exec` (the traced program, in the
/// same foreground process group, got each one too).
static EXEC_TTY: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_exec_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let code = if info.is_null() {
        0
    } else {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO
        // handler; reading one field of it is async-signal-safe.
        unsafe { (*info).si_code }
    };
    if sig == libc::SIGINT && code == libc::SI_KERNEL {
        EXEC_TTY.fetch_add(1, Ordering::SeqCst);
    } else {
        let _ = EXEC_SENT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// For `exec`: SIGINT and SIGTERM no longer end hc-trace; the handler tells
/// a Ctrl-C typed at the terminal (the kernel sent it to the whole
/// foreground group, the program included) from a signal another process
/// sent to hc-trace alone, which the tracer then passes on ([`exec_sent`],
/// [`exec_terminal_interrupts`]). A handler, not SIG_IGN, so a program
/// started afterwards gets the default actions: exec resets handled
/// signals but keeps ignored ones.
pub fn forward_for_exec() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only updates atomics (async-signal-safe); the
        // sigaction struct is fully initialised.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_exec_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The first SIGINT or SIGTERM another process sent to hc-trace during exec.
pub fn exec_sent() -> Option<i32> {
    match EXEC_SENT.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// How many Ctrl-C's came from the terminal during exec.
pub fn exec_terminal_interrupts() -> i32 {
    EXEC_TTY.load(Ordering::SeqCst)
}
