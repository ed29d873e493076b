//! The tracer's primitives: starting a program under ptrace with a seccomp
//! filter, waiting for its stops, reading its system calls, its memory and
//! copies of its descriptors. The tracer's logic (which descriptor is which
//! socket, what a call did) lives in the binary and calls these.
//!
//! How the program is started ([`spawn`]):
//! - The child stops itself (SIGSTOP); the tracer attaches with
//!   PTRACE_SEIZE and its options (follow fork, vfork, clone and exec;
//!   report seccomp events and exits; kill the program if hc-trace dies)
//!   and wakes it with SIGCONT, before the program runs a single
//!   instruction of its own. SEIZE, not PTRACE_TRACEME, because only a
//!   seized tracee can be left in a job-control stop with PTRACE_LISTEN
//!   ([`listen`]): a SIGSTOP sent to the program then stops it as it would
//!   without hc-trace, until SIGCONT.
//! - It then installs a seccomp filter that returns SECCOMP_RET_TRACE for the
//!   traced calls only ([`syscalls::filter`]) and execs the program. Every
//!   other system call runs without a stop.
//!
//! Every ptrace request must come from the thread that started the program:
//! the kernel only accepts them from the tracing thread.

pub mod syscalls;

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why the program could not be started or traced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnError {
    /// The program's path or arguments contain a NUL byte.
    Nul,
    /// Starting it failed (pipe, fork, exec): the step and the error.
    Start { what: &'static str, err: String },
    /// Tracing it failed (PTRACE_TRACEME, seccomp, options).
    Trace { what: &'static str, err: String },
}

/// A stop event of ptrace (`status >> 16`).
pub const EVENT_FORK: i32 = libc::PTRACE_EVENT_FORK;
pub const EVENT_VFORK: i32 = libc::PTRACE_EVENT_VFORK;
pub const EVENT_CLONE: i32 = libc::PTRACE_EVENT_CLONE;
pub const EVENT_EXEC: i32 = libc::PTRACE_EVENT_EXEC;
pub const EVENT_EXIT: i32 = libc::PTRACE_EVENT_EXIT;
pub const EVENT_SECCOMP: i32 = libc::PTRACE_EVENT_SECCOMP;
/// A seized tracee's stop that is no signal to deliver: a job-control
/// (group) stop when the signal is a stopping one, else a new task's first
/// stop or the end of a group-stop (glibc's libc crate lacks the constant).
pub const EVENT_STOP: i32 = 128;
pub use libc::{SIGCONT, SIGKILL, SIGSTOP, SIGTERM, SIGTRAP};

/// Whether `sig` stops a process by default (job control): what a
/// PTRACE_EVENT_STOP with this signal means is a group-stop.
pub fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// How a task ended, from its wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
}

impl Ended {
    pub fn from_status(st: i32) -> Ended {
        if libc::WIFSIGNALED(st) {
            Ended::Signal(libc::WTERMSIG(st))
        } else {
            Ended::Code(libc::WEXITSTATUS(st))
        }
    }
}

/// What waitpid(-1, __WALL) reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The task ended (raw status, see [`Ended::from_status`]).
    Ended { tid: i32, status: i32 },
    /// The task stopped with `sig`; `event` is the ptrace event (0: none);
    /// `syscall` marks a syscall-exit stop (SIGTRAP | 0x80).
    Stopped {
        tid: i32,
        sig: i32,
        event: i32,
        syscall: bool,
    },
    /// Something else (continued): nothing to do.
    Other,
    /// Interrupted by a signal of ours: wait again.
    Interrupted,
    /// No task left to wait for.
    Done,
}

/// Waits for the next stop or end of any traced task.
pub fn wait_any() -> Wait {
    let mut st = 0;
    // SAFETY: waiting for tracees; st is ours.
    let tid = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
    if tid < 0 {
        return match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => Wait::Interrupted,
            _ => Wait::Done,
        };
    }
    if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
        return Wait::Ended { tid, status: st };
    }
    if !libc::WIFSTOPPED(st) {
        return Wait::Other;
    }
    let sig = libc::WSTOPSIG(st);
    Wait::Stopped {
        tid,
        sig: sig & 0x7f,
        event: (st >> 16) & 0xff,
        syscall: sig == (libc::SIGTRAP | 0x80),
    }
}

