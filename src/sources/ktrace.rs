//! The kernel's own word: TCP tracepoints read from a private tracefs instance.
//!
//! `tcp:tcp_send_reset` carries the kernel's reason for each RST it sends, and
//! `sock:inet_sock_set_state` every state change as it happens — including
//! those between two calls (FIN_WAIT2 → TIME_WAIT when the peer's FIN
//! arrives), which polling TCP_INFO after each call cannot see.
//!
//! A private instance (`instances/hc-trace-PID`) keeps our settings away
//! from anyone else using ftrace; it is removed when the session is dropped,
//! also after Ctrl-C (the run ends normally then) and a second Ctrl-C (the
//! signal watcher removes it). A run killed outright cannot remove its own:
//! every run removes at its start the instances of hc-trace processes that
//! no longer exist ([`remove_stale`]). Tracepoints are global to
//! the machine, so events are kept only if their addresses and ports match a
//! connection of the run.
//!
//! Clock: the instance uses `mono` (CLOCK_MONOTONIC); at start the offset to
//! CLOCK_REALTIME (the clock of packets and calls) is measured by reading both
//! clocks back to back, and every event time is shifted by it. ftrace's text
//! output has microsecond resolution, so kernel event times are ±1 µs.

use hc_core::decode::ftrace::parse_trace;
use hc_core::model::kernel::KernelEvent;
use hc_core::model::Nanos;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why kernel events are not available, said once in the footer.
#[derive(Debug, thiserror::Error)]
pub enum KtraceError {
    #[error("tracefs is not mounted and could not be mounted ({0}); needs root")]
    NoTracefs(io::Error),
    #[error("cannot create a tracing instance in {path} ({source}); reading kernel tracepoints needs root")]
    Instance { path: PathBuf, source: io::Error },
    #[error("this kernel has no tracepoint {0}")]
    MissingEvent(String),
    #[error("cannot read the trace: {0}")]
    Read(io::Error),
}

const EVENTS: [&str; 2] = ["sock/inet_sock_set_state", "tcp/tcp_send_reset"];

/// A running tracing instance. Dropping it disables the events and removes the instance.
pub struct KernelTrace {
    dir: PathBuf,
    /// CLOCK_REALTIME minus the instance's clock (mono), in ns.
    offset: Nanos,
    /// Keep only events on this port; None: every TCP event (exec, whose
    /// programs use ports nobody knows in advance).
    port: Option<u16>,
    /// A second Ctrl-C removes the instance before the process ends.
    _on_second_signal: hc_sys::signals::CleanupGuard,
}

fn tracefs_root() -> Result<PathBuf, KtraceError> {
    let root = Path::new("/sys/kernel/tracing");
    if root.join("instances").is_dir() {
        return Ok(root.to_path_buf());
    }
    let legacy = Path::new("/sys/kernel/debug/tracing");
    if legacy.join("instances").is_dir() {
        return Ok(legacy.to_path_buf());
    }
    // Not mounted: mount it where the kernel expects it.
    hc_sys::system::mount_tracefs().map_err(KtraceError::NoTracefs)?;
    Ok(root.to_path_buf())
}

