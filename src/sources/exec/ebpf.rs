//! The eBPF backend of `exec`: the program runs without ptrace and without
//! a single stop. BPF programs on the raw syscall tracepoints
//! (`hc_sys::bpf`, tp_btf sys_enter/sys_exit) record each socket call of the
//! traced process tree (followed through sched_process_fork) with its
//! arguments, result and its socket read in the kernel at entry and exit
//! (4-tuple, state, bytes handed). This module turns those records into the
//! same call records the ptrace tracer makes ([`super::tracer`]), through
//! the same descriptor map ([`super::fdmap`]) and the same call texts, so
//! the same correlator tells the same story.
//!
//! Differences from the ptrace backend, all from not stopping the program:
//! sendmmsg's byte count is added up in the kernel for up to 32 messages
//! (more: the socket's own count of bytes handed, before and after); which
//! descriptors an execve's close-on-exec closed is read in the kernel for
//! descriptors 0..63 (from /proc after the fact above); an execve's path is
//! cut at 31 bytes.

use super::fdmap::{FdMap, Role, Slot, SockId, TableId};
use super::tracer::{self, Pending, Shared, TraceConfig, TraceError, TraceOutcome, Tracer};
use crate::sources::sockstate::{self, Diag};
use hc_core::exec::live::Obs;
use hc_core::model::exec::{ExitStatus, Stopped, Traced};
use hc_core::model::{Call, CallKind, Nanos, Side, StateObs, TcpState};
use hc_sys::bpf::{BpfTrace, CallRecord, FdArg, Filter, Record, SockInfo};
use hc_sys::ptrace::syscalls::{self, Decoder, ShownOpt, Sys};
use std::collections::{HashMap, HashSet};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

/// How each traced call names its socket, for the kernel side.
fn watched(dec: &Decoder) -> Vec<(u32, FdArg)> {
    (0..1024u32)
        .filter_map(|nr| {
            let how = match dec.get(u64::from(nr))? {
                Sys::Socket => FdArg::None,
                Sys::Bind | Sys::Connect => FdArg::Addr,
                Sys::Setsockopt => FdArg::Sockopt,
                Sys::Accept | Sys::Accept4 | Sys::Dup | Sys::Dup2 | Sys::Dup3 | Sys::Fcntl => {
                    FdArg::NewFd
                }
                Sys::Splice | Sys::CopyFileRange => FdArg::Between,
                Sys::CloseRange | Sys::IoUringSetup => FdArg::Any,
                Sys::Execve => FdArg::Exec,
                Sys::Execveat => FdArg::ExecAt,
                Sys::Sendmmsg => FdArg::Mmsg,
                _ => FdArg::First,
            };
            Some((nr, how))
        })
        .collect()
}

/// Whether a socket of this namespace listens on `port` (/proc/net/tcp{,6}).
fn listening_on(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|text| {
            text.lines().skip(1).any(|l| {
                let mut it = l.split_whitespace();
                let local = it.nth(1).unwrap_or("");
                let state = it.nth(1).unwrap_or("");
                state == "0A"
                    && local
                        .rsplit(':')
                        .next()
                        .and_then(|p| u16::from_str_radix(p, 16).ok())
                        == Some(port)
            })
        })
    })
}

/// The state machine fed by the ring buffer's reader thread.
struct Assembler {
    dec: Decoder,
    fds: FdMap,
    tasks: HashMap<u32, TableId>,
    offset: Nanos,
    diag: Diag,
    sink: super::Feed,
    tids: Arc<Mutex<HashSet<i32>>>,
    /// The sockets the program's calls used (kernel addresses), for the
    /// kernel trace's reader: its events are the program's by socket.
    socks: Arc<Mutex<HashSet<u64>>>,
    shared: Arc<Shared>,
    timeout: Option<Duration>,
    calls: u64,
    /// A call a signal interrupted (its exit said ERESTART*), by thread: the
    /// same call next is the kernel's restart of it, one call.
    interrupted: HashMap<u32, CallRecord>,
    /// Processes that set up an io_uring (said once each).
    uring: HashSet<u32>,
    /// attach: threads that were running before the trace share their
    /// process's descriptor table, found by its kernel address.
    by_files: Option<HashMap<u64, TableId>>,
    /// attach: the traced process's wait status once its leader exited.
    leader: Option<(u32, Option<i32>)>,
}