fn ptrace(req: libc::c_uint, pid: i32, addr: usize, data: usize) -> libc::c_long {
    // SAFETY: ptrace requests on our own tracees; memory arguments (when
    // any) point at buffers owned by the caller for the call's duration.
    unsafe {
        libc::ptrace(
            req,
            pid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    }
}

/// Resumes a stopped task, delivering `sig` (0: none).
pub fn cont(tid: i32, sig: i32) {
    ptrace(libc::PTRACE_CONT, tid, 0, sig as usize);
}

/// Resumes a task to stop again when its current system call returns.
pub fn resume_to_exit(tid: i32) {
    ptrace(libc::PTRACE_SYSCALL, tid, 0, 0);
}

/// Leaves a task in its group-stop (job control: SIGSTOP) without resuming
/// it, while still reporting its next events (PTRACE_LISTEN, for seized
/// tasks; returns false where not allowed). SIGCONT then ends the stop as it
/// would without a tracer.
pub fn listen(tid: i32) -> bool {
    ptrace(libc::PTRACE_LISTEN, tid, 0, 0) == 0
}

/// PTRACE_GETEVENTMSG: the new task's id after a fork/clone event, the
/// former thread id after exec, the exit status at exit.
pub fn event_msg(tid: i32) -> u64 {
    let mut msg: libc::c_ulong = 0;
    ptrace(
        libc::PTRACE_GETEVENTMSG,
        tid,
        0,
        &mut msg as *mut libc::c_ulong as usize,
    );
    msg as u64
}

/// What PTRACE_GET_SYSCALL_INFO says about a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallStop {
    /// A seccomp stop: the call's number and arguments, before it runs.
    Seccomp {
        nr: u64,
        args: [u64; 6],
    },
    /// A syscall-exit stop: the value, or the errno (positive) it failed with.
    Exit {
        ret: i64,
        errno: i64,
    },
    Other,
}

pub fn syscall_info(tid: i32) -> Option<SyscallStop> {
    // SAFETY: plain data the kernel fills in; all zeroes is a valid value.
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    let n = ptrace(
        libc::PTRACE_GET_SYSCALL_INFO,
        tid,
        std::mem::size_of::<libc::ptrace_syscall_info>(),
        &mut info as *mut libc::ptrace_syscall_info as usize,
    );
    if n <= 0 {
        return None;
    }
    Some(match info.op {
        libc::PTRACE_SYSCALL_INFO_SECCOMP => {
            // SAFETY: op says the seccomp member of the union is filled in.
            let sc = unsafe { info.u.seccomp };
            SyscallStop::Seccomp {
                nr: sc.nr,
                args: sc.args,
            }
        }
        libc::PTRACE_SYSCALL_INFO_EXIT => {
            // SAFETY: op says the exit member of the union is filled in.
            let ex = unsafe { info.u.exit };
            if ex.is_error != 0 {
                SyscallStop::Exit {
                    ret: -1,
                    errno: -ex.sval,
                }
            } else {
                SyscallStop::Exit {
                    ret: ex.sval,
                    errno: 0,
                }
            }
        }
        _ => SyscallStop::Other,
    })
}

/// Whether two tasks share one descriptor table (kcmp KCMP_FILES).
pub fn same_files(a: i32, b: i32) -> bool {
    // SAFETY: kcmp compares two tasks we trace; it takes no pointers.
    unsafe {
        libc::syscall(libc::SYS_kcmp, a, b, 2 /* KCMP_FILES */, 0, 0) == 0
    }
}

