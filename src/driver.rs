//! The driver makes a scenario's socket calls for real and records each one.
//!
//! Each side (client, server) has its own worker thread holding its
//! descriptors, so a call that blocks on one side (a large write waiting for
//! the reader, a read waiting for data) never stops the other side's calls.
//! The driver hands the steps out in the order written and, after each, waits
//! until the wire is quiet, so every segment falls after the call that caused
//! it. Every wait has an upper bound: nothing hangs.
//!
//! Plumbing the scenario does not name (SO_REUSEADDR on the listener,
//! SO_RCVTIMEO/SO_SNDTIMEO to bound blocking calls) is set before the first
//! call of a socket and puts nothing on the wire.

use crate::errno;
use crate::faults::Faults;
use crate::model::{now_ns, Call, CallKind, Nanos, Note, Side, StateObs};
use crate::scenario::{Action, Scenario, SockOpt, Step};
use crate::sockstate;
use std::collections::HashMap;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// How the driver paces and bounds a run.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Where the server listens and the client connects.
    pub server: SocketAddr,
    /// How long a read or accept waits for something before giving up (SO_RCVTIMEO).
    pub read_wait: Duration,
    /// How long a write may block (SO_SNDTIMEO).
    pub write_wait: Duration,
    /// The wire is quiet once no segment arrived for this long.
    pub settle: Duration,
    /// The longest the driver waits for the wire to go quiet after a step.
    pub settle_max: Duration,
    /// The longest the driver waits for one step before it hands out the next
    /// (the step keeps running on its side and is recorded when it ends).
    pub step_max: Duration,
}

impl DriverConfig {
    pub fn new(server: SocketAddr) -> Self {
        DriverConfig {
            server,
            read_wait: Duration::from_millis(250),
            write_wait: Duration::from_secs(10),
            settle: Duration::from_millis(60),
            settle_max: Duration::from_secs(2),
            step_max: Duration::from_secs(5),
        }
    }
}

/// What the driver asks of the capture: how many segments it has seen, so it
/// can tell when the wire has gone quiet.
pub trait WireActivity: Send + Sync {
    fn packets_seen(&self) -> usize;
}

/// A step that could not be made as written (its descriptor was never
/// created because an earlier call failed, say). The run then exits 1.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepProblem {
    pub line: usize,
    pub step: String,
    pub message: String,
}

/// The state of one socket when the run ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FinalState {
    pub side: Side,
    pub local: SocketAddr,
    pub peer: Option<SocketAddr>,
    pub state: StateObs,
}

/// The descriptors a scenario left open. Dropping this closes them; the run
/// drops it only after the capture has stopped, so closes the scenario did
/// not ask for never enter the timeline.
#[derive(Default)]
pub struct OpenDescriptors(Vec<mpsc::Sender<Job>>);

impl std::fmt::Debug for OpenDescriptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenDescriptors({} sides)", self.0.len())
    }
}

/// Everything the driver observed.
#[derive(Debug, Default)]
pub struct DriverReport {
    pub calls: Vec<Call>,
    pub problems: Vec<StepProblem>,
    pub final_states: Vec<FinalState>,
    /// The run was stopped by a signal before its last step.
    pub interrupted: bool,
    /// What hc-trace itself did (faults on the wire), in order.
    pub notes: Vec<Note>,
    pub open: OpenDescriptors,
}

type StepResult = Result<Vec<Call>, String>;

#[doc(hidden)]
pub enum Job {
    Step(Box<Step>, oneshot::Sender<StepResult>),
    Final(oneshot::Sender<Vec<FinalState>>),
}