const RESTART: [i64; 4] = [-512, -513, -514, -516];

impl Assembler {
    fn ts(&self, mono: u64) -> Nanos {
        i64::try_from(mono).unwrap_or(i64::MAX) + self.offset
    }

    fn table(&mut self, tid: u32) -> TableId {
        if let Some(t) = self.tasks.get(&tid) {
            return *t;
        }
        let t = self.fds.new_table();
        self.tasks.insert(tid, t);
        t
    }

    fn on(&mut self, r: Record) {
        match r {
            Record::Sock(_) => {}
            Record::Fork {
                tid,
                child,
                child_tgid,
                shares_files,
                ..
            } => {
                let table = self.table(tid);
                let t = if shares_files {
                    self.fds.share(table);
                    table
                } else {
                    self.fds.fork_table(table)
                };
                self.tasks.insert(child, t);
                if let Ok(c) = i32::try_from(child) {
                    self.tids
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(c);
                }
                if child == child_tgid {
                    if let Ok(c) = i32::try_from(child) {
                        self.shared
                            .alive
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(c);
                    }
                }
            }
            Record::Exit {
                mono_ns,
                tid,
                tgid,
                status,
                open,
            } => {
                let now = self.ts(mono_ns);
                if let Some((p, st)) = &mut self.leader {
                    if *p == tid && tid == tgid {
                        *st = Some(status);
                    }
                }
                if let Some(prev) = self.interrupted.remove(&tid) {
                    let note = self.interrupted_note();
                    // It ended when the kernel left it for the signal.
                    let at = self.ts(prev.end_ns);
                    self.record_unfinished(prev, note, at);
                }
                let Some(table) = self.tasks.remove(&tid) else {
                    return;
                };
                let why = self.ended_why(status);
                for (fd, s) in self.fds.release(table) {
                    // A descriptor closed by a path no call shows (an io_uring
                    // close) is not open any more: the exit closes nothing.
                    let closed = (0..64).contains(&fd) && open.is_some_and(|o| o & (1 << fd) == 0);
                    if closed {
                        continue;
                    }
                    self.synthetic_close(tgid, fd, s, &format!("process exit ({why})"), now);
                }
                if tid == tgid {
                    if let Ok(t) = i32::try_from(tgid) {
                        self.shared
                            .alive
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&t);
                    }
                }
                self.flush_dead();
            }
            Record::Call(c) => {
                let known = [c.before.as_ref(), c.after.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(|s| s.sk)
                    .filter(|&sk| sk != 0);
                let mut socks = self.socks.lock().unwrap_or_else(PoisonError::into_inner);
                socks.extend(known);
                drop(socks);
                self.call(c)
            }
        }
    }

    fn ended_why(&self, st: i32) -> String {
        tracer::ended_words(st, self.shared.stopped(), self.timeout)
    }

    fn interrupted_note(&self) -> String {
        tracer::interrupted_words(self.shared.stopped(), self.timeout)
    }