impl KernelTrace {
    /// Starts a private instance with the TCP events enabled, filtered to
    /// `port` where the event allows (None: every port, for a traced
    /// program whose ports are known only after it ran). `buffer_kb` is per
    /// CPU; the trace is read only at the end.
    pub fn start_with(port: Option<u16>, buffer_kb: u32) -> Result<KernelTrace, KtraceError> {
        let root = tracefs_root()?;
        let dir = root
            .join("instances")
            .join(format!("hc-trace-{}", std::process::id()));
        let inst = |e: io::Error| KtraceError::Instance {
            path: dir.clone(),
            source: e,
        };
        if dir.exists() {
            let _ = fs::remove_dir(&dir);
        }
        fs::create_dir(&dir).map_err(inst)?;
        let gone = dir.clone();
        let mut kt = KernelTrace {
            dir: dir.clone(),
            offset: 0,
            port,
            _on_second_signal: hc_sys::signals::on_second_signal(move || {
                remove_instance(&gone).then(|| format!("the tracing instance {}", gone.display()))
            }),
        };
        // From here on, Drop cleans up whatever happens.
        fs::write(dir.join("trace_clock"), "mono").map_err(inst)?;
        let _ = fs::write(dir.join("buffer_size_kb"), buffer_kb.to_string());
        for e in EVENTS {
            let ev = dir.join("events").join(e);
            if !ev.is_dir() {
                return Err(KtraceError::MissingEvent(e.replace('/', ":")));
            }
            if let (true, Some(port)) = (e.ends_with("inet_sock_set_state"), port) {
                let _ = fs::write(
                    ev.join("filter"),
                    format!("sport == {port} || dport == {port}"),
                );
            }
            fs::write(ev.join("enable"), "1").map_err(inst)?;
        }
        kt.offset = hc_sys::clock::realtime_minus_monotonic();
        Ok(kt)
    }

    /// Every event recorded so far that involves the run's port, on
    /// CLOCK_REALTIME; `ours` decides which threads count as the run's own
    /// (`by_us`): those whose calls an event may be matched to by time.
    pub fn events_by(&self, ours: impl Fn(i32) -> bool) -> Result<Vec<KernelEvent>, KtraceError> {
        let text = fs::read_to_string(self.dir.join("trace")).map_err(KtraceError::Read)?;
        let on_port = |a: &SocketAddr, b: &SocketAddr| {
            self.port.is_none_or(|p| a.port() == p || b.port() == p)
        };
        Ok(parse_trace(&text, self.offset, ours)
            .into_iter()
            .filter(|e| match e {
                KernelEvent::State { local, remote, .. } => on_port(local, remote),
                KernelEvent::SendReset { src, dst, .. } => on_port(src, dst),
            })
            .collect())
    }
}

/// Removes the tracing instances of hc-trace processes that no longer
/// exist (a run killed with SIGKILL cannot remove its own, and an instance
/// keeps tracing into its buffer until removed), saying so on standard
/// error. Does nothing where tracefs is not mounted or not ours to change.
pub fn remove_stale() -> Vec<String> {
    let mut removed = Vec::new();
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let Ok(entries) = fs::read_dir(Path::new(root).join("instances")) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("hc-trace-"))
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == std::process::id() || hc_sys::system::process_exists(pid) {
                continue;
            }
            if remove_instance(&e.path()) {
                eprintln!(
                    "note: removed the kernel tracing instance {}, left by hc-trace process {pid}, which no longer exists (killed?)",
                    e.path().display()
                );
                removed.push(e.path().display().to_string());
            }
        }
        // The same instances appear under both roots when both are mounted.
        if !removed.is_empty() {
            break;
        }
    }
    removed
}

/// Switches an instance's events off and removes it; true if it is gone.
fn remove_instance(dir: &Path) -> bool {
    for e in EVENTS {
        let _ = fs::write(dir.join("events").join(e).join("enable"), "0");
    }
    fs::remove_dir(dir).is_ok() || !dir.exists()
}

impl Drop for KernelTrace {
    fn drop(&mut self) {
        remove_instance(&self.dir);
    }
}

/// A kernel trace read while it runs (`exec`, live): a thread reads the
/// instance's `trace_pipe` and hands each event on as it comes, so nothing
/// piles up in memory or in the ring. Stopping it reads what is left.
pub struct KernelStream {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Dropped last: disables the events and removes the instance.
    _trace: KernelTrace,
}