/// A pidfd for task `tid` (a thread's own where the kernel allows it).
pub fn pidfd_open(tid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes no pointers; the result is checked.
    let mut fd = unsafe {
        libc::syscall(
            libc::SYS_pidfd_open,
            tid,
            libc::PIDFD_THREAD as libc::c_uint,
        )
    };
    if fd < 0 {
        // SAFETY: as above, for kernels without PIDFD_THREAD (leaders only).
        fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, 0) };
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A copy of the task's descriptor `fd` (pidfd_getfd), closed when dropped.
pub fn copy_fd(pidfd: &OwnedFd, fd: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_getfd takes no pointers and returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    // SAFETY: a fresh descriptor that nothing else owns.
    (r >= 0).then(|| unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// The inode of a descriptor that is a socket; None for anything else.
pub fn socket_inode(fd: &OwnedFd) -> Option<u64> {
    // SAFETY: stat is plain data; all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a descriptor we own, into our struct.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0
        || st.st_mode & libc::S_IFMT != libc::S_IFSOCK
    {
        return None;
    }
    Some(st.st_ino)
}

/// For a TCP socket (inet family, stream, TCP): whether it listens. None
/// when the socket is anything else.
pub fn tcp_listening(fd: &OwnedFd) -> Option<bool> {
    let raw = fd.as_raw_fd();
    let get = |opt| {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: an int option into our int.
        let r = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_SOCKET,
                opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(v)
    };
    let tcp = matches!(get(libc::SO_DOMAIN), Some(libc::AF_INET | libc::AF_INET6))
        && get(libc::SO_TYPE) == Some(libc::SOCK_STREAM)
        && get(libc::SO_PROTOCOL) == Some(libc::IPPROTO_TCP);
    tcp.then(|| get(libc::SO_ACCEPTCONN) == Some(1))
}

/// `len` bytes of the task's memory at `addr` (at most 64 KiB).
pub fn read_mem(tid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
    if addr == 0 || len == 0 || len > 64 << 10 {
        return None;
    }
    let mut buf = vec![0u8; len];
    (read_into(tid, addr, &mut buf) == Some(len)).then_some(buf)
}

/// Reads the task's memory at `addr` into `buf`: the bytes read.
fn read_into(tid: i32, addr: u64, buf: &mut [u8]) -> Option<usize> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: reads the tracee's memory into our buffer of `buf.len()`
    // bytes; the remote address is only interpreted by the kernel.
    let n = unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) };
    usize::try_from(n).ok()
}

/// A NUL-terminated string in the task's memory (a path given to execve),
/// read a page at a time so a string near the end of a mapping is found;
/// at most `max` bytes, lossily decoded.
pub fn read_cstr(tid: i32, addr: u64, max: usize) -> Option<String> {
    const PAGE: u64 = 4096;
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        let room = (PAGE - at % PAGE) as usize;
        let mut chunk = vec![0u8; room.min(max - out.len())];
        let n = read_into(tid, at, &mut chunk)?;
        if n == 0 {
            break;
        }
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn last_err() -> String {
    std::io::Error::last_os_error().to_string()
}

/// `execve`'s arguments, made before the fork (the child must not
/// allocate): the pointers point into the strings kept beside them.
struct ExecArgs {
    path: CString,
    _args: Vec<CString>,
    argp: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    envp: Vec<*const libc::c_char>,
}

impl ExecArgs {
    /// `path`, `argv` and the current environment (entries with a NUL are
    /// left out of the environment; a NUL in the path or an argument is an
    /// error).
    fn new(path: &Path, argv: &[OsString]) -> Result<Self, SpawnError> {
        let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| SpawnError::Nul)?;
        let args: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| SpawnError::Nul)?;
        let mut argp: Vec<*const libc::c_char> = args.iter().map(|c| c.as_ptr()).collect();
        argp.push(std::ptr::null());
        let env: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
        Ok(ExecArgs {
            path,
            _args: args,
            argp,
            _env: env,
            envp,
        })
    }
}