    /// A call that never returned to the program (a signal ended it).
    fn record_unfinished(&mut self, c: CallRecord, note: String, end: Nanos) {
        let Some(sys) = self.dec.get(u64::from(c.nr)) else {
            return;
        };
        let table = self.table(c.tid);
        let sock = c.before.as_ref().map(|b| self.slot(table, c.fd, b));
        let len = (c.args[2] as usize).min(32);
        let p = Pending {
            sys,
            args: c.args,
            start: self.ts(c.start_ns),
            fd: c.fd,
            sock,
            addr: matches!(sys, Sys::Bind | Sys::Connect)
                .then(|| hc_sys::sock::sockaddr_from_bytes(&c.data[..len]))
                .flatten(),
            opt: (sys == Sys::Setsockopt)
                .then(|| Self::sockopt(&c.args, &c.data))
                .flatten(),
            shared: false,
            before: c.before.map(|b| StateObs::TcpInfo {
                state: TcpState(b.state),
            }),
            writes: sys.is_between() && c.fd == c.args[2] as i32,
            closing: Vec::new(),
        };
        if sock.is_none() {
            return;
        }
        let (text, args) = Tracer::describe(&p, None);
        let (local, peer) = sock
            .and_then(|s| self.fds.socks.get(s))
            .map_or((None, None), |k| (k.local, k.peer));
        self.emit(Traced {
            call: Call {
                side: Side::Client,
                kind: p.kind(),
                text,
                args,
                pid: Some(c.tgid),
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

    fn flush_dead(&mut self) {
        for s in self.fds.take_dead() {
            if let Some(k) = self.fds.socks.get(s) {
                self.sink.send(Obs::Sock(s, k.clone()));
            }
            self.sink.send(Obs::Closed(s));
        }
    }

    fn emit(&mut self, t: Traced) {
        if let Some((s, k)) = t.sock.and_then(|s| self.fds.socks.get(s).map(|k| (s, k))) {
            self.sink.send(Obs::Sock(s, k.clone()));
        }
        self.sink.send(Obs::Call(Box::new(t)));
        self.calls += 1;
        self.flush_dead();
    }

    fn synthetic_close(&mut self, tgid: u32, fd: i32, s: SockId, why: &str, at: Nanos) {
        self.kernel_close(tgid, fd, s, why, (at, at), "exit");
    }

    /// A close the kernel made for the program (process exit, execve's
    /// close-on-exec), over `span`.
    fn kernel_close(
        &mut self,
        tgid: u32,
        fd: i32,
        s: SockId,
        why: &str,
        span: (Nanos, Nanos),
        args: &str,
    ) {
        let sock = &self.fds.socks[s];
        let note = if args == "execve" {
            "the descriptor was marked close-on-exec (O_CLOEXEC, FD_CLOEXEC); it was the socket's last"
        } else {
            "the program never closed it; its last descriptor went with the process"
        };
        self.emit(Traced {
            call: Call {
                side: Side::Client,
                kind: CallKind::Close,
                text: format!("close({fd}) by the kernel: {why}"),
                args: args.into(),
                pid: Some(tgid),
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

    fn is_listening_port(&self, local: Option<std::net::SocketAddr>) -> bool {
        local.is_some_and(|l| {
            self.fds
                .socks
                .iter()
                .any(|s| s.role == Role::Listening && s.local.is_some_and(|a| a.port() == l.port()))
        })
    }

    /// The socket of `fd` in `table`; one the trace has not seen created
    /// (inherited) is registered from what the kernel read.
    fn slot(&mut self, table: TableId, fd: i32, info: &SockInfo) -> SockId {
        if let Some(Slot::Sock(s)) = self.fds.get(table, fd) {
            if self.fds.socks[s].ino == info.ino {
                return s;
            }
        }
        // attach: a socket accepted before the trace began, from a
        // listener the trace has not seen, is found by a listener on its port.
        let listened =
            || self.by_files.is_some() && info.local.is_some_and(|l| listening_on(l.port()));
        let role = if info.state == TcpState::LISTEN.0 {
            Role::Listening
        } else if info.peer.is_some() && (self.is_listening_port(info.local) || listened()) {
            Role::Accepted
        } else {
            Role::Connecting
        };
        self.register(table, fd, info, role)
    }

    fn register(&mut self, table: TableId, fd: i32, info: &SockInfo, role: Role) -> SockId {
        let id = self.fds.sock_for(info.ino, role);
        let s = &mut self.fds.socks[id];
        s.local = info.local.or(s.local);
        s.peer = info.peer.or(s.peer);
        self.fds.set(table, fd, Slot::Sock(id));
        id
    }

    fn after_state(&self, sock: Option<SockId>, info: Option<&SockInfo>) -> StateObs {
        let addrs = sock
            .and_then(|s| self.fds.socks.get(s))
            .map_or((None, None), |k| (k.local, k.peer));
        sockstate::after_call(info.map(|i| TcpState(i.state)), || match addrs {
            (Some(l), Some(p)) => self.diag.lookup(l, Some(p)),
            _ => StateObs::Unknown,
        })
    }

    fn sockopt(a: &[u64; 6], data: &[u8; 32]) -> Option<(String, String)> {
        let (level, name) = (a[1] as i32, a[2] as i32);
        let fd = a[0];
        let int = |b: &[u8]| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        match syscalls::shown_opt(level, name)? {
            ShownOpt::Linger => {
                let (on, secs) = (int(&data[0..4]), int(&data[4..8]));
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
                let v = int(&data[0..4]);
                Some((
                    format!("setsockopt({fd}, IPPROTO_TCP, {n}, {v})"),
                    format!("{n} {v}"),
                ))
            }
        }
    }

    /// A successful execve: the close-on-exec descriptors are gone; each
    /// socket that lost its last descriptor gets a close of its own,
    /// spanning the execve from its entry.
    fn on_exec(&mut self, c: &CallRecord, old: TableId) {
        let path = {
            let end = c.data.iter().position(|&b| b == 0).unwrap_or(c.data.len());
            String::from_utf8_lossy(&c.data[..end]).into_owned()
        };
        let why = format!("execve(\"{path}\") closed it (close-on-exec)");
        let span = (self.ts(c.start_ns), self.ts(c.end_ns));
        let table = self.fds.fork_table(old);
        for (fd, s) in self.fds.release(old) {
            self.kernel_close(c.tgid, fd, s, &why, span, "execve");
        }
        self.tasks.insert(c.tid, table);
        // Descriptors 0..63: the kernel's close-on-exec bitmap at entry.
        // Above (or on a kernel that gave none): what /proc shows now, which
        // the new program may already have reused.
        let known = |fd: i32| c.cloexec.filter(|_| (0..64).contains(&fd));
        let open: HashSet<i32> = if self.fds.fds(table).iter().all(|&fd| known(fd).is_some()) {
            HashSet::new()
        } else {
            std::fs::read_dir(format!("/proc/{}/fd", c.tgid))
                .map(|d| {
                    d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        for fd in self.fds.fds(table) {
            let closed = match known(fd) {
                Some(bits) => bits & (1u64 << fd) != 0,
                None => !open.contains(&fd),
            };
            if closed {
                if let Some((s, true)) = self.fds.remove(table, fd) {
                    self.kernel_close(c.tgid, fd, s, &why, span, "execve");
                }
            }
        }
        self.flush_dead();
    }

    /// close_range(): one close for each socket it closed, over the call.
    fn close_range(&mut self, c: &CallRecord, table: TableId) {
        let (first, last) = (
            c.args[0].min(i32::MAX as u64),
            c.args[1].min(i32::MAX as u64),
        );
        let mut fds = self.fds.fds(table);
        fds.sort_unstable();
        for fd in fds {
            if !(first..=last).contains(&(fd as u64)) {
                continue;
            }
            let Some(Slot::Sock(s)) = self.fds.get(table, fd) else {
                self.fds.remove(table, fd);
                continue;
            };
            let shared = self.fds.refs(s) > 1;
            self.fds.remove(table, fd);
            let p = Pending {
                sys: Sys::CloseRange,
                args: c.args,
                start: self.ts(c.start_ns),
                fd,
                sock: Some(s),
                addr: None,
                opt: None,
                shared,
                before: None,
                writes: false,
                closing: Vec::new(),
            };
            let (text, args) = Tracer::describe(&p, Some(c.ret));
            let (local, peer) = (self.fds.socks[s].local, self.fds.socks[s].peer);
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
                    pid: Some(c.tgid),
                    fd: Some(fd),
                    ret: Some(c.ret),
                    errno: None,
                    note: shared.then(|| {
                        "another descriptor (dup, fork) still refers to this socket, so nothing is sent"
                            .into()
                    }),
                    start: p.start,
                    end: self.ts(c.end_ns),
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

    fn call(&mut self, mut c: CallRecord) {
        let Some(sys) = self.dec.get(u64::from(c.nr)) else {
            return;
        };
        if let Some(prev) = self.interrupted.remove(&c.tid) {
            if prev.nr == c.nr && prev.args == c.args {
                c.start_ns = prev.start_ns;
                c.before = prev.before.or(c.before);
            } else {
                let note = self.interrupted_note();
                let at = self.ts(prev.end_ns);
                self.record_unfinished(prev, note, at);
            }
        }
        if RESTART.contains(&c.ret) {
            self.interrupted.insert(c.tid, c);
            return;
        }
        if let Ok(t) = i32::try_from(c.tid) {
            self.tids
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(t);
        }
        let table = match (self.tasks.get(&c.tid), &mut self.by_files) {
            (None, Some(by)) if c.files != 0 => match by.get(&c.files) {
                Some(&t) => {
                    self.fds.share(t);
                    self.tasks.insert(c.tid, t);
                    t
                }
                None => {
                    let t = self.fds.new_table();
                    by.insert(c.files, t);
                    self.tasks.insert(c.tid, t);
                    t
                }
            },
            _ => self.table(c.tid),
        };
        let (ret, ok) = (c.ret, c.ret >= 0);
        let err = if ok { 0 } else { (-ret) as i32 };
        match sys {
            Sys::IoUringSetup => {
                if self.uring.insert(c.tgid) {
                    self.sink
                        .send(Obs::Untraced(hc_core::model::exec::Untraced {
                            pid: c.tgid,
                            what: "io_uring".into(),
                            ts: self.ts(c.start_ns),
                        }));
                }
                return;
            }
            Sys::Execve | Sys::Execveat => {
                if ok {
                    self.on_exec(&c, table);
                }
                return;
            }
            Sys::CloseRange => {
                if ok && c.args[2] & syscalls::CLOSE_RANGE_CLOEXEC == 0 {
                    self.close_range(&c, table);
                }
                return;
            }
            _ => {}
        }
        let mut fd = c.fd;
        // The socket the call named at entry.
        let mut sock = c.before.as_ref().map(|b| self.slot(table, fd, b));
        if sys == Sys::Fcntl && !syscalls::is_dupfd(c.args[1] as i32) {
            return;
        }
        let mut p = Pending {
            sys,
            args: c.args,
            start: self.ts(c.start_ns),
            fd,
            sock,
            addr: None,
            opt: None,
            shared: false,
            before: c.before.map(|b| StateObs::TcpInfo {
                state: TcpState(b.state),
            }),
            writes: false,
            closing: Vec::new(),
        };
        let end = self.ts(c.end_ns);
        let mut note = None;
        let mut stream = None;
        let mut state = None;
        match sys {
            Sys::Socket => {
                if !syscalls::is_tcp_socket(c.args[0], c.args[1], c.args[2]) {
                    return;
                }
                if ok {
                    let new = ret as i32;
                    if let Some(a) = &c.after {
                        let fresh = SockInfo {
                            local: None,
                            peer: None,
                            ..*a
                        };
                        let id = self.register(table, new, &fresh, Role::Fresh);
                        self.fds.socks[id].role = Role::Fresh;
                        sock = Some(id);
                        state = Some(StateObs::TcpInfo {
                            state: TcpState(a.state),
                        });
                    }
                    fd = new;
                }
            }
            Sys::Bind | Sys::Connect => {
                let len = (c.args[2] as usize).min(32);
                p.addr = hc_sys::sock::sockaddr_from_bytes(&c.data[..len]);
                if let (Some(s), Some(a)) = (sock, &c.after) {
                    if sys == Sys::Connect {
                        if self.fds.socks[s].role == Role::Fresh {
                            self.fds.socks[s].role = Role::Connecting;
                        }
                        self.fds.socks[s].peer = self.fds.socks[s].peer.or(p.addr);
                    }
                    let k = &mut self.fds.socks[s];
                    k.local = a.local.or(k.local);
                    k.peer = a.peer.or(k.peer);
                    state = Some(StateObs::TcpInfo {
                        state: TcpState(a.state),
                    });
                }
                if sys == Sys::Connect && err == hc_sys::errno::EINPROGRESS {
                    note = Some("non-blocking: the handshake goes on after the call".into());
                }
            }
            Sys::Listen => {
                if let (Some(s), Some(a)) = (sock, &c.after) {
                    if ok {
                        self.fds.socks[s].role = Role::Listening;
                    }
                    let k = &mut self.fds.socks[s];
                    k.local = a.local.or(k.local);
                    state = Some(StateObs::TcpInfo {
                        state: TcpState(a.state),
                    });
                }
            }
            Sys::Accept | Sys::Accept4 => {
                if ok {
                    let new = ret as i32;
                    if let Some(a) = &c.after {
                        let id = self.register(table, new, a, Role::Accepted);
                        self.fds.socks[id].role = Role::Accepted;
                        sock = Some(id);
                        fd = new;
                        state = Some(StateObs::TcpInfo {
                            state: TcpState(a.state),
                        });
                    }
                } else if err == hc_sys::errno::EAGAIN {
                    note = Some("no connection waiting (non-blocking)".into());
                }
            }
            Sys::Close => {
                if let Some(s) = sock {
                    p.shared = self.fds.refs(s) > 1;
                }
                if ok || err != hc_sys::errno::EBADF {
                    self.fds.remove(table, fd);
                }
                if p.shared {
                    note = Some(
                        "another descriptor (dup, fork) still refers to this socket, so nothing is sent"
                            .into(),
                    );
                }
                let (l, pe) = sock
                    .and_then(|s| self.fds.socks.get(s))
                    .map_or((None, None), |k| (k.local, k.peer));
                state = Some(match l {
                    Some(l) => self.diag.lookup(l, pe),
                    None => StateObs::Unknown,
                });
            }
            Sys::Dup | Sys::Dup2 | Sys::Dup3 | Sys::Fcntl if ok => {
                if let Some(s) = sock {
                    self.fds.set(table, ret as i32, Slot::Sock(s));
                }
            }
            Sys::Setsockopt => {
                p.opt = Self::sockopt(&c.args, &c.data);
                if p.opt.is_none() {
                    return;
                }
            }
            s if s.is_between() => {
                // The kernel side read the destination first.
                p.writes = c.fd == c.args[2] as i32;
            }
            _ => {}
        }
        let kind = p.kind();
        if kind == CallKind::Write && !matches!(sys, Sys::Close) {
            let bytes = match sys {
                _ if ret <= 0 => 0,
                // What the kernel wrote back in each message's msg_len, or
                // (more than 32 messages) what TCP says the call handed it.
                Sys::Sendmmsg => {
                    c.mmsg_bytes
                        .unwrap_or_else(|| match (c.before.as_ref(), c.after.as_ref()) {
                            (Some(b), Some(a)) => a.handed.saturating_sub(b.handed),
                            _ => 0,
                        })
                }
                _ => ret as u64,
            };
            let handed = c.after.map(|a| a.handed);
            if let Some(k) = sock.and_then(|s| self.fds.socks.get_mut(s)) {
                let to = handed.filter(|&h| h >= bytes).unwrap_or(k.written + bytes);
                if bytes > 0 {
                    stream = Some((to - bytes, to));
                }
                k.written = k.written.max(to);
            }
            if err == hc_sys::errno::EAGAIN {
                note = Some("send buffer full (non-blocking)".into());
            }
        } else if kind == CallKind::Read && err == hc_sys::errno::EAGAIN && ret != 0 {
            note = Some("would block: no data (non-blocking or SO_RCVTIMEO)".into());
        }
        if sock.is_none() && sys != Sys::Socket {
            return;
        }
        let state = match state {
            Some(s) => s,
            None => self.after_state(sock, c.after.as_ref()),
        };
        let (text, args) = Tracer::describe(&p, Some(ret));
        let (local, peer) = sock
            .and_then(|s| self.fds.socks.get(s))
            .map_or((None, None), |k| (k.local, k.peer));
        self.emit(Traced {
            call: Call {
                side: Side::Client,
                kind,
                text,
                args,
                pid: Some(c.tgid),
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
                state_before: if matches!(sys, Sys::Socket | Sys::Accept | Sys::Accept4) {
                    None
                } else {
                    p.before.clone()
                },
                line: None,
            },
            sock,
        });
    }
}

/// Why the eBPF backend did not run the program.
#[derive(Debug)]
pub enum EbpfError {
    /// The BPF programs could not load or attach (nothing was started).
    Unavailable(String),
    Trace(TraceError),
}

impl From<TraceError> for EbpfError {
    fn from(e: TraceError) -> Self {
        EbpfError::Trace(e)
    }
}

/// What [`start`] gives: the state shared with the watcher, the assembler
/// the ring buffer feeds, and the loaded programs.
type Started = (Arc<Shared>, Arc<Mutex<Assembler>>, BpfTrace);

/// Loads the programs and starts the assembler that turns their records
/// into calls: for `attach`, with the running process `attached` known
/// alive, its descriptor tables learnt as they are met and its exit
/// watched; for `exec`, empty until the program is spawned.
fn start(cfg: &TraceConfig, attached: Option<u32>) -> Result<Started, EbpfError> {
    let dec = Decoder::new();
    let filter = Filter {
        netns: Vec::new(),
        calls: watched(&dec),
    };
    let shared = Arc::new(Shared {
        alive: Mutex::new(attached.map(|p| p as i32).into_iter().collect()),
        stopped: Mutex::new(None),
    });
    let asm = Arc::new(Mutex::new(Assembler {
        dec,
        fds: FdMap::default(),
        tasks: HashMap::new(),
        offset: hc_sys::clock::realtime_minus_monotonic(),
        diag: Diag::open(),
        sink: cfg.sink.clone(),
        tids: cfg.tids.clone(),
        socks: cfg.socks.clone(),
        shared: shared.clone(),
        timeout: cfg.timeout,
        calls: 0,
        interrupted: HashMap::new(),
        uring: HashSet::new(),
        by_files: attached.map(|_| HashMap::new()),
        leader: attached.map(|p| (p, None)),
    }));
    let feed = asm.clone();
    let bpf = BpfTrace::start_records(filter, move |r| {
        feed.lock().unwrap_or_else(PoisonError::into_inner).on(r);
    })
    .map_err(|e| EbpfError::Unavailable(e.to_string()))?;
    Ok((shared, asm, bpf))
}

/// `attach PID`: traces a process that is already running (its threads,
/// and the children it starts from now on) until it ends, the duration
/// (`cfg.timeout`) is over, or hc-trace gets SIGINT/SIGTERM; the process is
/// never signalled. Sockets it opened before are known from their first
/// call in the trace.
pub fn attach(cfg: &TraceConfig, pid: i32) -> Result<TraceOutcome, EbpfError> {
    let p = u32::try_from(pid).map_err(|_| EbpfError::Unavailable(format!("bad pid {pid}")))?;
    let (_, asm, bpf) = start(cfg, Some(p))?;
    cfg.tids
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(pid);
    bpf.pids()
        .ok_or_else(|| EbpfError::Unavailable("no pid map".into()))?
        .add(p)
        .map_err(|e| EbpfError::Unavailable(e.to_string()))?;
    eprintln!("hc-trace: attached to pid {pid}");
    let started = std::time::Instant::now();
    let why = loop {
        std::thread::sleep(Duration::from_millis(20));
        let ended = asm
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .leader
            .and_then(|(_, st)| st);
        if let Some(st) = ended {
            break Err(st);
        }
        if hc_sys::signals::kill(pid, 0).is_err() {
            break Err(0);
        }
        if let Some(sig) = hc_sys::signals::exec_sent() {
            break Ok(format!("hc-trace got {}", hc_sys::signals::name(sig)));
        }
        if hc_sys::signals::exec_terminal_interrupts() > 0 {
            break Ok("Ctrl-C".to_string());
        }
        if cfg.timeout.is_some_and(|t| started.elapsed() >= t) {
            break Ok(format!("--duration {}", hc_core::time::secs(cfg.timeout)));
        }
    };
    let stats = bpf.stop();
    let mut a = asm.lock().unwrap_or_else(PoisonError::into_inner);
    a.flush_dead();
    if stats.drops > 0 {
        eprintln!(
            "hc-trace: the eBPF ring buffer lost {} records: the timeline misses calls",
            stats.drops
        );
    }
    let tids = a
        .tids
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let (status, stopped) = match why {
        Ok(why) => (ExitStatus::Running, Some(Stopped::Detached(why))),
        Err(st) => (tracer::status_of(st), None),
    };
    Ok(TraceOutcome {
        pid: p,
        status,
        stopped,
        stops: 0,
        tids,
        untraced: Vec::new(),
    })
}

/// Runs the program to its end under the eBPF trace.
pub fn trace(cfg: &TraceConfig) -> Result<TraceOutcome, EbpfError> {
    let (shared, asm, bpf) = start(cfg, None)?;
    let prog = cfg
        .argv
        .first()
        .ok_or_else(|| TraceError::NotFound(String::new()))?;
    let path = tracer::resolve(prog)?;
    let pids = bpf.pids();
    let pid = hc_sys::ptrace::spawn_gated(&path, &cfg.argv, |pid| {
        let p = u32::try_from(pid).map_err(|_| "bad pid".to_string())?;
        {
            let mut a = asm.lock().unwrap_or_else(PoisonError::into_inner);
            a.table(p);
        }
        shared
            .alive
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pid);
        cfg.tids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pid);
        pids.ok_or_else(|| "no pid map".to_string())?
            .add(p)
            .map_err(|e| e.to_string())
    })
    .map_err(|e| match e {
        hc_sys::ptrace::SpawnError::Nul => TraceError::Nul,
        hc_sys::ptrace::SpawnError::Start { what, err } => TraceError::Start { what, err },
        hc_sys::ptrace::SpawnError::Trace { what, err } => TraceError::Trace { what, err },
    })?;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    {
        let (shared, timeout) = (shared.clone(), cfg.timeout);
        let _ = std::thread::Builder::new()
            .name("hc-trace-watch".into())
            .spawn(move || tracer::watch(timeout, &done_rx, &shared));
    }
    let st = hc_sys::ptrace::wait_exit(pid).unwrap_or(0);
    // Children the program left running are still traced until they end.
    let started = std::time::Instant::now();
    while !shared
        .alive
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .all(|&p| p == pid || hc_sys::signals::kill(p, 0).is_err())
        && started.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(done_tx);
    let stats = bpf.stop();
    let mut a = asm.lock().unwrap_or_else(PoisonError::into_inner);
    a.flush_dead();
    if stats.drops > 0 {
        eprintln!(
            "hc-trace: the eBPF ring buffer lost {} records: the timeline misses calls",
            stats.drops
        );
    }
    let tids = a
        .tids
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(TraceOutcome {
        pid: pid as u32,
        status: tracer::status_of(st),
        stopped: shared.stopped(),
        stops: 0,
        tids,
        untraced: Vec::new(),
    })
}