impl KernelTrace {
    /// Reads the trace as it is written, sending each event (on
    /// CLOCK_REALTIME; `ours` says which threads are the program's) to `send`.
    pub fn stream(
        self,
        ours: impl Fn(i32) -> bool + Send + 'static,
        send: impl Fn(KernelEvent) + Send + 'static,
    ) -> Result<KernelStream, KtraceError> {
        use std::io::Read;
        let mut pipe = hc_sys::system::open_nonblocking(&self.dir.join("trace_pipe"))
            .map_err(KtraceError::Read)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let (offset, port) = (self.offset, self.port);
        let thread = std::thread::Builder::new()
            .name("hc-trace-ktrace".into())
            .spawn(move || {
                hc_sys::signals::block_in_this_thread();
                let on_port = |a: &SocketAddr, b: &SocketAddr| {
                    port.is_none_or(|p| a.port() == p || b.port() == p)
                };
                let mut buf = vec![0u8; 1 << 16];
                let mut partial: Vec<u8> = Vec::new();
                let mut last_round = false;
                loop {
                    let stopping = flag.load(std::sync::atomic::Ordering::Acquire);
                    match pipe.read(&mut buf) {
                        Ok(0) => {}
                        Ok(n) => {
                            partial.extend_from_slice(&buf[..n]);
                            let Some(end) = partial.iter().rposition(|&b| b == b'\n') else {
                                continue;
                            };
                            let lines: Vec<u8> = partial.drain(..=end).collect();
                            let text = String::from_utf8_lossy(&lines);
                            for e in parse_trace(&text, offset, &ours) {
                                let keep = match &e {
                                    KernelEvent::State { local, remote, .. } => {
                                        on_port(local, remote)
                                    }
                                    KernelEvent::SendReset { src, dst, .. } => on_port(src, dst),
                                };
                                if keep {
                                    send(e);
                                }
                            }
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return,
                    }
                    // Nothing to read: done once a stop was asked and one
                    // more look found nothing.
                    if last_round {
                        return;
                    }
                    if stopping {
                        last_round = true;
                        continue;
                    }
                    hc_sys::system::wait_readable(std::os::fd::AsRawFd::as_raw_fd(&pipe), 20);
                }
            })
            .map_err(KtraceError::Read)?;
        Ok(KernelStream {
            stop,
            thread: Some(thread),
            _trace: self,
        })
    }
}

impl KernelStream {
    /// Reads what is left and stops.
    pub fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KernelStream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- the eBPF source, with tracefs as its fallback ----

use hc_core::model::TcpState;
use hc_core::report::KernelVia;
use hc_sys::bpf::{BpfTrace, Filter, Kind, SockEvent};
use std::sync::{Arc, Mutex};

/// `HC_TRACE_KERNEL_SOURCE=tracefs|ebpf` forces one source (tests compare
/// them; unset: eBPF, else tracefs).
const FORCE_VAR: &str = "HC_TRACE_KERNEL_SOURCE";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    Auto,
    Ebpf,
    Tracefs,
}

fn wanted() -> Wanted {
    match std::env::var(FORCE_VAR).as_deref() {
        Ok("tracefs") => Wanted::Tracefs,
        Ok("ebpf") => Wanted::Ebpf,
        _ => Wanted::Auto,
    }
}

/// What makes a kernel event the traced program's own (`by_us`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    /// The thread it ran in: all tracefs tells (ftrace's `comm-tid`), and
    /// in softirq context whichever thread happened to be running.
    Thread(i32),
    /// Its socket, by kernel address (eBPF): one the program's calls used.
    Socket(u64),
}

/// One eBPF event as the correlator's kernel event: on CLOCK_REALTIME,
/// `by_us` when its socket is one the program's calls used, or, for a
/// socket no call has shown yet (its first events can come before the
/// call that made it), when it ran in one of the program's threads. Events
/// the model has no place for (received resets, retransmissions,
/// destroyed sockets) are None.
pub fn kernel_event(
    e: &SockEvent,
    offset: Nanos,
    ours: &dyn Fn(Ran) -> bool,
) -> Option<KernelEvent> {
    let ts = i64::try_from(e.mono_ns).ok()? + offset;
    let state = |n: i32| {
        u8::try_from(n)
            .ok()
            .filter(|n| (1..=13).contains(n))
            .map(TcpState)
    };
    match e.kind {
        Kind::State => Some(KernelEvent::State {
            ts,
            local: e.local,
            remote: e.remote,
            old: state(e.old)?,
            new: state(e.new)?,
            by_us: (e.sk != 0 && ours(Ran::Socket(e.sk)))
                || ours(Ran::Thread(i32::try_from(e.tid).ok()?)),
        }),
        Kind::SendReset => Some(KernelEvent::SendReset {
            ts,
            src: e.local,
            dst: e.remote,
            state: state(e.old).map_or_else(|| "UNKNOWN".to_string(), |s| s.name().into_owned()),
            reason: e.reason.clone().unwrap_or_default(),
        }),
        Kind::ReceiveReset | Kind::Retransmit | Kind::Destroy => None,
    }
}

