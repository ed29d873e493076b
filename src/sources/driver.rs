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

use super::faults::Faults;
use super::sockstate;
use crate::session::{Quiet, WireActivity};
use hc_core::model::{
    Call, CallKind, FinalState, Nanos, Note, Side, StateObs, StepProblem, TableObs, TcpState,
};
use hc_core::scenario::{Action, How, Scenario, SockOpt, Step};
use hc_sys::clock::now_ns;
use hc_sys::errno::Errno;
use hc_sys::sock::{self, Opt, Shut, SysResult};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// The longest the driver waits for one step (see [`DriverConfig::step_max`]).
pub const STEP_MAX_MS: u64 = 5000;
/// The longest the driver waits for the wire to go quiet after a step.
pub const SETTLE_MAX_MS: u64 = 2000;

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
            settle_max: Duration::from_millis(SETTLE_MAX_MS),
            step_max: Duration::from_millis(STEP_MAX_MS),
        }
    }
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
    /// What the kernel's table said of closed connections between steps.
    pub table: Vec<TableObs>,
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
    let mut table = Table::default();

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
            settle_watching(wire, cfg, &mut table).await;
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
            res = wait_step(&mut rx, wire, cfg, step_bound(step, cfg), may_move_on, &mut table) => match res {
                StepWait::Done(result) => {
                    let failed_listen = listen_failed(step, &result);
                    absorb(&mut report, step, result);
                    if let Some(why) = failed_listen {
                        // The scenario's server is not there: what follows
                        // would only show that (or reach someone else's).
                        report.problems.push(problem(step, &format!(
                            "{why}; the run stops here (the steps after line {} were not made)",
                            step.line
                        )));
                        break;
                    }
                }
                StepWait::WorkerGone => report.problems.push(problem(step, "the side's worker stopped")),
                StepWait::StillRunning => pending.push((step.clone(), rx)),
            },
            _ = cancel.changed() => {
                report.interrupted = true;
                pending.push((step.clone(), rx));
                break;
            }
        }
        table.note(&report.calls);
        tokio::select! {
            _ = settle_watching(wire, cfg, &mut table) => {}
            _ = cancel.changed() => { report.interrupted = true; break; }
        }
    }
    // Steps still running get one more bounded wait; what does not end in it is reported.
    for (step, rx) in pending {
        let bound = if report.interrupted {
            Duration::from_millis(500)
        } else {
            step_bound(&step, cfg)
        };
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(result)) => absorb(&mut report, &step, result),
            _ => report.problems.push(problem(
                &step,
                &format!(
                    "did not finish within {} ms",
                    (step_bound(&step, cfg) * 2).as_millis()
                ),
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
    table.note(&report.calls);
    table.poll();
    report.table = std::mem::take(&mut table.obs);
    report.calls.sort_by_key(|c| c.start);
    report.open = OpenDescriptors(workers.into_iter().map(|w| w.jobs).collect());
    report
}

/// Closed connections, read again in the kernel's table (sock_diag) every
/// 5 ms while a step runs and the wire settles, so what becomes of them
/// after close() (an orphan in FIN_WAIT2, TIME_WAIT, gone) is an
/// observation, not a guess.
#[derive(Default)]
struct Table {
    diag: Option<super::sockstate::Diag>,
    /// Every connection one of whose descriptors was closed, with the last
    /// state read for it (None inside: gone; absent: not read yet).
    last: HashMap<(Side, SocketAddr, SocketAddr), Option<Option<TcpState>>>,
    /// What the readings found: the first of each connection (the
    /// evidence that it lives on, or not), then each change.
    obs: Vec<TableObs>,
}

impl Table {
    /// Starts watching the connections these calls closed a descriptor of.
    fn note(&mut self, calls: &[Call]) {
        for c in calls {
            if let (CallKind::Close, Some(l), Some(p)) = (c.kind, c.local, c.peer) {
                self.last.entry((c.side, l, p)).or_insert(None);
            }
        }
    }

    /// Reads the kernel's table for every connection watched.
    fn poll(&mut self) {
        if self.last.is_empty() {
            return;
        }
        let diag = self.diag.get_or_insert_with(super::sockstate::Diag::open);
        let ts = now_ns();
        let mut keys: Vec<_> = self.last.keys().copied().collect();
        keys.sort();
        for key @ (side, local, peer) in keys {
            let now = diag.lookup(local, Some(peer)).state();
            if self.last.get(&key) != Some(&Some(now)) {
                self.last.insert(key, Some(now));
                self.obs.push(TableObs {
                    ts,
                    side,
                    local,
                    peer,
                    state: now,
                });
            }
        }
    }
}

/// Waits until the wire is quiet (`settle`), reading the kernel's table
/// every 5 ms meanwhile, so what a closed connection became (TIME_WAIT,
/// gone) is seen within a few ms of when it happened.
async fn settle_watching(wire: &dyn WireActivity, cfg: &DriverConfig, table: &mut Table) {
    let mut q = Quiet::new(wire, cfg.settle, cfg.settle_max);
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        table.poll();
        if q.done(wire) {
            return;
        }
    }
}

