//! The ptrace loop: starts the program, stops it at its socket calls, and
//! records each call with its arguments, result and the socket it acted on.
//!
//! How the program is stopped:
//! - The child stops itself, hc-trace seizes it (PTRACE_SEIZE) with its
//!   options (follow fork, vfork, clone and exec; report seccomp events and
//!   exits; kill the program if hc-trace dies) and wakes it, before the
//!   program runs a single instruction of its own.
//! - It then installs a seccomp filter that returns SECCOMP_RET_TRACE for the
//!   traced calls only (`hc_sys::ptrace::syscalls::filter`) and execs the
//!   program. Every other system call runs without a stop.
//! - At a seccomp stop the tracer sees the call's arguments before the
//!   kernel acts on them; if the call matters (its descriptor is a TCP
//!   socket) it resumes with PTRACE_SYSCALL to stop once more when the call
//!   returns, otherwise with PTRACE_CONT.
//!
//! The program keeps its own semantics: signals are delivered as they came;
//! a job-control stop (SIGSTOP, SIGTSTP, ...) is left in place with
//! PTRACE_LISTEN, so the program stays stopped until SIGCONT as it would
//! without hc-trace; a call a signal interrupted and the kernel restarted is
//! one call.
//!
//! Descriptors of the program are looked at through pidfd_getfd(): a copy
//! of the program's descriptor, asked for its inode, addresses and
//! TCP_INFO. One copy per open socket is kept for later questions, dropped
//! before the program's last close() of the socket runs (by close, dup2 over
//! it, close_range, execve's close-on-exec or the process's exit), so it
//! never holds a FIN back. Once a process sets up an io_uring, which can
//! close a socket without any system call the tracer sees, no copy is kept
//! beyond the stop that made it.
//!
//! Everything ptrace runs on the one thread that forked the program: the
//! kernel only accepts ptrace requests from the tracing thread.