/// The kernel events of a run, read through eBPF where it loads, else
/// from tracefs.
pub enum Kernel {
    Bpf {
        trace: BpfTrace,
        got: Arc<Mutex<Vec<SockEvent>>>,
        offset: Nanos,
        port: Option<u16>,
    },
    Tracefs {
        trace: KernelTrace,
        /// Why eBPF was not used (None: tracefs was asked for).
        ebpf: Option<String>,
    },
}

/// Why neither source runs: both reasons.
fn both(ebpf: Option<String>, tracefs: KtraceError) -> KtraceError {
    match ebpf {
        Some(why) => {
            KtraceError::Read(io::Error::other(format!("eBPF: {why}; tracefs: {tracefs}")))
        }
        None => tracefs,
    }
}

fn bpf_filter() -> Result<Filter, String> {
    let ns = hc_sys::bpf::current_netns()
        .map_err(|e| format!("cannot read this network namespace: {e}"))?;
    Ok(Filter {
        netns: vec![ns],
        calls: Vec::new(),
    })
}

impl Kernel {
    /// Starts the kernel trace of this network namespace's TCP events.
    pub fn start(port: Option<u16>, buffer_kb: u32) -> Result<Kernel, KtraceError> {
        let w = wanted();
        let mut ebpf = None;
        if w != Wanted::Tracefs {
            let got = Arc::new(Mutex::new(Vec::new()));
            let sink = got.clone();
            let started = bpf_filter().and_then(|f| {
                BpfTrace::start(f, move |e| {
                    if let Ok(mut g) = sink.lock() {
                        g.push(e);
                    }
                })
                .map_err(|e| e.to_string())
            });
            match started {
                Ok(trace) => {
                    return Ok(Kernel::Bpf {
                        trace,
                        got,
                        offset: hc_sys::clock::realtime_minus_monotonic(),
                        port,
                    })
                }
                Err(why) if w == Wanted::Ebpf => {
                    return Err(KtraceError::Read(io::Error::other(format!("eBPF: {why}"))))
                }
                Err(why) => ebpf = Some(why),
            }
        }
        match KernelTrace::start_with(port, buffer_kb) {
            Ok(trace) => Ok(Kernel::Tracefs { trace, ebpf }),
            Err(e) => Err(both(ebpf, e)),
        }
    }

    /// Every event of the run, and how they were read. Stops an eBPF trace.
    pub fn events_by(
        self,
        ours: impl Fn(Ran) -> bool,
    ) -> Result<(Vec<KernelEvent>, KernelVia), KtraceError> {
        match self {
            Kernel::Tracefs { trace, ebpf } => Ok((
                trace.events_by(|t| ours(Ran::Thread(t)))?,
                KernelVia::Tracefs { ebpf },
            )),
            Kernel::Bpf {
                trace,
                got,
                offset,
                port,
            } => {
                let stats = trace.stop();
                let got = std::mem::take(&mut *got.lock().map_err(|_| {
                    KtraceError::Read(io::Error::other("the eBPF reader panicked"))
                })?);
                let on_port = |a: &SocketAddr, b: &SocketAddr| {
                    port.is_none_or(|p| a.port() == p || b.port() == p)
                };
                let events = got
                    .iter()
                    .filter_map(|e| kernel_event(e, offset, &ours))
                    .filter(|e| match e {
                        KernelEvent::State { local, remote, .. } => on_port(local, remote),
                        KernelEvent::SendReset { src, dst, .. } => on_port(src, dst),
                    })
                    .collect();
                Ok((events, KernelVia::Ebpf { drops: stats.drops }))
            }
        }
    }
}