/// Runs every step of `scenario` and returns what each call did.
pub async fn run(
    scenario: &Scenario,
    cfg: &DriverConfig,
    wire: &dyn WireActivity,
    faults: &mut Faults,
    mut cancel: watch::Receiver<Option<&'static str>>,
) -> DriverReport {
    let mut report = DriverReport::default();
    let workers = [Side::Client, Side::Server].map(|side| Worker::spawn(side, cfg.clone()));
    let mut pending: Vec<(Step, oneshot::Receiver<StepResult>)> = Vec::new();

    for step in &scenario.steps {
        if cancel.borrow().is_some() {
            report.interrupted = true;
            break;
        }
        if let Action::Wire(fault) = step.action {
            let ts = now_ns();
            match faults.apply(fault) {
                Ok(()) => report.notes.push(Note {
                    ts,
                    text: format!("hc-trace: {}", fault.describe()),
                    line: Some(step.line),
                }),
                Err(e) => report
                    .problems
                    .push(problem(step, &format!("{e} ({})", e.hint()))),
            }
            settle(wire, cfg.settle, cfg.settle_max).await;
            continue;
        }
        let (tx, mut rx) = oneshot::channel();
        let worker = &workers[side_index(step.side)];
        if worker
            .jobs
            .send(Job::Step(Box::new(step.clone()), tx))
            .is_err()
        {
            report
                .problems
                .push(problem(step, "the side's worker stopped"));
            continue;
        }
        // A write may block until the other side reads (a full send buffer),
        // and a step queued behind a still-running one cannot start: for
        // those, the driver moves on once the wire is quiet, and the step is
        // recorded when it ends. Other steps are waited for (up to step_max).
        let side_busy = pending.iter().any(|(p, _)| p.side == step.side);
        let may_move_on = matches!(step.action, Action::Write(_)) || side_busy;
        tokio::select! {
            res = wait_step(&mut rx, wire, cfg, may_move_on) => match res {
                StepWait::Done(result) => absorb(&mut report, step, result),
                StepWait::WorkerGone => report.problems.push(problem(step, "the side's worker stopped")),
                StepWait::StillRunning => pending.push((step.clone(), rx)),
            },
            _ = cancel.changed() => {
                report.interrupted = true;
                pending.push((step.clone(), rx));
                break;
            }
        }
        tokio::select! {
            _ = settle(wire, cfg.settle, cfg.settle_max) => {}
            _ = cancel.changed() => { report.interrupted = true; break; }
        }
    }
    // Steps still running get one more bounded wait; what does not end in it is reported.
    for (step, rx) in pending {
        let bound = if report.interrupted {
            Duration::from_millis(500)
        } else {
            cfg.step_max
        };
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(result)) => absorb(&mut report, &step, result),
            _ => report.problems.push(problem(
                &step,
                &format!("did not finish within {} ms", cfg.step_max.as_millis() * 2),
            )),
        }
    }
    for w in &workers {
        let (tx, rx) = oneshot::channel();
        if w.jobs.send(Job::Final(tx)).is_ok() {
            if let Ok(Ok(mut states)) = tokio::time::timeout(Duration::from_secs(2), rx).await {
                report.final_states.append(&mut states);
            }
        }
    }
    report.calls.sort_by_key(|c| c.start);
    report.open = OpenDescriptors(workers.into_iter().map(|w| w.jobs).collect());
    report
}

fn absorb(report: &mut DriverReport, step: &Step, result: StepResult) {
    match result {
        Ok(mut calls) => report.calls.append(&mut calls),
        Err(msg) => report.problems.push(problem(step, &msg)),
    }
}

fn problem(step: &Step, message: &str) -> StepProblem {
    StepProblem {
        line: step.line,
        step: step.source.clone(),
        message: message.to_string(),
    }
}

enum StepWait {
    Done(StepResult),
    WorkerGone,
    StillRunning,
}

/// Waits for a step to end: at most `step_max`, or, when `may_move_on`,
/// until the wire has been quiet for the settle time while it runs.
async fn wait_step(
    rx: &mut oneshot::Receiver<StepResult>,
    wire: &dyn WireActivity,
    cfg: &DriverConfig,
    may_move_on: bool,
) -> StepWait {
    let start = Instant::now();
    let mut last = wire.packets_seen();
    let mut quiet_since = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_millis(5), &mut *rx).await {
            Ok(Ok(result)) => return StepWait::Done(result),
            Ok(Err(_)) => return StepWait::WorkerGone,
            Err(_) => {}
        }
        let now = wire.packets_seen();
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
        if (may_move_on && quiet_since.elapsed() >= cfg.settle) || start.elapsed() >= cfg.step_max {
            return StepWait::StillRunning;
        }
    }
}