/// A close-on-exec pipe (the child reports a failure before exec through
/// it), then fork: (the pid, 0 in the child; the pipe's two ends).
fn pipe_and_fork() -> Result<(i32, [RawFd; 2]), SpawnError> {
    let mut pipe = [0 as RawFd; 2];
    // SAFETY: pipe2 fills the array we own.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(SpawnError::Start {
            what: "pipe2",
            err: last_err(),
        });
    }
    // SAFETY: fork has no preconditions; what the child may do after it is
    // the caller's part (async-signal-safe calls only, then exec or _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SpawnError::Start {
            what: "fork",
            err: last_err(),
        });
    }
    Ok((pid, pipe))
}

/// Forks and execs `path` with `argv` and the current environment under
/// ptrace, with the seccomp filter of [`syscalls::filter`] installed;
/// returns its pid once it has exec'd (running, traced).
pub fn spawn(path: &Path, argv: &[OsString]) -> Result<i32, SpawnError> {
    let ex = ExecArgs::new(path, argv)?;
    let (cpath, argp, envp) = (&ex.path, &ex.argp, &ex.envp);
    let filter = syscalls::filter();
    let prog_bpf = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // The child below only makes async-signal-safe system calls on data
    // prepared before the fork, then execs or _exits.
    let (pid, pipe) = pipe_and_fork()?;
    if pid == 0 {
        // SAFETY: the child: raw system calls only, see above.
        unsafe {
            libc::close(pipe[0]);
            let fail = |stage: u8| -> ! {
                let e = *libc::__errno_location();
                let mut msg = [0u8; 5];
                msg[0] = stage;
                msg[1..].copy_from_slice(&e.to_ne_bytes());
                libc::write(pipe[1], msg.as_ptr().cast(), msg.len());
                libc::_exit(127);
            };
            // The Rust runtime ignores SIGPIPE; an ignored signal stays
            // ignored across exec, and a C program expects the default.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            // Stopped until the tracer has seized us and sends SIGCONT: the
            // filter below must not be installed untraced (SECCOMP_RET_TRACE
            // without a tracer fails the call with ENOSYS).
            libc::raise(libc::SIGSTOP);
            let install = || {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog_bpf as *const libc::sock_fprog,
                )
            };
            if install() < 0 {
                // Without CAP_SYS_ADMIN a filter needs no_new_privs.
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if install() < 0 {
                    fail(2);
                }
            }
            libc::execve(cpath.as_ptr(), argp.as_ptr(), envp.as_ptr());
            fail(3);
        }
    }
    // SAFETY: the write end is ours; the child has its own copy.
    unsafe { libc::close(pipe[1]) };
    // SAFETY: the read end is ours alone from now on.
    let errpipe = unsafe { OwnedFd::from_raw_fd(pipe[0]) };
    let mut st = 0;
    // SAFETY: waiting for our own child to stop itself (it is not traced yet).
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WUNTRACED | libc::__WALL) };
    if r != pid || !libc::WIFSTOPPED(st) {
        return Err(child_error(&errpipe).unwrap_or(SpawnError::Trace {
            what: "SIGSTOP",
            err: format!("the child did not stop (wait status {st:#x})"),
        }));
    }
    let opts = libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_TRACEEXIT
        | libc::PTRACE_O_TRACESECCOMP
        | libc::PTRACE_O_EXITKILL;
    if ptrace(libc::PTRACE_SEIZE, pid, 0, opts as usize) < 0 {
        let err = last_err();
        // SAFETY: our child; it must not run untraced. kill takes no pointers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Err(SpawnError::Trace {
            what: "PTRACE_SEIZE",
            err,
        });
    }
    // SAFETY: our child, stopped; kill takes no pointers.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    // Wait for exec (or the child's failure report): EOF means exec succeeded.
    let mut st = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if r != pid {
            return Err(SpawnError::Start {
                what: "waitpid",
                err: last_err(),
            });
        }
        if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
            return Err(child_error(&errpipe).unwrap_or(SpawnError::Start {
                what: "execve",
                err: format!("the child ended before exec (wait status {st:#x})"),
            }));
        }
        if !libc::WIFSTOPPED(st) {
            continue;
        }
        let event = (st >> 16) & 0xff;
        if event == libc::PTRACE_EVENT_EXEC {
            cont(pid, 0);
            return Ok(pid);
        }
        // Before exec: the trap of the seize and the end of our own stop,
        // the seccomp stop of the execve itself, and SIGCONT, all ours; any
        // other signal is passed on.
        let sig = libc::WSTOPSIG(st);
        let pass = event == 0 && !matches!(sig, libc::SIGSTOP | libc::SIGCONT | libc::SIGTRAP);
        cont(pid, if pass { sig } else { 0 });
    }
}