/// A kernel trace read while it runs, through eBPF or tracefs.
pub enum KernelLive {
    Bpf(BpfTrace),
    Tracefs(KernelStream),
}

impl KernelLive {
    /// Starts the trace, sending each event (on CLOCK_REALTIME; `ours` says
    /// which threads and sockets are the program's) to `send` as it comes.
    pub fn start(
        port: Option<u16>,
        buffer_kb: u32,
        ours: impl Fn(Ran) -> bool + Send + Sync + 'static,
        send: impl Fn(KernelEvent) + Send + Sync + 'static,
    ) -> Result<(KernelLive, KernelVia), KtraceError> {
        let w = wanted();
        let ours = Arc::new(ours);
        let send = Arc::new(send);
        let mut ebpf = None;
        if w != Wanted::Tracefs {
            let offset = hc_sys::clock::realtime_minus_monotonic();
            let (o, s) = (ours.clone(), send.clone());
            let on_port = move |a: &SocketAddr, b: &SocketAddr| {
                port.is_none_or(|p| a.port() == p || b.port() == p)
            };
            let started = bpf_filter().and_then(|f| {
                BpfTrace::start(f, move |e| {
                    if !on_port(&e.local, &e.remote) {
                        return;
                    }
                    if let Some(k) = kernel_event(&e, offset, &*o) {
                        s(k);
                    }
                })
                .map_err(|e| e.to_string())
            });
            match started {
                Ok(t) => return Ok((KernelLive::Bpf(t), KernelVia::Ebpf { drops: 0 })),
                Err(why) if w == Wanted::Ebpf => {
                    return Err(KtraceError::Read(io::Error::other(format!("eBPF: {why}"))))
                }
                Err(why) => ebpf = Some(why),
            }
        }
        let stream = KernelTrace::start_with(port, buffer_kb)
            .and_then(|kt| kt.stream(move |t| ours(Ran::Thread(t)), move |e| send(e)))
            .map_err(|e| both(ebpf.clone(), e))?;
        Ok((KernelLive::Tracefs(stream), KernelVia::Tracefs { ebpf }))
    }

    /// Reads what is left and stops; the eBPF ring's losses (0 for tracefs).
    pub fn stop(self) -> u64 {
        match self {
            KernelLive::Bpf(t) => t.stop().drops,
            KernelLive::Tracefs(s) => {
                s.stop();
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_change(sk: u64, tid: u32) -> SockEvent {
        SockEvent {
            kind: Kind::State,
            mono_ns: 1_000,
            sk,
            tid,
            tgid: tid,
            netns: 1,
            local: "127.0.0.1:5555".parse().expect("addr"),
            remote: "127.0.0.1:40000".parse().expect("addr"),
            old: 1,
            new: 8,
            reason: None,
        }
    }

    fn by_us(e: &SockEvent, ours: &dyn Fn(Ran) -> bool) -> bool {
        match kernel_event(e, 0, ours) {
            Some(KernelEvent::State { by_us, .. }) => by_us,
            other => panic!("a state change: {other:?}"),
        }
    }

    /// The program's socket 0xabc, its thread 7: an event is the
    /// program's by its socket, whatever thread it ran in.
    #[test]
    fn an_event_is_the_programs_by_its_socket_not_the_running_thread() {
        let ours = |r: Ran| matches!(r, Ran::Socket(0xabc) | Ran::Thread(7));
        // Softirq work on the program's socket while another task ran.
        assert!(by_us(&state_change(0xabc, 99), &ours));
        // Another socket, in another task: not the program's.
        assert!(!by_us(&state_change(0xdef, 99), &ours));
        // A socket no call has shown yet, in the program's own thread (its
        // first state change comes before the call that made it returns).
        assert!(by_us(&state_change(0xdef, 7), &ours));
        // Negative control: a rule that asked only the thread would miss
        // the first case.
        let threads_only = |r: Ran| matches!(r, Ran::Thread(7));
        assert!(!by_us(&state_change(0xabc, 99), &threads_only));
    }
}
