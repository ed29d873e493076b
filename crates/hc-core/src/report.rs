//! The finished story of one run, as every renderer and the pcapng writer see it.
//!
//! Any source of calls and segments (a built-in scenario, a scenario file, a
//! capture file, a traced program) fills in a Report; the renderers never ask
//! where it came from.

use crate::correlate::{SegEvent, Timeline};
use crate::model::Side;
use crate::model::{FinalState, StepProblem};
use std::net::SocketAddr;
use std::path::PathBuf;

/// libpcap's own counters, shown as they are, beside our own packet count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PcapCounters {
    /// libpcap's `received`: on `lo` it counts both copies of each packet
    /// unless `outgoing_skipped`, so it is shown as libpcap's figure, never
    /// as "packets captured".
    pub received: u32,
    pub dropped: u32,
    pub if_dropped: u32,
    /// The kernel was told not to hand the capture the outgoing copy of a
    /// packet (`PACKET_IGNORE_OUTGOING`, on `lo` only, where the incoming
    /// copy is the same packet): it accepted. False in older recordings.
    #[serde(default)]
    pub outgoing_skipped: bool,
}

/// What was captured and where it went.
#[derive(Clone, Debug, Default)]
pub struct CaptureSummary {
    pub iface: String,
    pub filter: String,
    /// Bytes kept of each packet (the rest of a payload is cut, its length kept).
    pub snaplen: u32,
    /// Frames we received from libpcap.
    pub packets: usize,
    /// Frames that were not TCP segments we could parse.
    pub unparsed: usize,
    pub counters: Option<PcapCounters>,
    /// The saved pcapng, when one was written.
    pub file: Option<PathBuf>,
    /// Why no file was written, when one was asked for.
    pub file_error: Option<String>,
}

impl CaptureSummary {
    pub fn dropped(&self) -> u32 {
        self.counters.map_or(0, |c| c.dropped + c.if_dropped)
    }
}

/// One run, ready to render.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub scenario: String,
    pub teaches: String,
    /// `built-in` or the scenario file's path.
    pub origin: String,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    /// Where the run happened, in words ("private network namespace ...").
    pub namespace: String,
    /// How the driver paced the run, in words, so a reader can judge timings.
    pub pacing: String,
    pub timeline: Timeline,
    pub capture: CaptureSummary,
    pub final_states: Vec<FinalState>,
    pub problems: Vec<StepProblem>,
    /// The scenario line of the step marked (key).
    pub key_line: Option<usize>,
    /// The signal that stopped the run early, if one did.
    pub interrupted: Option<String>,
    /// Whether the kernel's tracepoints were read, or why not.
    pub kernel: KernelSource,
    /// The scenario's `expect` lines, each with its verdict.
    pub expectations: Vec<crate::scenario::expect::Verdict>,
    /// A student's predictions (`--predict`), each scored.
    pub predictions: Vec<crate::scenario::predict::Scored>,
    /// What the story's self-check found (empty: every invariant holds).
    pub violations: Vec<crate::check::Violation>,
    /// Causes a capture file recorded for its packets (the packet comments
    /// hc-trace writes), by frame number: shown beside the causes inferred
    /// from the wire, as the recording run's words (its event numbers).
    pub recorded: Vec<(usize, String)>,
}

/// Where kernel reasons and state changes came from, said once in the footer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KernelSource {
    /// Not asked for (a capture file, or a source that has no live kernel).
    #[default]
    None,
    /// Read from tracepoints; the number of events kept, and how they were read.
    Tracepoints { events: usize, via: KernelVia },
    /// Asked for but not available, and why.
    Unavailable(String),
}

/// How the kernel's tracepoints were read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KernelVia {
    /// The ftrace text of a tracefs instance; `ebpf`: why the eBPF source
    /// was not used, when it was tried.
    Tracefs { ebpf: Option<String> },
    /// BPF programs on BTF-typed tracepoints, through a ring buffer;
    /// `drops`: events lost for want of room.
    Ebpf { drops: u64 },
}

impl KernelVia {
    /// The source's short name (`tracefs`, `ebpf`).
    pub fn name(&self) -> &'static str {
        match self {
            KernelVia::Tracefs { .. } => "tracefs",
            KernelVia::Ebpf { .. } => "ebpf",
        }
    }
}

/// Bytes one side handed to write() on a connection, against the bytes
/// its segments carried (each sequence number counted once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamCheck {
    pub side: Side,
    pub conn: usize,
    pub written: u64,
    pub on_wire: u64,
    /// An RST ended the connection: unsent data may rightly never appear.
    pub reset: bool,
}

impl StreamCheck {
    /// The capture misses bytes that must have been sent.
    pub fn missing(&self) -> bool {
        self.on_wire < self.written && !self.reset
    }
}

impl Report {
    /// The run did what the scenario says and captured everything.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
            && self.capture.dropped() == 0
            && self.interrupted.is_none()
            && !self.streams().iter().any(StreamCheck::missing)
            && self.expectations.iter().all(|e| e.met)
    }

    /// Written against captured bytes, per side and connection.
    pub fn streams(&self) -> Vec<StreamCheck> {
        let mut out: Vec<StreamCheck> = Vec::new();
        for (_, c) in self.timeline.calls() {
            let (Some(conn), Some((_, end))) = (c.conn, c.call.stream) else {
                continue;
            };
            match out
                .iter_mut()
                .find(|s| s.side == c.call.side && s.conn == conn)
            {
                Some(s) => s.written = s.written.max(end),
                None => out.push(StreamCheck {
                    side: c.call.side,
                    conn,
                    written: end,
                    on_wire: 0,
                    reset: false,
                }),
            }
        }
        for s in &mut out {
            for (_, seg) in self.timeline.segments().filter(|(_, g)| g.conn == s.conn) {
                s.reset |= seg.seg.flags.rst();
                if seg.from == s.side && seg.seg.len > 0 {
                    // Relative sequence 1 is the first byte of the stream.
                    let end = u64::from(seg.rel_seq) + u64::from(seg.seg.len) - 1;
                    s.on_wire = s.on_wire.max(end);
                }
            }
        }
        out
    }

    /// The event index of the key step's first call.
    pub fn key_call(&self) -> Option<usize> {
        let line = self.key_line?;
        self.timeline
            .calls()
            .find(|(_, c)| c.call.line == Some(line))
            .map(|(i, _)| i)
    }

    /// FIN and RST segments sent by `side` (retransmissions not counted twice).
    pub fn count(&self, side: Side, flag: fn(&SegEvent) -> bool) -> usize {
        self.timeline
            .segments()
            .filter(|(_, s)| s.from == side && s.retransmission_of.is_none() && flag(s))
            .count()
    }
}