/// A `listen` step whose bind() or listen() failed: what failed, as the
/// timeline shows it (`bind() = EADDRINUSE`).
fn listen_failed(step: &Step, result: &StepResult) -> Option<String> {
    if step.action != Action::Listen {
        return None;
    }
    let calls = result.as_ref().ok()?;
    let c = calls.iter().find(|c| c.kind == CallKind::Listen)?;
    if c.ret != Some(-1) {
        return None;
    }
    let name = if c.text.starts_with("bind(") {
        "bind()"
    } else {
        "listen()"
    };
    Some(format!(
        "{name} failed with {}",
        c.errno.as_deref().unwrap_or("an error")
    ))
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

/// How long the driver waits for `step` before it hands out the next one:
/// the step limit, and for a sleep the sleep on top of it (a `sleep 8000`
/// must not be overtaken by the steps after it).
fn step_bound(step: &Step, cfg: &DriverConfig) -> Duration {
    match step.action {
        Action::Sleep(ms) => cfg.step_max + Duration::from_millis(ms),
        _ => cfg.step_max,
    }
}

/// Waits for a step to end: at most `bound`, or, when `may_move_on`,
/// until the wire has been quiet for the settle time while it runs.
async fn wait_step(
    rx: &mut oneshot::Receiver<StepResult>,
    wire: &dyn WireActivity,
    cfg: &DriverConfig,
    bound: Duration,
    may_move_on: bool,
    table: &mut Table,
) -> StepWait {
    let quiet = if may_move_on {
        cfg.settle
    } else {
        Duration::MAX
    };
    let mut q = Quiet::new(wire, quiet, bound);
    loop {
        match tokio::time::timeout(Duration::from_millis(5), &mut *rx).await {
            Ok(Ok(result)) => return StepWait::Done(result),
            Ok(Err(_)) => return StepWait::WorkerGone,
            Err(_) => table.poll(),
        }
        if q.done(wire) {
            return StepWait::StillRunning;
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
                hc_sys::signals::block_in_this_thread();
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
    /// What every `write` sends from: [`WRITE_CHUNK`] bytes of 'x'.
    chunk: Vec<u8>,
}

/// The buffer a `write N` sends from, whatever N is (see `SideState::write`).
pub const WRITE_CHUNK: usize = 1 << 20;

/// The parts of a Call a step fills in; the rest is common.
struct Made {
    kind: CallKind,
    text: String,
    args: String,
    fd: Option<RawFd>,
    ret: i64,
    err: Option<Errno>,
    note: Option<String>,
    start: Nanos,
    end: Nanos,
    stream: Option<(u64, u64)>,
    /// TCP_INFO just before the call.
    before: Option<StateObs>,
}

fn shut(how: How) -> Shut {
    match how {
        How::Rd => Shut::Rd,
        How::Wr => Shut::Wr,
        How::RdWr => Shut::RdWr,
    }
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
            chunk: vec![b'x'; WRITE_CHUNK],
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
                    || sock::shutdown(fd, shut(*how)),
                )
            }
            Action::Close => return Ok(vec![self.close(step)?]),
            Action::SetSockOpt(opt) => self.setsockopt(step, opt)?,
            Action::Dup => {
                let fd = self.fd(&step.fd)?;
                let m = timed(CallKind::Dup, format!("dup({fd})"), "", fd, || {
                    sock::dup(fd)
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
                    err: None,
                    note: None,
                    start,
                    end: now_ns(),
                    stream: None,
                    before: None,
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
        Call {
            side: self.side,
            kind: m.kind,
            text: m.text,
            args: m.args,
            pid: None,
            fd: m.fd,
            ret: Some(m.ret),
            errno: m.err.map(Errno::name),
            note: m.note,
            start: m.start,
            end: m.end,
            local,
            peer,
            stream: m.stream,
            state_after,
            state_before: m.before,
            line: self.line,
        }
    }

    /// Current addresses of `fd`, falling back to the last ones known.
    fn refresh_addrs(&mut self, fd: RawFd) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let known = self.addrs.get(&fd).copied().unwrap_or((None, None));
        let local = sock::local_addr(fd).filter(|a| a.port() != 0).or(known.0);
        let peer = sock::peer_addr(fd).or(known.1);
        self.addrs.insert(fd, (local, peer));
        if let Some(l) = local {
            if !self.seen.contains(&(l, peer)) {
                self.seen.push((l, peer));
            }
        }
        (local, peer)
    }

    fn new_socket(&self) -> Result<RawFd, String> {
        let fd = sock::socket_for(self.cfg.server)
            .map_err(|e| format!("socket() failed: {}", e.name()))?;
        // Plumbing the scenario does not name (see the module comment).
        let _ = sock::setsockopt(fd, Opt::RecvTimeout(self.cfg.read_wait));
        let _ = sock::setsockopt(fd, Opt::SendTimeout(self.cfg.write_wait));
        Ok(fd)
    }

    fn listen(&mut self, step: &Step) -> Result<Made, String> {
        let fd = self.new_socket()?;
        let _ = sock::setsockopt(fd, Opt::ReuseAddr(true));
        if let Err(err) = sock::bind(fd, self.cfg.server) {
            let now = now_ns();
            let _ = sock::close(fd);
            return Ok(Made {
                kind: CallKind::Listen,
                text: format!("bind({fd}, {})", self.cfg.server),
                args: self.cfg.server.to_string(),
                fd: None,
                ret: -1,
                err: Some(err),
                note: Some("bind() failed, so listen() was not called".into()),
                start: now,
                end: now,
                stream: None,
                before: None,
            });
        }
        self.addrs.insert(fd, (Some(self.cfg.server), None));
        let mut m = timed(
            CallKind::Listen,
            format!("listen({fd}, 8)"),
            "8",
            fd,
            || sock::listen(fd, 8),
        );
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
        let m = timed(
            CallKind::Connect,
            format!("connect({fd}, {server})"),
            &server.to_string(),
            fd,
            || sock::connect(fd, server),
        );
        // A C program keeps the descriptor whatever connect() returned.
        self.name_fd(step, fd);
        Ok(m)
    }

    fn accept(&mut self, step: &Step) -> Result<Made, String> {
        let lfd = self.fd(&step.fd)?;
        let mut m = timed(CallKind::Accept, format!("accept({lfd})"), "", lfd, || {
            sock::accept(lfd)
        });
        // The call is about the new connection, which had no descriptor before.
        m.before = None;
        if m.ret >= 0 {
            let fd = m.ret as RawFd;
            let _ = sock::setsockopt(fd, Opt::RecvTimeout(self.cfg.read_wait));
            let _ = sock::setsockopt(fd, Opt::SendTimeout(self.cfg.write_wait));
            self.name_fd(step, fd);
            // The call is about the new connection: report its addresses and state.
            m.fd = Some(fd);
            m.text = format!("accept({lfd}) = {fd}");
        } else if m.err.is_some_and(Errno::is_again) {
            m.note = Some(format!(
                "no connection within {} ms",
                self.cfg.read_wait.as_millis()
            ));
        }
        Ok(m)
    }

    /// `write N`: N bytes from one fixed buffer ([`WRITE_CHUNK`]), so memory
    /// stays flat whatever N is and the call starts at once (a buffer of N
    /// bytes took long enough to fill that the driver ran the next steps
    /// before the write began). Up to one chunk it is one send(); beyond,
    /// send() is called again until all N bytes are taken, a call takes
    /// fewer than it was given (the send timeout) or fails; the record
    /// spans them all and says how many there were.
    fn write(&mut self, step: &Step, n: u64) -> Result<Made, String> {
        let fd = self.fd(&step.fd)?;
        let buf = &self.chunk;
        let mut sends = 0u64;
        let mut later: Option<Errno> = None;
        let mut m = timed(
            CallKind::Write,
            format!("send({fd}, buf, {n}, MSG_NOSIGNAL)"),
            &n.to_string(),
            fd,
            || {
                let mut total = 0u64;
                loop {
                    let len = (n - total).min(buf.len() as u64) as usize;
                    sends += 1;
                    match sock::send(fd, &buf[..len]) {
                        Ok(k) => {
                            total += k.max(0) as u64;
                            if (k.max(0) as usize) < len || total >= n {
                                break;
                            }
                        }
                        Err(e) if total == 0 => return Err(e),
                        Err(e) => {
                            later = Some(e);
                            break;
                        }
                    }
                }
                Ok(total as i64)
            },
        );
        let mut notes = Vec::new();
        if sends > 1 {
            notes.push(format!(
                "made as {sends} send() calls of at most {} KiB from one buffer",
                WRITE_CHUNK >> 10
            ));
        }
        if let Some(e) = later {
            notes.push(format!(
                "the send() after {} bytes failed with {}",
                m.ret,
                e.name()
            ));
        }
        if m.ret > 0 {
            if let (Some(l), Some(p)) = self.refresh_addrs(fd) {
                let off = self.written.entry((l, p)).or_insert(0);
                m.stream = Some((*off, *off + m.ret as u64));
                *off += m.ret as u64;
            }
            if (m.ret as u64) < n {
                notes.insert(0, format!("only {} of {n} bytes accepted", m.ret));
            }
        } else if m.err.is_some_and(Errno::is_again) {
            notes.insert(
                0,
                format!(
                    "send buffer full for {} ms",
                    self.cfg.write_wait.as_millis()
                ),
            );
        }
        if !notes.is_empty() {
            m.note = Some(notes.join("; "));
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
            || sock::read(fd, &mut buf),
        );
        m.note = match (m.ret, m.err) {
            // What a 0 means (end of file, or its own SHUT_RD) is the story's to say.
            (0, _) => None,
            (r, Some(e)) if r < 0 && e.is_again() => Some(format!(
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
        let m = timed(CallKind::Close, format!("close({fd})"), "", fd, || {
            sock::close(fd)
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
        let (raw, text_val) = match *opt {
            SockOpt::Linger { on, secs } => (
                Opt::Linger { on, secs },
                format!("{{l_onoff={}, l_linger={secs}}}", i32::from(on)),
            ),
            SockOpt::TcpCork(b) => (Opt::Cork(b), i32::from(b).to_string()),
            SockOpt::TcpNodelay(b) => (Opt::NoDelay(b), i32::from(b).to_string()),
            SockOpt::RcvBuf(n) => (Opt::RcvBuf(n), n.to_string()),
        };
        let m = timed(CallKind::Setsockopt, String::new(), "", fd, || {
            sock::setsockopt(fd, raw)
        });
        Ok(Made {
            text: format!("setsockopt({fd}, {}, {text_val})", raw.c_name()),
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
            let _ = sock::close(fd);
        }
    }
}

/// Makes one system call and stamps it on CLOCK_REALTIME before and after.
fn timed(
    kind: CallKind,
    text: String,
    args: &str,
    fd: RawFd,
    f: impl FnOnce() -> SysResult,
) -> Made {
    // The span starts before the state is read, so a change the kernel
    // reports between the reading and the call falls inside the span: the
    // state at entry is then never older than the span's start.
    let start = now_ns();
    let before = sockstate::tcp_info_state(fd).map(|state| StateObs::TcpInfo { state });
    let r = f();
    let end = now_ns();
    Made {
        kind,
        text,
        args: args.to_string(),
        fd: Some(fd),
        ret: r.unwrap_or(-1),
        err: r.err(),
        note: None,
        start,
        end,
        stream: None,
        before,
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