fn child_error(pipe: &OwnedFd) -> Option<SpawnError> {
    let mut msg = [0u8; 5];
    // SAFETY: reading into our buffer of msg.len() bytes.
    let n = unsafe { libc::read(pipe.as_raw_fd(), msg.as_mut_ptr().cast(), msg.len()) };
    if n != 5 {
        return None;
    }
    let err =
        std::io::Error::from_raw_os_error(i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]))
            .to_string();
    Some(match msg[0] {
        2 => SpawnError::Trace {
            what: "seccomp(SECCOMP_SET_MODE_FILTER)",
            err,
        },
        _ => SpawnError::Start {
            what: "execve",
            err,
        },
    })
}

/// Forks `path` with `argv` without ptrace or seccomp: the child stops
/// itself before exec; `gate` runs (the eBPF backend adds the pid to its
/// traced set there), then the child is woken and execs. Returns the pid
/// once exec succeeded (or the child's failure). The caller waits for it
/// with [`wait_exit`].
pub fn spawn_gated(
    path: &Path,
    argv: &[OsString],
    gate: impl FnOnce(i32) -> Result<(), String>,
) -> Result<i32, SpawnError> {
    let ex = ExecArgs::new(path, argv)?;
    let (cpath, argp, envp) = (&ex.path, &ex.argp, &ex.envp);
    // The child below only makes async-signal-safe system calls on data
    // prepared before the fork, then execs or _exits.
    let (pid, pipe) = pipe_and_fork()?;
    if pid == 0 {
        // SAFETY: the child: raw system calls only, see above.
        unsafe {
            libc::close(pipe[0]);
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            // Stopped until the parent has set up the trace and sends SIGCONT.
            libc::raise(libc::SIGSTOP);
            libc::execve(cpath.as_ptr(), argp.as_ptr(), envp.as_ptr());
            let e = *libc::__errno_location();
            let mut msg = [0u8; 5];
            msg[0] = 3;
            msg[1..].copy_from_slice(&e.to_ne_bytes());
            libc::write(pipe[1], msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        }
    }
    // SAFETY: the write end is ours; the child has its own copy.
    unsafe { libc::close(pipe[1]) };
    // SAFETY: the read end is ours alone from now on.
    let errpipe = unsafe { OwnedFd::from_raw_fd(pipe[0]) };
    let mut st = 0;
    // SAFETY: waiting for our own child to stop itself.
    let r = unsafe { libc::waitpid(pid, &mut st, libc::WUNTRACED) };
    if r != pid || !libc::WIFSTOPPED(st) {
        return Err(child_error(&errpipe).unwrap_or(SpawnError::Start {
            what: "SIGSTOP",
            err: format!("the child did not stop (wait status {st:#x})"),
        }));
    }
    if let Err(err) = gate(pid) {
        // SAFETY: our child, stopped; it must not run untraced.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = wait_exit(pid);
        return Err(SpawnError::Trace {
            what: "the eBPF trace",
            err,
        });
    }
    // SAFETY: our child, stopped; kill takes no pointers.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    // The pipe closes on exec (EOF) or carries the exec's error.
    match child_error(&errpipe) {
        Some(e) => {
            let _ = wait_exit(pid);
            Err(e)
        }
        None => Ok(pid),
    }
}

/// Waits for our child `pid` to end; its wait status.
pub fn wait_exit(pid: i32) -> Option<i32> {
    let mut st = 0;
    loop {
        // SAFETY: waiting for our own child; st is ours.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return Some(st);
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None;
    }
}