/// Waits until no new segment has arrived for `quiet`, at most `max`.
pub async fn settle(wire: &dyn WireActivity, quiet: Duration, max: Duration) {
    let start = Instant::now();
    let mut last = wire.packets_seen();
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = wire.packets_seen();
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= quiet {
            return;
        }
        if start.elapsed() >= max {
            return;
        }
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    fn spawn(side: Side, cfg: DriverConfig) -> Worker {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("hc-trace-{}", side.name()))
            .spawn(move || {
                crate::interrupt::block_in_this_thread();
                let mut st = SideState::new(side, cfg);
                for job in rx {
                    match job {
                        Job::Step(step, reply) => {
                            let _ = reply.send(st.run(&step));
                        }
                        Job::Final(reply) => {
                            let _ = reply.send(st.final_states());
                        }
                    }
                }
                st.close_all();
            })
            .map(|_| Worker { jobs: tx })
            .unwrap_or_else(|_| {
                // Without a thread the side cannot act; its steps will be reported as problems.
                let (tx, _) = mpsc::channel();
                Worker { jobs: tx }
            })
    }
}

/// One side's descriptors and what it has written on each connection.
struct SideState {
    side: Side,
    cfg: DriverConfig,
    fds: HashMap<String, RawFd>,
    /// Last known addresses of each descriptor: after an RST the kernel no
    /// longer answers getpeername, but the timeline still needs to know
    /// which connection a call acted on.
    addrs: HashMap<RawFd, (Option<SocketAddr>, Option<SocketAddr>)>,
    /// Bytes handed to the kernel per connection (local, peer), so each
    /// write knows which stream offsets it covers.
    written: HashMap<(SocketAddr, SocketAddr), u64>,
    /// Every socket this side had, for the final states.
    seen: Vec<(SocketAddr, Option<SocketAddr>)>,
    /// The scenario line of the step being made.
    line: Option<usize>,
}

/// The parts of a Call a step fills in; the rest is common.
struct Made {
    kind: CallKind,
    text: String,
    args: String,
    fd: Option<RawFd>,
    ret: i64,
    err: i32,
    note: Option<String>,
    start: Nanos,
    end: Nanos,
    stream: Option<(u64, u64)>,
}

impl SideState {
    fn new(side: Side, cfg: DriverConfig) -> Self {
        SideState {
            side,
            cfg,
            fds: HashMap::new(),
            addrs: HashMap::new(),
            written: HashMap::new(),
            seen: Vec::new(),
            line: None,
        }
    }

    fn fd(&self, name: &str) -> Result<RawFd, String> {
        self.fds.get(name).copied().ok_or_else(|| {
            format!(
                "no open descriptor `{name}` on the {} side (an earlier call did not create it)",
                self.side
            )
        })
    }

    fn run(&mut self, step: &Step) -> StepResult {
        self.line = Some(step.line);
        let made = match &step.action {
            Action::Listen => self.listen(step)?,
            Action::Connect => self.connect(step)?,
            Action::Accept => self.accept(step)?,
            Action::Write(n) => self.write(step, *n)?,
            Action::Read => self.read(step)?,
            Action::ReadAll => return self.read_all(step),
            Action::Shutdown(how) => {
                let fd = self.fd(&step.fd)?;
                timed(
                    CallKind::Shutdown,
                    format!("shutdown({fd}, {})", how.name()),
                    how.name(),
                    fd,
                    || unsafe { libc::shutdown(fd, how.raw()) as i64 },
                )
            }
            Action::Close => return Ok(vec![self.close(step)?]),
            Action::SetSockOpt(opt) => self.setsockopt(step, opt)?,
            Action::Dup => {
                let fd = self.fd(&step.fd)?;
                let m = timed(CallKind::Dup, format!("dup({fd})"), "", fd, || unsafe {
                    libc::dup(fd) as i64
                });
                if m.ret >= 0 {
                    let new = m.ret as RawFd;
                    let a = self.addrs.get(&fd).copied().unwrap_or((None, None));
                    self.addrs.insert(new, a);
                    self.name_fd(step, new);
                }
                m
            }
            // Faults are made by the driver itself, never by a side.
            Action::Wire(_) => return Ok(Vec::new()),
            Action::Sleep(ms) => {
                let start = now_ns();
                std::thread::sleep(Duration::from_millis(*ms));
                Made {
                    kind: CallKind::Sleep,
                    text: format!("sleep({ms} ms)"),
                    args: ms.to_string(),
                    fd: None,
                    ret: 0,
                    err: 0,
                    note: None,
                    start,
                    end: now_ns(),
                    stream: None,
                }
            }
        };
        Ok(vec![self.finish(made)])
    }

