//! Ctrl-C (SIGINT) and SIGTERM at any moment of a run.
//!
//! A plain sigaction handler is installed first thing in `main`, before
//! the namespace and the runtime exist, so no moment is left where the
//! default action would kill the process and lose the capture. What a
//! signal does depends on the moment:
//!
//! - **at a prompt or while reading input** ([`immediate`]): nothing has
//!   started that needs undoing, so the handler ends the process at once
//!   with 128 + N;
//! - **during a run**, the first signal is only recorded; the run polls it
//!   ([`caught`]), stops between steps, and still renders and saves what it
//!   captured;
//! - **a second signal** ends the process at once, after best-effort
//!   cleanup: the watcher thread runs what the run registered with
//!   [`on_second_signal`] (remove the tracing instance, the fault rules,
//!   the half-written file), says what it did, and exits 128 + N (N of the
//!   first signal). Without a registration there is nothing to undo and
//!   the handler exits itself. A third signal exits even if the cleanup hangs.
//!
//! Threads that make blocking socket calls (the driver's sides, the capture
//! collector) block both signals, so a signal never lands in one of their
//! system calls: a read with SO_RCVTIMEO is not restarted after a handler
//! runs and would be recorded as a bogus EINTR.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static CAUGHT: AtomicI32 = AtomicI32::new(0);
/// How many SIGINT/SIGTERM have arrived.
static COUNT: AtomicI32 = AtomicI32::new(0);
/// At a prompt or reading input: a signal ends the process at once.
static IMMEDIATE: AtomicBool = AtomicBool::new(false);
/// The watcher thread runs (it does the second signal's cleanup).
static WATCHING: AtomicBool = AtomicBool::new(false);

/// What a second signal undoes before the process ends: each returns what
/// it did, for the one line said on standard error.
type Cleanup = Arc<dyn Fn() -> Option<String> + Send + Sync>;
static CLEANUPS: Mutex<Vec<(u64, Cleanup)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Ends the process now, without running destructors or atexit handlers
/// (other threads may hold any lock): `_exit` is async-signal-safe.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Only the first signal decides the exit code.
    let _ = CAUGHT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    let first = CAUGHT.load(Ordering::SeqCst);
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if IMMEDIATE.load(Ordering::SeqCst) {
        // A new line ends the line a prompt left open, so the shell's prompt
        // starts clean; then what happened.
        let msg = stopped_before_anything_ran(first);
        // SAFETY: write(2) on a static buffer is async-signal-safe; a failure changes nothing.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        exit_now(128 + first);
    }
    // Second signal with nothing to clean up (no watcher), or a third one.
    if (n == 2 && !WATCHING.load(Ordering::SeqCst)) || n >= 3 {
        exit_now(128 + first);
    }
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler is async-signal-safe (atomics, write(2),
        // _exit); the sigaction struct is fully initialised.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// While the returned guard lives (a prompt, reading an input file), a
/// signal ends the process at once with 128 + N: nothing has run yet that
/// would need undoing. A signal that came before is acted on now.
pub fn immediate() -> Immediate {
    IMMEDIATE.store(true, Ordering::SeqCst);
    let first = CAUGHT.load(Ordering::SeqCst);
    if first != 0 {
        let msg = stopped_before_anything_ran(first);
        // SAFETY: write(2) of a static buffer; a failure changes nothing.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        exit_now(128 + first);
    }
    Immediate(())
}

/// What a signal that ends the process before anything ran says (a static
/// text: the signal handler writes it too).
fn stopped_before_anything_ran(sig: i32) -> &'static [u8] {
    if sig == libc::SIGTERM {
        b"\nhc-trace: stopped by SIGTERM before anything ran; nothing was run or saved\n"
    } else {
        b"\nhc-trace: stopped by SIGINT before anything ran; nothing was run or saved\n"
    }
}

/// See [`immediate`]; dropping it makes signals graceful again.
pub struct Immediate(());

impl Drop for Immediate {
    fn drop(&mut self) {
        IMMEDIATE.store(false, Ordering::SeqCst);
    }
}

/// Registers what a second signal must undo before the process ends (the
/// first one lets the run end normally, and the run's own Drop undoes it).
/// Dropping the guard unregisters it. Starts the watcher thread the first
/// time: call it only once the namespace has been entered (threads).
pub fn on_second_signal(f: impl Fn() -> Option<String> + Send + Sync + 'static) -> CleanupGuard {
    let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut v) = CLEANUPS.lock() {
        v.push((id, Arc::new(f)));
    }
    start_watcher();
    CleanupGuard(id)
}

/// See [`on_second_signal`].
#[must_use = "dropping the guard unregisters the cleanup"]
pub struct CleanupGuard(u64);

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if let Ok(mut v) = CLEANUPS.lock() {
            v.retain(|(id, _)| *id != self.0);
        }
    }
}

fn start_watcher() {
    if WATCHING.swap(true, Ordering::SeqCst) {
        return;
    }
    let started = std::thread::Builder::new()
        .name("hc-trace-signals".into())
        .spawn(|| {
            block_in_this_thread();
            loop {
                std::thread::sleep(Duration::from_millis(10));
                if COUNT.load(Ordering::SeqCst) >= 2 {
                    second_signal();
                }
            }
        });
    if started.is_err() {
        WATCHING.store(false, Ordering::SeqCst);
    }
}

/// The second signal: undo what is registered, say so, exit 128 + N.
fn second_signal() -> ! {
    let first = CAUGHT.load(Ordering::SeqCst);
    let todo: Vec<Cleanup> = match CLEANUPS.try_lock() {
        Ok(v) => v.iter().map(|(_, f)| f.clone()).collect(),
        Err(_) => Vec::new(),
    };
    let done: Vec<String> = todo.iter().filter_map(|f| f()).collect();
    let what = if done.is_empty() {
        String::new()
    } else {
        format!(" after removing {}", done.join(", "))
    };
    let line = format!(
        "\nhc-trace: second {}: stopped at once{what}; nothing was printed or saved\n",
        name(first)
    );
    // SAFETY: write(2) of a buffer we own; a failure changes nothing.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    exit_now(128 + first);
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

/// The signal that arrived first, by name, if one did.
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
