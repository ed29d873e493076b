//! A traced program as a session source: the tracer stops it at its socket
//! calls (ptrace + seccomp) while the capture runs.
//!
//! - [`tracer`]: the ptrace loop and what each stop means.
//! - [`fdmap`]: descriptor -> socket -> connection across dup, fork, exec.
//!
//! The syscall numbers, the seccomp filter and the ptrace primitives are in
//! `hc_sys::ptrace`; cutting the trace into one story per connection is in
//! `hc_core::exec`.

pub mod ebpf;
pub mod fdmap;
pub mod tracer;

use crate::error::AppError;
use crate::session::{Source, WireActivity};
use crate::sources::sockstate::Diag;
use hc_core::exec::live::Obs;
use hc_core::model::exec::Sock;
use hc_core::model::StateObs;
use std::collections::HashSet;
use std::ffi::OsString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use tracer::{resolve, TraceOutcome};

/// Large enough for the bursts of a program making thousands of short
/// connections while the collector thread sleeps between blocks. Blocks
/// (not immediate mode) pack packets by size, so this holds tens of
/// thousands of small segments; the kernel zeroes the whole ring when the
/// capture starts, so the whole ring is resident memory from the start, and
/// a larger one costs time on every run. On lo each packet is stored once
/// (the kernel skips the outgoing copy, see `capture.rs`): 16 MiB holds as
/// many packets as 32 MiB did with both copies (scripts/bench-exec:
/// 10,000 connections with 0 drops in 8 MiB with both copies).
pub const CAPTURE_BUFFER: i32 = 16 << 20;

/// The niceness of the threads that only turn observations into reports
/// (the assembler) or pass them on (the packet forwarder): they work from
/// queues that wait for them, so when the CPUs are all busy the traced
/// program goes first. Not 19: a program that keeps every CPU busy for
/// long must still leave them about a tenth of one, or their queues
/// would grow for as long as it runs. The threads that empty the kernel's
/// rings (capture, eBPF, tracefs) keep the normal priority: a ring that
/// fills loses what it was given.
pub const BACKGROUND_NICE: i32 = 10;
pub const SNAPLEN: i32 = 65_600;
/// Tracefs ring per CPU for exec: ~100,000 state changes of 10,000
/// connections fit without overwriting the first.
pub const KTRACE_BUFFER_KB: u32 = 16 << 10;

/// Where a live run's observations go: a channel to the assembler, and a
/// count of what it has not taken yet, so the tracer can wait for it
/// ([`Feed::wait_below`]) while the capture and the kernel trace never do.
#[derive(Clone, Debug)]
pub struct Feed {
    tx: std::sync::mpsc::Sender<Obs>,
    queued: Arc<AtomicUsize>,
}

impl Feed {
    pub fn new(tx: std::sync::mpsc::Sender<Obs>, queued: Arc<AtomicUsize>) -> Feed {
        Feed { tx, queued }
    }

    pub fn send(&self, o: Obs) {
        // Counted before it can be taken, so the count never goes below zero.
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(o).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Waits (the caller's program stays stopped) until the assembler has
    /// fewer than `limit` observations queued.
    pub fn wait_below(&self, limit: usize) {
        while self.queued.load(Ordering::Relaxed) > limit {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Which tracer runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// eBPF where it loads (root or CAP_BPF+CAP_PERFMON on the host), else ptrace.
    Auto,
    /// BPF programs on the syscall tracepoints: no stop; fails where eBPF cannot load.
    Ebpf,
    /// ptrace + seccomp: stops at each socket call; works rootless.
    Ptrace,
}

/// The backend that ran, and why eBPF did not when auto fell back.
pub type Used = (Backend, Option<String>);

pub struct ExecSource {
    pub backend: Backend,
    /// Which backend ran, and why eBPF did not when auto fell back.
    pub used: Arc<Mutex<Option<Used>>>,
    /// `attach PID`: trace this running process (eBPF only).
    pub attach: Option<i32>,
    pub argv: Vec<OsString>,
    pub timeout: Option<Duration>,
    /// Where observations go as they are made; taken by the run.
    pub sink: Option<Feed>,
    /// The program's thread ids, shared with a live kernel trace's reader.
    pub tids: Arc<Mutex<HashSet<i32>>>,
    /// The sockets the program's calls used, by kernel address (eBPF only),
    /// shared with a live kernel trace's reader.
    pub socks: Arc<Mutex<HashSet<u64>>>,
}

impl Source for ExecSource {
    type Output = TraceOutcome;

    fn run(&mut self, _wire: &dyn WireActivity) -> Result<TraceOutcome, AppError> {
        let sink = self
            .sink
            .take()
            .ok_or_else(|| AppError::env("the exec source runs once"))?;
        let cfg = tracer::TraceConfig {
            argv: self.argv.clone(),
            timeout: self.timeout,
            sink,
            tids: self.tids.clone(),
            socks: self.socks.clone(),
        };
        let set = |b: Backend, why: Option<String>| {
            *self
                .used
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((b, why));
        };
        if let Some(pid) = self.attach {
            return match ebpf::attach(&cfg, pid) {
                Ok(o) => {
                    set(Backend::Ebpf, None);
                    Ok(o)
                }
                Err(ebpf::EbpfError::Trace(e)) => Err(AppError::trace(e)),
                Err(ebpf::EbpfError::Unavailable(why)) => Err(AppError::env(format!(
                    "attach: the eBPF programs cannot load: {why}\nhint: attach needs root (or CAP_BPF and CAP_PERFMON) in the host's namespaces"
                ))),
            };
        }
        if self.backend == Backend::Ptrace {
            set(Backend::Ptrace, None);
            return tracer::trace(&cfg).map_err(AppError::trace);
        }
        match ebpf::trace(&cfg) {
            Ok(o) => {
                set(Backend::Ebpf, None);
                Ok(o)
            }
            Err(ebpf::EbpfError::Trace(e)) => Err(AppError::trace(e)),
            Err(ebpf::EbpfError::Unavailable(why)) if self.backend == Backend::Ebpf => {
                Err(AppError::env(format!(
                    "--backend ebpf: the eBPF programs cannot load: {why}\nhint: eBPF needs root (or CAP_BPF and CAP_PERFMON) in the host's namespaces; --backend ptrace works without"
                )))
            }
            Err(ebpf::EbpfError::Unavailable(why)) => {
                eprintln!("hc-trace: eBPF cannot load ({why}); tracing with ptrace instead");
                set(Backend::Ptrace, Some(why));
                tracer::trace(&cfg).map_err(AppError::trace)
            }
        }
    }

    /// Only the traced program's threads ran its calls.
    fn ours(&self, out: &TraceOutcome, tid: i32) -> bool {
        out.tids.contains(&tid)
    }
}

/// The final state of every socket that had a connection, by socket id,
/// looked up in the kernel's table once the program has ended and the wire
/// has settled.
pub fn final_states(socks: &[Sock]) -> Vec<Option<StateObs>> {
    let diag = Diag::open();
    socks
        .iter()
        .map(|s| {
            s.conn()?;
            Some(diag.lookup(s.local?, s.peer))
        })
        .collect()
}