    fn name_fd(&mut self, step: &Step, fd: RawFd) {
        if let Some(name) = &step.creates {
            self.fds.insert(name.clone(), fd);
        }
    }

    /// Completes a call record with the descriptor's addresses and TCP state.
    fn finish(&mut self, m: Made) -> Call {
        let (local, peer) = match m.fd {
            Some(fd) => self.refresh_addrs(fd),
            None => (None, None),
        };
        let state_after =
            sockstate::after_call(m.fd.and_then(sockstate::tcp_info_state), || {
                match (local, peer) {
                    (Some(l), Some(p)) => sockstate::lookup_closed(l, Some(p)),
                    _ => StateObs::Unknown,
                }
            });
        self.to_call(m, local, peer, state_after)
    }

    fn to_call(
        &self,
        m: Made,
        local: Option<SocketAddr>,
        peer: Option<SocketAddr>,
        state_after: StateObs,
    ) -> Call {
        let failed = m.ret < 0;
        Call {
            side: self.side,
            kind: m.kind,
            text: m.text,
            args: m.args,
            pid: None,
            fd: m.fd,
            ret: Some(m.ret),
            errno: failed.then(|| errno::name(m.err)),
            note: m.note,
            start: m.start,
            end: m.end,
            local,
            peer,
            stream: m.stream,
            state_after,
            line: self.line,
        }
    }

