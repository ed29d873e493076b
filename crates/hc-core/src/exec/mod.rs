//! A traced program's run: its calls and the capture cut into one story
//! per connection ([`sections`]), ready to render.

pub mod live;
pub mod sections;

use crate::model::exec::{ExitStatus, Sock, Stopped, Traced, Untraced};
use crate::model::{LinkType, RawPacket, StateObs};
use crate::report::{PcapCounters, Report};
use crate::session::KernelRecord;
use std::path::PathBuf;
use std::time::Duration;

/// After --timeout's SIGTERM, how long a program has before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// The tracer that ran a program.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Backend {
    /// `ebpf` or `ptrace`.
    pub name: String,
    /// auto fell back to ptrace: why eBPF could not load.
    pub ebpf_unavailable: Option<String>,
}

/// One traced run, ready to render.
#[derive(Debug)]
pub struct ExecRun {
    pub command: Vec<String>,
    pub pid: u32,
    pub status: ExitStatus,
    pub timed_out: bool,
    pub timeout: Option<Duration>,
    /// Why hc-trace stopped the program, when it did (--timeout, a signal).
    pub stopped: Option<Stopped>,
    /// One report per connection, in the order they began.
    pub sections: Vec<Report>,
    /// Socket calls that belong to no connection (a listener's own calls
    /// when it served none, a socket that never connected).
    pub unattached: Option<Report>,
    pub stops: u64,
    /// Which tracer ran the program (`ebpf`, `ptrace`), and why eBPF did
    /// not when it was tried; None in recordings made before there was a choice.
    pub backend: Option<Backend>,
    pub packets: usize,
    pub kept: usize,
    pub counters: PcapCounters,
    pub iface: String,
    pub linktype: LinkType,
    pub snaplen: u32,
    pub file: Option<PathBuf>,
    pub file_error: Option<String>,
}

/// Everything one traced run observed, before any of it was interpreted
/// (see [`crate::session`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ExecRecording {
    pub version: u32,
    pub command: Vec<String>,
    pub pid: u32,
    pub status: ExitStatus,
    pub timed_out: bool,
    pub timeout: Option<Duration>,
    /// Why hc-trace stopped the program (`timed_out` is the --timeout case).
    #[serde(default)]
    pub stopped: Option<Stopped>,
    pub stops: u64,
    #[serde(default)]
    pub backend: Option<Backend>,
    pub namespace: String,
    pub iface: String,
    /// Every captured packet belongs to the program (a private namespace).
    pub keep_all: bool,
    pub counters: PcapCounters,
    pub snaplen: u32,
    pub linktype: LinkType,
    pub packets: Vec<RawPacket>,
    pub calls: Vec<Traced>,
    pub socks: Vec<Sock>,
    /// Each socket's state in the kernel's table when the program had ended.
    pub states: Vec<Option<StateObs>>,
    pub kernel: KernelRecord,
    /// What the program used that no traced call shows (io_uring).
    #[serde(default)]
    pub untraced: Vec<Untraced>,
}

/// The run of a recording: one report per connection, and the packets kept.
pub fn assemble(rec: ExecRecording) -> (ExecRun, Vec<RawPacket>) {
    let (mut head, prepared) = prepare(rec);
    head.sections = prepared.sections.collect();
    head.unattached = prepared.unattached;
    head.kept = prepared.packets.len();
    (head, prepared.packets)
}

/// The run of a recording with its sections still to be built, one at a
/// time ([`sections::Sections`]): what `hc-trace exec` renders as it goes.
/// The returned run holds no sections yet.
pub fn prepare(rec: ExecRecording) -> (ExecRun, sections::Prepared) {
    let stopped = rec
        .stopped
        .clone()
        .or_else(|| rec.timed_out.then_some(Stopped::Timeout));
    let ctx = sections::Context {
        command: rec.command.join(" "),
        namespace: rec.namespace.clone(),
        iface: rec.iface.clone(),
        counters: Some(rec.counters),
        snaplen: rec.snaplen,
        interrupted: stopped.as_ref().map(|s| stop_words(s, rec.timeout)),
        keep_all: rec.keep_all,
    };
    let total = rec.packets.len();
    let kernel = rec.kernel;
    let obs = sections::Observed {
        calls: rec.calls,
        socks: &rec.socks,
        states: &rec.states,
        linktype: rec.linktype,
        packets: rec.packets,
        untraced: &rec.untraced,
    };
    let prepared = sections::prepare(obs, move || kernel, &ctx);
    let run = ExecRun {
        command: rec.command,
        pid: rec.pid,
        status: rec.status,
        timed_out: rec.timed_out,
        timeout: rec.timeout,
        stopped,
        sections: Vec::new(),
        unattached: None,
        stops: rec.stops,
        backend: rec.backend,
        packets: total,
        kept: prepared.packets.len(),
        counters: rec.counters,
        iface: rec.iface,
        linktype: rec.linktype,
        snaplen: rec.snaplen,
        file: None,
        file_error: None,
    };
    (run, prepared)
}

/// Why the run ended early, as the timeline's "interrupted by" says it.
pub fn stop_words(s: &Stopped, timeout: Option<Duration>) -> String {
    match s {
        Stopped::Timeout => format!(
            "--timeout {} (hc-trace sent the program SIGTERM)",
            crate::time::secs(timeout)
        ),
        Stopped::Signal(sig) => {
            format!("{sig} sent to hc-trace, which passed it on to the program")
        }
        Stopped::SecondInterrupt => {
            "a second Ctrl-C (hc-trace sent the program SIGKILL)".to_string()
        }
        Stopped::Detached(why) => format!("the end of the trace ({why}); the process goes on"),
    }
}

impl ExecRun {
    /// What hc-trace exits with: the program's own status.
    pub fn exit_code(&self) -> u8 {
        self.status.shell_code().clamp(0, 255) as u8
    }
}