use super::fdmap::{FdMap, Role, Slot, SockId, TableId};
use crate::sources::sockstate::{self, Diag};
use hc_core::exec::live::Obs;
use hc_core::exec::KILL_GRACE;
use hc_core::model::exec::{Stopped, Untraced};
use hc_core::model::{Call, CallKind, Nanos, Side, StateObs, TcpState};
use hc_core::time::secs;
use hc_sys::clock::now_ns;
use hc_sys::ptrace::syscalls::{self, Decoder, ShownOpt, Sys};
use hc_sys::ptrace::{self as pt, Ended, SpawnError, SyscallStop, Wait};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TraceError {
    #[error("{0}: command not found")]
    NotFound(String),
    #[error("the program's path or arguments contain a NUL byte")]
    Nul,
    #[error("cannot start the program: {what} failed: {err}")]
    Start { what: &'static str, err: String },
    #[error(
        "cannot trace the program: {what} failed: {err}\n\
         hint: ptrace may be restricted (kernel.yama.ptrace_scope, or a container without \
         CAP_SYS_PTRACE); seccomp filters need Linux 3.5+"
    )]
    Trace { what: &'static str, err: String },
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct TraceConfig {
    /// The program and its arguments, argv[0] first.
    pub argv: Vec<OsString>,
    pub timeout: Option<Duration>,
    /// Where observations go as they are made: each call with its socket,
    /// each socket's last close, each untraced path.
    pub sink: super::Feed,
    /// The program's thread ids, kept up to date for the kernel trace's reader.
    pub tids: Arc<Mutex<HashSet<i32>>>,
    /// The sockets its calls used, by kernel address: the eBPF backend
    /// fills it (ptrace does not see kernel addresses).
    pub socks: Arc<Mutex<HashSet<u64>>>,
}

pub use hc_core::model::exec::{ExitStatus, Traced};

/// Everything the trace observed.
#[derive(Debug)]
pub struct TraceOutcome {
    pub pid: u32,
    pub status: ExitStatus,
    /// Why hc-trace stopped the program, when it did.
    pub stopped: Option<Stopped>,
    /// Stops the tracer handled (seccomp and syscall-exit), for the record.
    pub stops: u64,
    /// Every thread id the program ran in: kernel events that ran in one of
    /// them happened during one of its calls, and may be matched by time.
    pub tids: HashSet<i32>,
    /// Paths the program used that no traced call shows (io_uring).
    pub untraced: Vec<Untraced>,
}

/// Finds `prog` on PATH the way a shell does, before forking, so "not found"
/// is hc-trace's error (exit 2) and not the program's.
pub fn resolve(prog: &OsString) -> Result<PathBuf, TraceError> {
    let p = PathBuf::from(prog);
    if prog.as_bytes().contains(&b'/') {
        return if p.exists() {
            Ok(p)
        } else {
            Err(TraceError::NotFound(p.display().to_string()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let cand = dir.join(&p);
        if let Ok(meta) = std::fs::metadata(&cand) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(TraceError::NotFound(p.display().to_string()))
}

/// Forks and execs the program under ptrace with the seccomp filter installed.
fn spawn(argv: &[OsString]) -> Result<i32, TraceError> {
    let prog = argv
        .first()
        .ok_or_else(|| TraceError::NotFound(String::new()))?;
    let path = resolve(prog)?;
    pt::spawn(&path, argv).map_err(|e| match e {
        SpawnError::Nul => TraceError::Nul,
        SpawnError::Start { what, err } => TraceError::Start { what, err },
        SpawnError::Trace { what, err } => TraceError::Trace { what, err },
    })
}

/// A call seen at its seccomp stop, waiting for its return.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) sys: Sys,
    pub(super) args: [u64; 6],
    pub(super) start: Nanos,
    pub(super) fd: i32,
    pub(super) sock: Option<SockId>,
    /// bind/connect: the address argument.
    pub(super) addr: Option<SocketAddr>,
    /// setsockopt: (option text, short form for causes).
    pub(super) opt: Option<(String, String)>,
    /// close: other descriptors still refer to the socket.
    pub(super) shared: bool,
    /// The socket's TCP_INFO state at the call's entry, when known.
    pub(super) before: Option<StateObs>,
    /// splice/copy_file_range: the socket is the destination (a write) or
    /// the source (a read).
    pub(super) writes: bool,
    /// close_range: the sockets it closes, as (fd, socket, other
    /// descriptors still refer to it).
    pub(super) closing: Vec<(i32, SockId, bool)>,
}

impl Pending {
    pub(super) fn kind(&self) -> CallKind {
        match self.sys {
            s if s.is_between() => {
                if self.writes {
                    CallKind::Write
                } else {
                    CallKind::Read
                }
            }
            s => kind_of(s),
        }
    }
}

struct Task {
    tgid: i32,
    table: TableId,
    pending: Option<Pending>,
    /// A call a signal interrupted at its exit stop (the kernel's restart
    /// code): the kernel restarts it after the signal, or the program gets
    /// EINTR; the task's next stop says which.
    interrupted: Option<Pending>,
}

/// What a descriptor of the program turned out to be.
enum Probe {
    NotOpen,
    Other,
    Tcp(Remote),
}

struct Remote {
    /// Our copy of the descriptor, kept for later TCP_INFO queries.
    copy: OwnedFd,
    ino: u64,
    listening: bool,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    state: Option<TcpState>,
}

/// What the watcher thread and the tracer share.
pub(super) struct Shared {
    /// Thread-group ids of the traced processes, for signals.
    pub(super) alive: Mutex<HashSet<i32>>,
    /// Why hc-trace stopped the program, once it did.
    pub(super) stopped: Mutex<Option<Stopped>>,
}

impl Shared {
    pub(super) fn stopped(&self) -> Option<Stopped> {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub(super) struct Tracer {
    dec: Decoder,
    fds: FdMap,
    tasks: HashMap<i32, Task>,
    pidfds: HashMap<i32, OwnedFd>,
    /// Our own descriptor of each open socket, for TCP_INFO after each call
    /// without a pidfd_getfd round trip. Dropped before the program's last
    /// close() runs, so it never keeps a socket open (and its FIN back);
    /// none is kept once the program uses io_uring ([`Self::uring`]).
    copies: HashMap<SockId, OwnedFd>,
    diag: Diag,
    shared: Arc<Shared>,
    timeout: Option<Duration>,
    stops: u64,
    tids: HashSet<i32>,
    /// An io_uring exists in the program: it may close sockets behind the
    /// tracer's back, so no copy outlives a stop.
    uring: bool,
    untraced: Vec<Untraced>,
    /// Each process's last execve entry (time, path): close-on-exec
    /// descriptors close during it.
    exec_entry: HashMap<i32, (Nanos, String)>,
    sink: super::Feed,
    /// The same thread ids as `tids`, shared with the kernel trace's reader.
    shared_tids: Arc<Mutex<HashSet<i32>>>,
}

/// Runs the program to its end under ptrace and returns what it did.
pub fn trace(cfg: &TraceConfig) -> Result<TraceOutcome, TraceError> {
    let pid = spawn(&cfg.argv)?;
    let shared = Arc::new(Shared {
        alive: Mutex::new(HashSet::from([pid])),
        stopped: Mutex::new(None),
    });
    let (done_tx, done_rx) = mpsc::channel::<()>();
    {
        let (shared, timeout) = (shared.clone(), cfg.timeout);
        let _ = std::thread::Builder::new()
            .name("hc-trace-watch".into())
            .spawn(move || watch(timeout, &done_rx, &shared));
    }
    let mut tr = Tracer {
        dec: Decoder::new(),
        fds: FdMap::default(),
        tasks: HashMap::new(),
        pidfds: HashMap::new(),
        copies: HashMap::new(),
        diag: Diag::open(),
        shared,
        timeout: cfg.timeout,
        stops: 0,
        tids: HashSet::from([pid]),
        uring: false,
        untraced: Vec::new(),
        exec_entry: HashMap::new(),
        sink: cfg.sink.clone(),
        shared_tids: cfg.tids.clone(),
    };
    tr.shared_tids
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(pid);
    let table = tr.fds.new_table();
    tr.tasks.insert(
        pid,
        Task {
            tgid: pid,
            table,
            pending: None,
            interrupted: None,
        },
    );
    let status = tr.run(pid);
    drop(done_tx);
    // Calls still interrupted when everything ended (nothing restarted them).
    let left: Vec<Task> = tr.tasks.drain().map(|(_, t)| t).collect();
    for mut t in left {
        if let Some(p) = t.interrupted.take() {
            let note = tr.interrupted_note();
            tr.record_unfinished(t.tgid, p, note);
        }
    }
    tr.flush_dead();
    Ok(TraceOutcome {
        pid: pid as u32,
        status,
        stopped: tr.shared.stopped(),
        stops: tr.stops,
        tids: tr.tids,
        untraced: tr.untraced,
    })
}

/// The words for a process that ended, as the timeline says them (both
/// backends: ptrace here, eBPF in ebpf.rs).
pub(super) fn ended_words(st: i32, stopped: Option<Stopped>, timeout: Option<Duration>) -> String {
    match (status_of(st), stopped) {
        (ExitStatus::Signal(_, name), Some(Stopped::Timeout)) => format!(
            "killed by {name} from hc-trace at --timeout {}",
            secs(timeout)
        ),
        (ExitStatus::Signal(_, name), Some(Stopped::Signal(got))) => {
            format!("killed by {name}: hc-trace got {got} and passed it on")
        }
        (ExitStatus::Signal(_, name), Some(Stopped::SecondInterrupt)) => {
            format!("killed by {name} from hc-trace after a second Ctrl-C")
        }
        (s, _) => s.describe(),
    }
}

/// Why a call did not return, when a signal interrupted it for good (both
/// backends).
pub(super) fn interrupted_words(stopped: Option<Stopped>, timeout: Option<Duration>) -> String {
    match stopped {
        Some(Stopped::Timeout) => format!(
            "interrupted: hc-trace signalled the program at --timeout {}",
            secs(timeout)
        ),
        Some(Stopped::Signal(got)) => {
            format!("interrupted: hc-trace got {got} and passed it on to the program")
        }
        Some(Stopped::SecondInterrupt) => {
            "interrupted: hc-trace killed the program after a second Ctrl-C".into()
        }
        Some(Stopped::Detached(why)) => {
            format!("still running when hc-trace stopped tracing ({why})")
        }
        None => "interrupted by a signal".to_string(),
    }
}

/// Stops the program when asked: at --timeout, or when hc-trace itself got
/// SIGINT or SIGTERM from another process, the signal (SIGTERM at the
/// timeout) goes to every traced process, and SIGKILL follows after the
/// grace period if they are still there. A Ctrl-C at the terminal reached
/// the program directly (same foreground group): the program decides, and
/// a second one kills it at once.
pub(super) fn watch(timeout: Option<Duration>, done: &mpsc::Receiver<()>, shared: &Shared) {
    let start = Instant::now();
    let kill_all = |sig| {
        for &p in shared
            .alive
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = hc_sys::signals::kill(p, sig);
        }
    };
    let set = |why: Stopped| {
        *shared
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why);
    };
    let tick = Duration::from_millis(20);
    loop {
        if done.recv_timeout(tick) != Err(mpsc::RecvTimeoutError::Timeout) {
            return;
        }
        if let Some(sig) = hc_sys::signals::exec_sent() {
            set(Stopped::Signal(hc_sys::signals::name(sig)));
            kill_all(sig);
            break;
        }
        if hc_sys::signals::exec_terminal_interrupts() >= 2 {
            set(Stopped::SecondInterrupt);
            kill_all(pt::SIGKILL);
            return;
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            set(Stopped::Timeout);
            kill_all(pt::SIGTERM);
            break;
        }
    }
    if done.recv_timeout(KILL_GRACE) == Err(mpsc::RecvTimeoutError::Timeout) {
        kill_all(pt::SIGKILL);
    }
}

pub(super) fn status_of(st: i32) -> ExitStatus {
    match Ended::from_status(st) {
        Ended::Signal(s) => ExitStatus::Signal(s, hc_sys::signals::name(s)),
        Ended::Code(c) => ExitStatus::Code(c),
    }
}

impl Tracer {
    /// A call recorded: kept, or sent on with its socket as it is now, and
    /// every socket that lost its last descriptor meanwhile.
    fn emit(&mut self, t: Traced) {
        if let Some(s) = t.sock.and_then(|s| self.fds.socks.get(s).map(|k| (s, k))) {
            self.sink.send(Obs::Sock(s.0, s.1.clone()));
        }
        self.sink.send(Obs::Call(Box::new(t)));
        self.flush_dead();
        self.sink.wait_below(crate::commands::exec::MAX_QUEUED);
    }

    /// Sends on the sockets that lost their last descriptor.
    fn flush_dead(&mut self) {
        for s in self.fds.take_dead() {
            if let Some(k) = self.fds.socks.get(s) {
                self.sink.send(Obs::Sock(s, k.clone()));
            }
            self.sink.send(Obs::Closed(s));
        }
    }

    fn run(&mut self, main: i32) -> ExitStatus {
        let mut status = ExitStatus::Code(0);
        loop {
            let (tid, sig, event, syscall) = match pt::wait_any() {
                Wait::Done => break,
                Wait::Interrupted | Wait::Other => continue,
                Wait::Ended { tid, status: st } => {
                    if tid == main {
                        status = status_of(st);
                    }
                    self.gone(tid);
                    self.flush_dead();
                    continue;
                }
                Wait::Stopped {
                    tid,
                    sig,
                    event,
                    syscall,
                } => (tid, sig, event, syscall),
            };
            if !self.tasks.contains_key(&tid) {
                // A new task whose first stop came before its parent's fork event.
                self.adopt(tid, None);
            }
            if syscall {
                self.stops += 1;
                self.on_exit(tid);
                pt::cont(tid, 0);
            } else if event == pt::EVENT_STOP {
                if pt::is_stop_signal(sig) {
                    // A job-control stop: stay stopped, as without a tracer,
                    // until SIGCONT (or SIGKILL); events are still reported.
                    if !pt::listen(tid) {
                        pt::cont(tid, 0);
                    }
                } else {
                    // A new task's first stop, or the end of a group-stop.
                    pt::cont(tid, 0);
                }
            } else if sig == pt::SIGTRAP && event != 0 {
                self.on_event(tid, event);
            } else {
                // A signal on its way to the program: deliver it.
                pt::cont(tid, sig);
            }
        }
        status
    }

    fn on_event(&mut self, tid: i32, event: i32) {
        match event {
            pt::EVENT_SECCOMP => {
                self.stops += 1;
                if self.on_seccomp(tid) {
                    pt::resume_to_exit(tid);
                } else {
                    pt::cont(tid, 0);
                }
            }
            pt::EVENT_FORK | pt::EVENT_VFORK | pt::EVENT_CLONE => {
                let child = pt::event_msg(tid) as i32;
                if child > 0 && !self.tasks.contains_key(&child) {
                    self.adopt(child, Some(tid));
                }
                pt::cont(tid, 0);
            }
            pt::EVENT_EXEC => {
                let former = pt::event_msg(tid) as i32;
                self.on_exec(tid, former);
                pt::cont(tid, 0);
            }
            pt::EVENT_EXIT => {
                let st = pt::event_msg(tid) as i32;
                self.on_task_exit(tid, st);
                pt::cont(tid, 0);
            }
            _ => pt::cont(tid, 0),
        }
    }

    /// A new task: which descriptor table it uses. Threads (and clone with
    /// CLONE_FILES) share their parent's; fork copies it. kcmp(KCMP_FILES)
    /// says which, whatever flags the program passed to clone.
    fn adopt(&mut self, tid: i32, parent: Option<i32>) {
        let tgid = proc_status_field(tid, "Tgid:").unwrap_or(tid);
        let parent = parent
            .or_else(|| (tgid != tid).then_some(tgid))
            .or_else(|| proc_status_field(tid, "PPid:"))
            .filter(|p| self.tasks.contains_key(p));
        let table = match parent {
            Some(p) => {
                let ptable = self.tasks[&p].table;
                if pt::same_files(p, tid) {
                    self.fds.share(ptable);
                    ptable
                } else {
                    self.fds.fork_table(ptable)
                }
            }
            None => self.fds.new_table(),
        };
        self.tasks.insert(
            tid,
            Task {
                tgid,
                table,
                pending: None,
                interrupted: None,
            },
        );
        self.tids.insert(tid);
        self.shared_tids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tid);
        self.shared
            .alive
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tgid);
    }

    /// exec: the task may take over the thread-group leader's id; its
    /// descriptor table becomes its own, without the close-on-exec ones,
    /// which the kernel closed during the execve: each socket that lost its
    /// last descriptor gets a close of its own, spanning the execve from its
    /// entry, since its FIN (or RST) may have left at any moment of it.
    fn on_exec(&mut self, tid: i32, former: i32) {
        if former != tid {
            if let Some(old) = self.tasks.remove(&tid) {
                for (_, s) in self.fds.release(old.table) {
                    self.copies.remove(&s);
                }
            }
            if let Some(t) = self.tasks.remove(&former) {
                self.tasks.insert(tid, t);
            }
            self.pidfds.remove(&former);
        }
        self.pidfds.remove(&tid);
        let Some(task) = self.tasks.get(&tid) else {
            return;
        };
        let (old, tgid) = (task.table, task.tgid);
        let now = now_ns();
        let (entry, path) = self
            .exec_entry
            .remove(&tgid)
            .unwrap_or((now, String::from("?")));
        let why = format!("execve(\"{path}\") closed it (close-on-exec)");
        let table = self.fds.fork_table(old);
        for (fd, s) in self.fds.release(old) {
            self.synthetic_close(tgid, fd, s, &why, (entry, now), "execve");
        }
        if let Some(t) = self.tasks.get_mut(&tid) {
            t.table = table;
        }
        let open = open_fds(tid).unwrap_or_default();
        for fd in self.fds.fds(table) {
            if !open.contains(&fd) {
                // Another process still holding the socket: nothing was sent.
                if let Some((s, true)) = self.fds.remove(table, fd) {
                    self.synthetic_close(tgid, fd, s, &why, (entry, now), "execve");
                }
            }
        }
    }

    /// The words for a process that ended, as the timeline says them.
    fn ended_why(&self, st: i32) -> String {
        ended_words(st, self.shared.stopped(), self.timeout)
    }

    /// Why a call did not return, when a signal interrupted it for good.
    fn interrupted_note(&self) -> String {
        interrupted_words(self.shared.stopped(), self.timeout)
    }

    /// PTRACE_EVENT_EXIT: the task is about to go; its descriptors are still
    /// open, so sockets closed by the exit get a call of their own, stamped
    /// before the kernel sends what the closing causes.
    fn on_task_exit(&mut self, tid: i32, st: i32) {
        let why = self.ended_why(st);
        let Some(task) = self.tasks.get_mut(&tid) else {
            return;
        };
        let (tgid, table) = (task.tgid, task.table);
        let (pending, interrupted) = (task.pending.take(), task.interrupted.take());
        if let Some(p) = pending {
            let note = format!("did not return: the process ended ({why}) during this call");
            self.record_unfinished(tgid, p, note);
        }
        if let Some(p) = interrupted {
            let note = self.interrupted_note();
            self.record_unfinished(tgid, p, note);
        }
        // Release the table now (the kernel closes the files right after this
        // stop); mark the task so gone() does not release it twice.
        if let Some(t) = self.tasks.get_mut(&tid) {
            t.table = usize::MAX;
        }
        let now = now_ns();
        let released = self.fds.release(table);
        // A descriptor the program closed by a path no call shows (an
        // io_uring close) is not open any more: its exit closes nothing.
        let open = (!released.is_empty()).then(|| open_fds(tid));
        for (fd, s) in released {
            if open
                .as_ref()
                .is_some_and(|o| o.as_ref().is_some_and(|o| !o.contains(&fd)))
            {
                self.copies.remove(&s);
                continue;
            }
            let text = format!("process exit ({why})");
            self.synthetic_close(tgid, fd, s, &text, (now, now), "exit");
        }
    }

    fn gone(&mut self, tid: i32) {
        if let Some(mut t) = self.tasks.remove(&tid) {
            if let Some(p) = t.interrupted.take() {
                let note = self.interrupted_note();
                self.record_unfinished(t.tgid, p, note);
            }
            if t.table != usize::MAX {
                for (_, s) in self.fds.release(t.table) {
                    self.copies.remove(&s);
                }
            }
            if t.tgid == tid {
                self.shared
                    .alive
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&tid);
            }
        }
        self.pidfds.remove(&tid);
    }

    /// A close the kernel made for the program (process exit, execve's
    /// close-on-exec), over `span`: what the kernel sends for it may leave
    /// at any moment of that span.
    fn synthetic_close(
        &mut self,
        tgid: i32,
        fd: i32,
        s: SockId,
        why: &str,
        span: (Nanos, Nanos),
        args: &str,
    ) {
        self.copies.remove(&s);
        let sock = &self.fds.socks[s];
        let note = if args == "execve" {
            "the descriptor was marked close-on-exec (O_CLOEXEC, FD_CLOEXEC); it was the socket's last"
        } else {
            "the program never closed it; its last descriptor went with the process"
        };
        // The kernel closes (or closed) the descriptors around this stop:
        // any state read now would be from before or after, not of the close.
        self.emit(Traced {
            call: Call {
                side: Side::Client,
                kind: CallKind::Close,
                text: format!("close({fd}) by the kernel: {why}"),
                args: args.into(),
                pid: Some(tgid as u32),
                fd: Some(fd),
                ret: None,
                errno: None,
                note: Some(note.into()),
                start: span.0,
                end: span.1,
                local: sock.local,
                peer: sock.peer,
                stream: None,
                state_after: StateObs::Unknown,
                state_before: None,
                line: None,
            },
            sock: Some(s),
        });
    }

    /// At a close() of socket `s`: whether other descriptors keep it open.
    /// If none does, our own copy goes first, or the FIN would wait for it.
    fn closing(&mut self, s: SockId) -> bool {
        let shared = self.fds.refs(s) > 1;
        if !shared {
            self.copies.remove(&s);
        }
        shared
    }

    /// A copy of the program's descriptor `fd`, closed when dropped.
    fn remote(&mut self, tid: i32, fd: i32) -> Option<OwnedFd> {
        let pidfd = match self.pidfds.entry(tid) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(pt::pidfd_open(tid)?),
        };
        pt::copy_fd(pidfd, fd)
    }

    /// Our copy of the program's descriptor `fd` and its inode, when it is a
    /// socket; otherwise what the probe should say (not open, or not a socket).
    fn socket_copy(&mut self, tid: i32, fd: i32) -> Result<(OwnedFd, u64), Probe> {
        let copy = self.remote(tid, fd).ok_or(Probe::NotOpen)?;
        let ino = pt::socket_inode(&copy).ok_or(Probe::Other)?;
        Ok((copy, ino))
    }

    fn probe(&mut self, tid: i32, fd: i32) -> Probe {
        let (copy, ino) = match self.socket_copy(tid, fd) {
            Ok(c) => c,
            Err(p) => return p,
        };
        let Some(listening) = pt::tcp_listening(&copy) else {
            return Probe::Other;
        };
        let raw = copy.as_raw_fd();
        Probe::Tcp(Remote {
            ino,
            listening,
            local: hc_sys::sock::local_addr(raw).filter(|a| a.port() != 0),
            peer: hc_sys::sock::peer_addr(raw),
            state: sockstate::tcp_info_state(raw),
            copy,
        })
    }

    /// A descriptor the program just got from socket() or accept() on a
    /// TCP socket: known to be TCP and not listening, so fewer questions
    /// than [`Self::probe`]. A fresh socket has no addresses yet (`fresh`).
    /// TCP_INFO failing means the descriptor is something else after all
    /// (another thread replaced it before this stop): then the full probe.
    fn probe_new(&mut self, tid: i32, fd: i32, fresh: bool) -> Probe {
        let (copy, ino) = match self.socket_copy(tid, fd) {
            Ok(c) => c,
            Err(p) => return p,
        };
        let raw = copy.as_raw_fd();
        let Some(state) = sockstate::tcp_info_state(raw) else {
            return self.probe(tid, fd);
        };
        let (local, peer) = if fresh {
            (None, None)
        } else {
            (
                hc_sys::sock::local_addr(raw).filter(|a| a.port() != 0),
                hc_sys::sock::peer_addr(raw),
            )
        };
        Probe::Tcp(Remote {
            copy,
            ino,
            listening: false,
            local,
            peer,
            state: Some(state),
        })
    }

    /// The slot of `fd`, probing descriptors the trace has not seen created
    /// (inherited ones). None: not open.
    fn slot(&mut self, tid: i32, fd: i32) -> Option<Slot> {
        let table = self.tasks.get(&tid)?.table;
        if let Some(s) = self.fds.get(table, fd) {
            return Some(s);
        }
        let slot = match self.probe(tid, fd) {
            Probe::NotOpen => return None,
            Probe::Other => Slot::Other,
            Probe::Tcp(r) => {
                let role = if r.listening {
                    Role::Listening
                } else if r.peer.is_some() && self.is_listening_port(r.local) {
                    Role::Accepted
                } else {
                    Role::Connecting
                };
                Slot::Sock(self.register(r, role))
            }
        };
        self.fds.set(table, fd, slot);
        Some(slot)
    }

    fn is_listening_port(&self, local: Option<SocketAddr>) -> bool {
        local.is_some_and(|l| {
            self.fds
                .socks
                .iter()
                .any(|s| s.role == Role::Listening && s.local.is_some_and(|a| a.port() == l.port()))
        })
    }

    fn register(&mut self, r: Remote, role: Role) -> SockId {
        let id = self.fds.sock_for(r.ino, role);
        if !self.uring {
            self.copies.entry(id).or_insert(r.copy);
        }
        let s = &mut self.fds.socks[id];
        s.local = r.local.or(s.local);
        s.peer = r.peer.or(s.peer);
        id
    }

    fn read_mem(&self, tid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
        pt::read_mem(tid, addr, len)
    }

    /// io_uring_setup: from now on the program may send, receive and close
    /// through the ring. Our copies could then outlive the program's own
    /// descriptors (a close through the ring is no system call we see) and
    /// hold its FINs back: none is kept any more.
    fn uses_uring(&mut self, tgid: i32) {
        self.uring = true;
        self.copies.clear();
        if !self.untraced.iter().any(|u| u.pid == tgid as u32) {
            let u = Untraced {
                pid: tgid as u32,
                what: "io_uring".into(),
                ts: now_ns(),
            };
            self.sink.send(Obs::Untraced(u.clone()));
            self.untraced.push(u);
        }
    }

    /// At the seccomp stop: decide whether this call is shown and whether
    /// the tracer needs to see it return.
    fn on_seccomp(&mut self, tid: i32) -> bool {
        let Some(SyscallStop::Seccomp { nr, args }) = pt::syscall_info(tid) else {
            return false;
        };
        let Some(sys) = self.dec.get(nr) else {
            return false;
        };
        let Some((table, tgid)) = self.tasks.get(&tid).map(|t| (t.table, t.tgid)) else {
            return false;
        };
        // A call a signal interrupted: the same call again is the kernel's
        // restart of it, one call; anything else means it failed (EINTR).
        let mut restarted = None;
        if let Some(prev) = self.tasks.get_mut(&tid).and_then(|t| t.interrupted.take()) {
            if prev.sys == sys && prev.args == args {
                restarted = Some(prev);
            } else {
                let note = self.interrupted_note();
                self.record_unfinished(tgid, prev, note);
            }
        }
        if let Some(p) = restarted {
            if let Some(t) = self.tasks.get_mut(&tid) {
                t.pending = Some(p);
            }
            return true;
        }
        let fd = args[0] as i32;
        let mut p = Pending {
            sys,
            args,
            start: now_ns(),
            fd,
            sock: None,
            addr: None,
            opt: None,
            shared: false,
            before: None,
            writes: false,
            closing: Vec::new(),
        };
        match sys {
            Sys::Execve | Sys::Execveat => {
                let path = if sys == Sys::Execve { args[0] } else { args[1] };
                let path = pt::read_cstr(tid, path, 4096).unwrap_or_else(|| "?".into());
                self.exec_entry.insert(tgid, (p.start, path));
                return false;
            }
            Sys::IoUringSetup => {
                self.uses_uring(tgid);
                return false;
            }
            Sys::Socket => {
                if !syscalls::is_tcp_socket(args[0], args[1], args[2]) {
                    // Its descriptor still needs to be known as "not TCP";
                    // the first call on it will probe it.
                    return false;
                }
            }
            Sys::CloseRange => {
                let (first, last) = (args[0].min(i32::MAX as u64), args[1].min(i32::MAX as u64));
                if args[2] & syscalls::CLOSE_RANGE_CLOEXEC != 0 {
                    // Only marks them: execve closes them later.
                    return false;
                }
                let mut fds = self.fds.fds(table);
                fds.sort_unstable();
                for fd in fds {
                    if (first..=last).contains(&(fd as u64)) {
                        if let Some(Slot::Sock(s)) = self.fds.get(table, fd) {
                            let shared = self.closing(s);
                            p.closing.push((fd, s, shared));
                        }
                        self.fds.remove(table, fd);
                    }
                }
                if p.closing.is_empty() {
                    return false;
                }
            }
            Sys::Close => match self.fds.get(table, fd) {
                Some(Slot::Sock(s)) => {
                    p.sock = Some(s);
                    p.shared = self.closing(s);
                }
                Some(Slot::Other) => {
                    self.fds.remove(table, fd);
                    return false;
                }
                // Never seen: probe it, it may be an inherited socket.
                None => match self.slot(tid, fd) {
                    Some(Slot::Sock(s)) => {
                        p.sock = Some(s);
                        p.shared = self.closing(s);
                    }
                    _ => {
                        self.fds.remove(table, fd);
                        return false;
                    }
                },
            },
            Sys::Fcntl if !syscalls::is_dupfd(args[1] as i32) => return false,
            Sys::Dup2 | Sys::Dup3 => {
                match self.slot(tid, fd) {
                    Some(Slot::Sock(s)) => p.sock = Some(s),
                    _ => {
                        // A non-socket lands on newfd: forget what newfd was.
                        if let Some((s, true)) = self.fds.remove(table, args[1] as i32) {
                            self.copies.remove(&s);
                        }
                        return false;
                    }
                }
            }
            s if s.is_between() => {
                // The socket is the destination (a write) or the source (a read).
                let out = args[2] as i32;
                if let Some(Slot::Sock(s)) = self.slot(tid, out) {
                    p.sock = Some(s);
                    p.fd = out;
                    p.writes = true;
                } else if let Some(Slot::Sock(s)) = self.slot(tid, fd) {
                    p.sock = Some(s);
                } else {
                    return false;
                }
            }
            _ => match self.slot(tid, fd) {
                Some(Slot::Sock(s)) => p.sock = Some(s),
                _ => return false,
            },
        }
        match sys {
            Sys::Bind | Sys::Connect => {
                p.addr = self
                    .read_mem(tid, args[1], args[2] as usize)
                    .and_then(|b| hc_sys::sock::sockaddr_from_bytes(&b));
            }
            Sys::Setsockopt => {
                p.opt = self.decode_sockopt(tid, &args);
                if p.opt.is_none() {
                    return false;
                }
            }
            _ => {}
        }
        // The state at entry, from our copy of the socket (no round trip).
        p.before = p
            .sock
            .and_then(|s| self.copies.get(&s))
            .and_then(|c| sockstate::tcp_info_state(c.as_raw_fd()))
            .map(|state| StateObs::TcpInfo { state });
        if let Some(t) = self.tasks.get_mut(&tid) {
            t.pending = Some(p);
        }
        true
    }

    /// SO_LINGER, TCP_CORK and TCP_NODELAY change what goes on the wire; other options are not shown.
    fn decode_sockopt(&self, tid: i32, a: &[u64; 6]) -> Option<(String, String)> {
        let (level, name) = (a[1] as i32, a[2] as i32);
        let fd = a[0];
        let int = |b: &[u8]| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        match syscalls::shown_opt(level, name)? {
            ShownOpt::Linger => {
                let v = self
                    .read_mem(tid, a[3], 8)
                    .map(|b| (int(&b[0..4]), int(&b[4..8])));
                let (on, secs) = v.unwrap_or((-1, -1));
                Some((
                    format!("setsockopt({fd}, SOL_SOCKET, SO_LINGER, {{l_onoff={on}, l_linger={secs}}})"),
                    format!("SO_LINGER {{l_onoff={on}, l_linger={secs}}}"),
                ))
            }
            opt @ (ShownOpt::Cork | ShownOpt::NoDelay) => {
                let n = if opt == ShownOpt::Cork {
                    "TCP_CORK"
                } else {
                    "TCP_NODELAY"
                };
                let v = self.read_mem(tid, a[3], 4).map_or(-1, |b| int(&b));
                Some((
                    format!("setsockopt({fd}, IPPROTO_TCP, {n}, {v})"),
                    format!("{n} {v}"),
                ))
            }
        }
    }

    /// At the syscall-exit stop: the call's result, recorded.
    fn on_exit(&mut self, tid: i32) {
        let Some(p) = self.tasks.get_mut(&tid).and_then(|t| t.pending.take()) else {
            return;
        };
        let Some(SyscallStop::Exit { ret, errno: err }) = pt::syscall_info(tid) else {
            return;
        };
        let end = now_ns();
        let tgid = self.tasks.get(&tid).map_or(tid, |t| t.tgid);
        if syscalls::is_restart(err) {
            // A signal came: the next stop says whether the kernel restarts it.
            if let Some(t) = self.tasks.get_mut(&tid) {
                t.interrupted = Some(p);
            }
            return;
        }
        self.record(tid, tgid, p, ret, err as i32, end);
    }

    fn record_unfinished(&mut self, tgid: i32, p: Pending, note: String) {
        let end = now_ns();
        let (text, args) = Self::describe(&p, None);
        let sock = p.sock;
        let (local, peer) = self.addrs(sock);
        let kind = p.kind();
        self.emit(Traced {
            call: Call {
                side: Side::Client,
                kind,
                text,
                args,
                pid: Some(tgid as u32),
                fd: Some(p.fd),
                ret: None,
                errno: None,
                note: Some(note),
                start: p.start,
                end,
                local,
                peer,
                stream: None,
                state_after: StateObs::Unknown,
                state_before: p.before.clone(),
                line: None,
            },
            sock,
        });
    }

    fn addrs(&self, sock: Option<SockId>) -> (Option<SocketAddr>, Option<SocketAddr>) {
        sock.and_then(|s| self.fds.socks.get(s))
            .map_or((None, None), |k| (k.local, k.peer))
    }

    /// The call as a C programmer writes it, and its short argument form.
    pub(super) fn describe(p: &Pending, ret: Option<i64>) -> (String, String) {
        let a = &p.args;
        let fd = p.fd;
        let addr = p.addr.map_or_else(|| "?".to_string(), |x| x.to_string());
        let newfd = |t: String| match ret {
            Some(r) if r >= 0 => format!("{t} = {r}"),
            _ => t,
        };
        let ptr = |v: u64| if v == 0 { "NULL" } else { "&off" };
        match p.sys {
            Sys::Socket => (
                format!(
                    "socket({}, {}, {})",
                    syscalls::family_name(a[0]),
                    syscalls::type_name(a[1]),
                    a[2]
                ),
                syscalls::family_name(a[0]),
            ),
            Sys::Bind => (format!("bind({fd}, {addr})"), addr),
            Sys::Listen => (
                format!("listen({fd}, {})", a[1] as i32),
                (a[1] as i32).to_string(),
            ),
            Sys::Connect => (format!("connect({fd}, {addr})"), addr),
            Sys::Accept => (newfd(format!("accept({fd})")), String::new()),
            Sys::Accept4 => (newfd(format!("accept4({fd})")), String::new()),
            Sys::Shutdown => (
                format!("shutdown({fd}, {})", syscalls::shut_name(a[1])),
                syscalls::shut_name(a[1]),
            ),
            Sys::Close => (format!("close({fd})"), String::new()),
            Sys::CloseRange => (
                format!(
                    "close_range({}, {}, {}) closing {fd}",
                    a[0] as u32, a[1] as u32, a[2] as u32
                ),
                String::new(),
            ),
            Sys::Write => (format!("write({fd}, buf, {})", a[2]), a[2].to_string()),
            Sys::Read => (format!("read({fd}, buf, {})", a[2]), a[2].to_string()),
            Sys::Writev => (format!("writev({fd}, iov, {})", a[2]), "iov".into()),
            Sys::Readv => (format!("readv({fd}, iov, {})", a[2]), "iov".into()),
            Sys::Sendto => {
                let name = if a[4] == 0 { "send" } else { "sendto" };
                (
                    format!("{name}({fd}, buf, {}, {})", a[2], syscalls::msg_flags(a[3])),
                    a[2].to_string(),
                )
            }
            Sys::Recvfrom => {
                let name = if a[4] == 0 { "recv" } else { "recvfrom" };
                (
                    format!("{name}({fd}, buf, {}, {})", a[2], syscalls::msg_flags(a[3])),
                    a[2].to_string(),
                )
            }
            Sys::Sendmsg => (
                format!("sendmsg({fd}, msg, {})", syscalls::msg_flags(a[2])),
                "msg".into(),
            ),
            Sys::Recvmsg => (
                format!("recvmsg({fd}, msg, {})", syscalls::msg_flags(a[2])),
                "msg".into(),
            ),
            Sys::Sendmmsg => (
                format!(
                    "sendmmsg({fd}, msgvec, {}, {})",
                    a[2] as u32,
                    syscalls::msg_flags(a[3])
                ),
                (a[2] as u32).to_string(),
            ),
            Sys::Recvmmsg => (
                format!(
                    "recvmmsg({fd}, msgvec, {}, {}, {})",
                    a[2] as u32,
                    syscalls::msg_flags(a[3]),
                    if a[4] == 0 { "NULL" } else { "&timeout" }
                ),
                (a[2] as u32).to_string(),
            ),
            Sys::Sendfile => (
                format!(
                    "sendfile({}, {}, {}, {})",
                    a[0] as i32,
                    a[1] as i32,
                    ptr(a[2]),
                    a[3]
                ),
                a[3].to_string(),
            ),
            Sys::Splice => (
                format!(
                    "splice({}, {}, {}, {}, {}, {})",
                    a[0] as i32,
                    ptr(a[1]),
                    a[2] as i32,
                    ptr(a[3]),
                    a[4],
                    syscalls::splice_flags(a[5])
                ),
                a[4].to_string(),
            ),
            Sys::CopyFileRange => (
                format!(
                    "copy_file_range({}, {}, {}, {}, {}, {})",
                    a[0] as i32,
                    ptr(a[1]),
                    a[2] as i32,
                    ptr(a[3]),
                    a[4],
                    a[5]
                ),
                a[4].to_string(),
            ),
            Sys::Setsockopt => p.opt.clone().unwrap_or_default(),
            Sys::Dup => (newfd(format!("dup({fd})")), String::new()),
            Sys::Dup2 => (
                format!("dup2({fd}, {})", a[1] as i32),
                (a[1] as i32).to_string(),
            ),
            Sys::Dup3 => (
                format!("dup3({fd}, {})", a[1] as i32),
                (a[1] as i32).to_string(),
            ),
            Sys::Fcntl => (
                newfd(format!("fcntl({fd}, F_DUPFD, {})", a[2] as i32)),
                String::new(),
            ),
            Sys::Execve | Sys::Execveat | Sys::IoUringSetup => {
                (format!("{}()", p.sys.name()), String::new())
            }
        }
    }

    /// TCP_INFO of the descriptor: the state (when it says CLOSE the kernel
    /// may have handed the connection to a TIME_WAIT socket, so the table is
    /// asked too, as the scenario driver does) and the bytes of the stream
    /// the kernel has been handed so far.
    fn tcp_info(&mut self, tid: i32, fd: i32, sock: Option<SockId>) -> (StateObs, Option<u64>) {
        let info = match sock.and_then(|s| self.copies.get(&s)) {
            Some(c) => hc_sys::sock::tcp_info(c.as_raw_fd()),
            None => self
                .remote(tid, fd)
                .and_then(|c| hc_sys::sock::tcp_info(c.as_raw_fd())),
        };
        let addrs = self.addrs(sock);
        let state = sockstate::after_call(info.map(|i| TcpState(i.state)), || match addrs {
            (Some(l), Some(p)) => self.diag.lookup(l, Some(p)),
            _ => StateObs::Unknown,
        });
        (state, info.and_then(|i| i.handed))
    }

    /// Bytes a write-like call handed to the socket, from its result.
    fn bytes_of(&self, tid: i32, p: &Pending, ret: i64) -> u64 {
        if ret <= 0 {
            return 0;
        }
        if p.sys == Sys::Sendmmsg {
            let n = ret as usize;
            return self
                .read_mem(tid, p.args[1], n.saturating_mul(syscalls::MMSGHDR_SIZE))
                .and_then(|b| syscalls::mmsg_bytes(&b, n))
                .unwrap_or(0);
        }
        ret as u64
    }

    fn record(&mut self, tid: i32, tgid: i32, p: Pending, ret: i64, err: i32, end: Nanos) {
        let Some(table) = self.tasks.get(&tid).map(|t| t.table) else {
            return;
        };
        let ok = ret >= 0;
        let mut sock = p.sock;
        let mut fd = p.fd;
        let mut note = None;
        let mut stream = None;
        let mut state = None;
        let kind = p.kind();
        match p.sys {
            Sys::Socket if ok => {
                let new = ret as i32;
                if let Probe::Tcp(r) = self.probe_new(tid, new, true) {
                    state = r.state.map(|state| StateObs::TcpInfo { state });
                    let id = self.register(r, Role::Fresh);
                    self.fds.socks[id].role = Role::Fresh;
                    self.fds.set(table, new, Slot::Sock(id));
                    sock = Some(id);
                }
                fd = new;
            }
            Sys::Bind | Sys::Listen | Sys::Connect => {
                if let Some(s) = sock {
                    if p.sys == Sys::Listen && ok {
                        self.fds.socks[s].role = Role::Listening;
                    }
                    if p.sys == Sys::Connect {
                        if self.fds.socks[s].role == Role::Fresh {
                            self.fds.socks[s].role = Role::Connecting;
                        }
                        self.fds.socks[s].peer = self.fds.socks[s].peer.or(p.addr);
                    }
                    let (local, peer, st) = match self.copies.get(&s).map(|c| c.as_raw_fd()) {
                        // Our copy answers without another pidfd_getfd.
                        Some(c) => addrs_and_state(c),
                        None => match self.probe(tid, fd) {
                            Probe::Tcp(r) => (r.local, r.peer, r.state),
                            _ => (None, None, None),
                        },
                    };
                    state = st.map(|state| StateObs::TcpInfo { state });
                    let k = &mut self.fds.socks[s];
                    k.local = local.or(k.local);
                    k.peer = peer.or(k.peer);
                }
                if p.sys == Sys::Connect && err == hc_sys::errno::EINPROGRESS {
                    note = Some("non-blocking: the handshake goes on after the call".into());
                }
            }
            Sys::Accept | Sys::Accept4 => {
                if ok {
                    let new = ret as i32;
                    if let Probe::Tcp(r) = self.probe_new(tid, new, false) {
                        state = r.state.map(|state| StateObs::TcpInfo { state });
                        let id = self.register(r, Role::Accepted);
                        self.fds.socks[id].role = Role::Accepted;
                        self.fds.set(table, new, Slot::Sock(id));
                        sock = Some(id);
                        // The call is about the new connection, as in scenario runs.
                        fd = new;
                    }
                } else if err == hc_sys::errno::EAGAIN {
                    note = Some("no connection waiting (non-blocking)".into());
                }
            }
            Sys::Close => {
                if ok || err != hc_sys::errno::EBADF {
                    // Linux releases the descriptor even when close() reports an error.
                    self.fds.remove(table, fd);
                }
                if p.shared {
                    note = Some(
                        "another descriptor (dup, fork) still refers to this socket, so nothing is sent"
                            .into(),
                    );
                }
                let (l, pe) = self.addrs(sock);
                state = Some(match l {
                    Some(l) => self.diag.lookup(l, pe),
                    None => StateObs::Unknown,
                });
            }
            Sys::CloseRange => {
                self.record_close_range(tgid, &p, ret, err, end);
                return;
            }
            Sys::Dup | Sys::Dup2 | Sys::Dup3 | Sys::Fcntl if ok => {
                if let Some(s) = sock {
                    if let Some(dropped) = self.fds.set(table, ret as i32, Slot::Sock(s)) {
                        self.copies.remove(&dropped);
                    }
                }
            }
            _ if kind == CallKind::Write => {
                let bytes = self.bytes_of(tid, &p, ret);
                let (st, handed) = self.tcp_info(tid, fd, sock);
                state = Some(st);
                if let Some(k) = sock.and_then(|s| self.fds.socks.get_mut(s)) {
                    // The kernel's own count places the bytes in the stream,
                    // whatever went before by paths no traced call shows;
                    // without it, the traced calls' bytes are counted.
                    let to = handed.filter(|&h| h >= bytes).unwrap_or(k.written + bytes);
                    if bytes > 0 {
                        stream = Some((to - bytes, to));
                    }
                    k.written = k.written.max(to);
                }
                if err == hc_sys::errno::EAGAIN {
                    note = Some("send buffer full (non-blocking)".into());
                }
            }
            _ if kind == CallKind::Read => {
                note = match (ret, err) {
                    // What a 0 means is the story's to say (the FIN, or a SHUT_RD).
                    (0, _) => None,
                    (_, hc_sys::errno::EAGAIN) => {
                        Some("would block: no data (non-blocking or SO_RCVTIMEO)".into())
                    }
                    _ => None,
                };
            }
            _ => {}
        }
        if sock.is_none() {
            // A call on a socket that never was TCP (a failed socket() of ours included).
            if p.sys != Sys::Socket {
                return;
            }
        }
        let state = match state {
            Some(s) => s,
            None if ok || p.sys != Sys::Socket => self.tcp_info(tid, fd, sock).0,
            None => StateObs::Unknown,
        };
        let (text, args) = Self::describe(&p, Some(ret));
        let (local, peer) = self.addrs(sock);
        self.emit(Traced {
            call: Call {
                side: Side::Client,
                kind,
                text,
                args,
                pid: Some(tgid as u32),
                fd: Some(fd),
                ret: Some(ret),
                errno: (!ok).then(|| hc_sys::errno::name(err)),
                note,
                start: p.start,
                end,
                local,
                peer,
                stream,
                state_after: state,
                // accept() and socket() are about a descriptor that did not exist at entry.
                state_before: if matches!(p.sys, Sys::Socket | Sys::Accept | Sys::Accept4) {
                    None
                } else {
                    p.before.clone()
                },
                line: None,
            },
            sock,
        });
    }

    /// close_range(): one close for each socket it closed, over the call.
    fn record_close_range(&mut self, tgid: i32, p: &Pending, ret: i64, err: i32, end: Nanos) {
        for &(fd, s, shared) in &p.closing {
            let one = Pending {
                fd,
                sock: Some(s),
                ..p.clone()
            };
            let (text, args) = Self::describe(&one, Some(ret));
            let (local, peer) = self.addrs(Some(s));
            let state = match local {
                Some(l) if !shared => self.diag.lookup(l, peer),
                _ => StateObs::Unknown,
            };
            self.emit(Traced {
                call: Call {
                    side: Side::Client,
                    kind: CallKind::Close,
                    text,
                    args,
                    pid: Some(tgid as u32),
                    fd: Some(fd),
                    ret: Some(ret),
                    errno: (ret < 0).then(|| hc_sys::errno::name(err)),
                    note: shared.then(|| {
                        "another descriptor (dup, fork) still refers to this socket, so nothing is sent"
                            .into()
                    }),
                    start: p.start,
                    end,
                    local,
                    peer,
                    stream: None,
                    state_after: state,
                    state_before: None,
                    line: None,
                },
                sock: Some(s),
            });
        }
    }
}