    /// Current addresses of `fd`, falling back to the last ones known.
    fn refresh_addrs(&mut self, fd: RawFd) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let known = self.addrs.get(&fd).copied().unwrap_or((None, None));
        let local = sock_name(fd, false).filter(|a| a.port() != 0).or(known.0);
        let peer = sock_name(fd, true).or(known.1);
        self.addrs.insert(fd, (local, peer));
        if let Some(l) = local {
            if !self.seen.contains(&(l, peer)) {
                self.seen.push((l, peer));
            }
        }
        (local, peer)
    }

    fn new_socket(&self) -> Result<RawFd, String> {
        let family = if self.cfg.server.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(format!("socket() failed: {}", errno::name(errno::last())));
        }
        set_timeout(fd, libc::SO_RCVTIMEO, self.cfg.read_wait);
        set_timeout(fd, libc::SO_SNDTIMEO, self.cfg.write_wait);
        Ok(fd)
    }

    fn listen(&mut self, step: &Step) -> Result<Made, String> {
        let fd = self.new_socket()?;
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
        let (sa, len) = to_raw(self.cfg.server);
        // SAFETY: sa is a valid sockaddr of length len.
        if unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_storage).cast(), len) } < 0 {
            let err = errno::last();
            let now = now_ns();
            unsafe { libc::close(fd) };
            return Ok(Made {
                kind: CallKind::Listen,
                text: format!("bind({fd}, {})", self.cfg.server),
                args: self.cfg.server.to_string(),
                fd: None,
                ret: -1,
                err,
                note: Some("bind() failed, so listen() was not called".into()),
                start: now,
                end: now,
                stream: None,
            });
        }
        self.addrs.insert(fd, (Some(self.cfg.server), None));
        let m = timed(
            CallKind::Listen,
            format!("listen({fd}, 8)"),
            "8",
            fd,
            || unsafe { libc::listen(fd, 8) as i64 },
        );
        let mut m = m;
        m.note = Some(format!("bound to {}", self.cfg.server));
        if m.ret == 0 {
            self.name_fd(step, fd);
        }
        Ok(m)
    }

    fn connect(&mut self, step: &Step) -> Result<Made, String> {
        let fd = self.new_socket()?;
        let server = self.cfg.server;
        self.addrs.insert(fd, (None, Some(server)));
        let (sa, len) = to_raw(server);
        let m = timed(
            CallKind::Connect,
            format!("connect({fd}, {server})"),
            &server.to_string(),
            fd,
            || unsafe {
                libc::connect(fd, (&sa as *const libc::sockaddr_storage).cast(), len) as i64
            },
        );
        // A C program keeps the descriptor whatever connect() returned.
        self.name_fd(step, fd);
        Ok(m)
    }

    fn accept(&mut self, step: &Step) -> Result<Made, String> {
        let lfd = self.fd(&step.fd)?;
        let mut m = timed(
            CallKind::Accept,
            format!("accept({lfd})"),
            "",
            lfd,
            || unsafe {
                libc::accept4(
                    lfd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                ) as i64
            },
        );
        if m.ret >= 0 {
            let fd = m.ret as RawFd;
            set_timeout(fd, libc::SO_RCVTIMEO, self.cfg.read_wait);
            set_timeout(fd, libc::SO_SNDTIMEO, self.cfg.write_wait);
            self.name_fd(step, fd);
            // The call is about the new connection: report its addresses and state.
            m.fd = Some(fd);
            m.text = format!("accept({lfd}) = {fd}");
        } else if m.err == libc::EAGAIN {
            m.note = Some(format!(
                "no connection within {} ms",
                self.cfg.read_wait.as_millis()
            ));
        }
        Ok(m)
    }

    fn write(&mut self, step: &Step, n: u64) -> Result<Made, String> {
        let fd = self.fd(&step.fd)?;
        let buf = vec![b'x'; n as usize];
        let mut m = timed(
            CallKind::Write,
            format!("send({fd}, buf, {n}, MSG_NOSIGNAL)"),
            &n.to_string(),
            fd,
            || unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) as i64 },
        );
        if m.ret > 0 {
            if let (Some(l), Some(p)) = self.refresh_addrs(fd) {
                let off = self.written.entry((l, p)).or_insert(0);
                m.stream = Some((*off, *off + m.ret as u64));
                *off += m.ret as u64;
            }
            if (m.ret as u64) < n {
                m.note = Some(format!("only {} of {n} bytes accepted", m.ret));
            }
        } else if m.err == libc::EAGAIN {
            m.note = Some(format!(
                "send buffer full for {} ms",
                self.cfg.write_wait.as_millis()
            ));
        }
        Ok(m)
    }

    fn read_once(&mut self, fd: RawFd) -> Made {
        let mut buf = vec![0u8; 65536];
        let mut m = timed(
            CallKind::Read,
            format!("read({fd}, buf, 65536)"),
            "65536",
            fd,
            || unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) as i64 },
        );
        m.note = match m.ret {
            0 => Some("end of file".into()),
            r if r < 0 && m.err == libc::EAGAIN => Some(format!(
                "would block: no data within {} ms",
                self.cfg.read_wait.as_millis()
            )),
            _ => None,
        };
        m
    }

    fn read(&mut self, step: &Step) -> Result<Made, String> {
        let fd = self.fd(&step.fd)?;
        Ok(self.read_once(fd))
    }

    /// Reads until end of file, an error, or a read that waits in vain.
    fn read_all(&mut self, step: &Step) -> StepResult {
        let fd = self.fd(&step.fd)?;
        let mut calls = Vec::new();
        loop {
            let m = self.read_once(fd);
            let done = m.ret <= 0;
            calls.push(self.finish(m));
            if done {
                return Ok(calls);
            }
        }
    }

    fn close(&mut self, step: &Step) -> Result<Call, String> {
        let fd = self.fd(&step.fd)?;
        let (local, peer) = self.refresh_addrs(fd);
        let m = timed(CallKind::Close, format!("close({fd})"), "", fd, || unsafe {
            libc::close(fd) as i64
        });
        self.fds.remove(&step.fd);
        self.addrs.remove(&fd);
        // The descriptor is gone: ask the kernel's table about the connection.
        let state = match local {
            Some(l) => sockstate::lookup_closed(l, peer),
            None => StateObs::Unknown,
        };
        Ok(self.to_call(m, local, peer, state))
    }

    fn setsockopt(&mut self, step: &Step, opt: &SockOpt) -> Result<Made, String> {
        let fd = self.fd(&step.fd)?;
        let (level, name, lname) = match opt {
            SockOpt::Linger { .. } => (libc::SOL_SOCKET, libc::SO_LINGER, "SOL_SOCKET, SO_LINGER"),
            SockOpt::TcpCork(_) => (libc::IPPROTO_TCP, libc::TCP_CORK, "IPPROTO_TCP, TCP_CORK"),
            SockOpt::TcpNodelay(_) => (
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                "IPPROTO_TCP, TCP_NODELAY",
            ),
            SockOpt::RcvBuf(_) => (libc::SOL_SOCKET, libc::SO_RCVBUF, "SOL_SOCKET, SO_RCVBUF"),
        };
        let (text_val, m) = match *opt {
            SockOpt::Linger { on, secs } => {
                let l = libc::linger {
                    l_onoff: i32::from(on),
                    l_linger: secs,
                };
                let v = format!("{{l_onoff={}, l_linger={secs}}}", i32::from(on));
                (
                    v,
                    timed(CallKind::Setsockopt, String::new(), "", fd, || unsafe {
                        libc::setsockopt(
                            fd,
                            level,
                            name,
                            (&l as *const libc::linger).cast(),
                            size_of::<libc::linger>() as u32,
                        ) as i64
                    }),
                )
            }
            SockOpt::TcpCork(b) | SockOpt::TcpNodelay(b) => {
                let v = i32::from(b);
                (
                    v.to_string(),
                    timed(CallKind::Setsockopt, String::new(), "", fd, || {
                        setsockopt_int(fd, level, name, v)
                    }),
                )
            }
            SockOpt::RcvBuf(n) => (
                n.to_string(),
                timed(CallKind::Setsockopt, String::new(), "", fd, || {
                    setsockopt_int(fd, level, name, n)
                }),
            ),
        };
        Ok(Made {
            text: format!("setsockopt({fd}, {lname}, {text_val})"),
            args: opt.describe(),
            ..m
        })
    }

    fn final_states(&mut self) -> Vec<FinalState> {
        let open: HashMap<(SocketAddr, Option<SocketAddr>), RawFd> = self
            .fds
            .values()
            .filter_map(|&fd| match self.addrs.get(&fd) {
                Some((Some(l), p)) => Some(((*l, *p), fd)),
                _ => None,
            })
            .collect();
        self.seen
            .iter()
            .map(|&(local, peer)| {
                let state = match open
                    .get(&(local, peer))
                    .and_then(|&fd| sockstate::tcp_info_state(fd))
                {
                    Some(state) => StateObs::TcpInfo { state },
                    None => sockstate::lookup_closed(local, peer),
                };
                FinalState {
                    side: self.side,
                    local,
                    peer,
                    state,
                }
            })
            .collect()
    }

    fn close_all(&mut self) {
        for (_, fd) in self.fds.drain() {
            // SAFETY: fd is a descriptor this side opened and still owns.
            unsafe { libc::close(fd) };
        }
    }
}

/// Makes one system call and stamps it on CLOCK_REALTIME before and after.
fn timed(kind: CallKind, text: String, args: &str, fd: RawFd, f: impl FnOnce() -> i64) -> Made {
    let start = now_ns();
    let ret = f();
    let err = if ret < 0 { errno::last() } else { 0 };
    let end = now_ns();
    Made {
        kind,
        text,
        args: args.to_string(),
        fd: Some(fd),
        ret: if ret < 0 { -1 } else { ret },
        err,
        note: None,
        start,
        end,
        stream: None,
    }
}

fn setsockopt_int(fd: RawFd, level: i32, name: i32, v: i32) -> i64 {
    // SAFETY: the option value is an int we own for the duration of the call.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const i32).cast(),
            size_of::<i32>() as u32,
        ) as i64
    }
}

fn set_int(fd: RawFd, level: i32, name: i32, v: i32) {
    setsockopt_int(fd, level, name, v);
}

fn set_timeout(fd: RawFd, name: i32, d: Duration) {
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: tv lives for the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as u32,
        )
    };
}

/// A SocketAddr as the sockaddr_storage the socket calls take.
fn to_raw(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; we fill the family's part.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// getsockname (peer=false) or getpeername (peer=true), None when it fails.
pub fn sock_name(fd: RawFd, peer: bool) -> Option<SocketAddr> {
    // SAFETY: the kernel writes at most `len` bytes into ss.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast();
    let rc = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    if rc < 0 {
        return None;
    }
    from_raw(&ss)
}

pub fn from_raw(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The loopback address of the family the user asked for.
pub fn loopback(ipv6: bool, port: u16) -> SocketAddr {
    let ip = if ipv6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in ["127.0.0.1:5555", "[::1]:80", "10.1.2.3:65535"] {
            let addr: SocketAddr = a.parse().unwrap();
            let (ss, _) = to_raw(addr);
            assert_eq!(from_raw(&ss), Some(addr));
        }
    }
}