/// getsockname, getpeername and TCP_INFO's state of our copy of a socket.
fn addrs_and_state(c: RawFd) -> (Option<SocketAddr>, Option<SocketAddr>, Option<TcpState>) {
    (
        hc_sys::sock::local_addr(c).filter(|a| a.port() != 0),
        hc_sys::sock::peer_addr(c),
        sockstate::tcp_info_state(c),
    )
}

pub(super) fn kind_of(s: Sys) -> CallKind {
    match s {
        Sys::Socket => CallKind::Socket,
        Sys::Bind => CallKind::Bind,
        Sys::Listen => CallKind::Listen,
        Sys::Connect => CallKind::Connect,
        Sys::Accept | Sys::Accept4 => CallKind::Accept,
        Sys::Shutdown => CallKind::Shutdown,
        Sys::Close | Sys::CloseRange => CallKind::Close,
        Sys::Setsockopt => CallKind::Setsockopt,
        Sys::Dup | Sys::Dup2 | Sys::Dup3 | Sys::Fcntl => CallKind::Dup,
        s if s.is_write() => CallKind::Write,
        _ => CallKind::Read,
    }
}

/// The descriptors task `tid` has open (/proc/TID/fd); None when unreadable.
fn open_fds(tid: i32) -> Option<HashSet<i32>> {
    let d = std::fs::read_dir(format!("/proc/{tid}/fd")).ok()?;
    Some(
        d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

fn proc_status_field(tid: i32, key: &str) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}
