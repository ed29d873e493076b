//! One session, as data: everything a run observed (packets, calls, kernel
//! events, what hc-trace did to the wire) in a [`Recording`], and the one
//! function that turns a recording into the finished [`Report`].
//!
//! A live run records, then assembles; a test replays a recording made on a
//! real run and assembles it the same way, so the whole story-telling part
//! of the tool can be checked without privileges.

use crate::correlate::{correlate_with, Extra};
use crate::decode::frame as wire;
use crate::model::fault::Tampered;
use crate::model::kernel::KernelEvent;
use crate::model::{Call, LinkType, Nanos, Note, RawPacket, Side, TableObs};
use crate::model::{FinalState, StepProblem};
use crate::report::{CaptureSummary, KernelSource, PcapCounters, Report};
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The format version of [`Recording`] files.
pub const RECORDING_VERSION: u32 = 1;

/// The kernel's tracepoint events of a run, or why there are none.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelRecord {
    Off(String),
    /// Read from tracefs (the ftrace text).
    Events(Vec<KernelEvent>),
    /// Read from tracefs because the eBPF source could not load (`ebpf`: why).
    Tracefs {
        events: Vec<KernelEvent>,
        ebpf: String,
    },
    /// Read through eBPF (tp_btf programs, ring buffer); `drops`: events the
    /// ring had no room for.
    Bpf {
        events: Vec<KernelEvent>,
        drops: u64,
    },
}

impl KernelRecord {
    /// The events, whichever source read them (None: the kernel was not read).
    pub fn events(&self) -> Option<&[KernelEvent]> {
        match self {
            KernelRecord::Off(_) => None,
            KernelRecord::Events(ev)
            | KernelRecord::Tracefs { events: ev, .. }
            | KernelRecord::Bpf { events: ev, .. } => Some(ev),
        }
    }

    /// Where kernel events came from, for the report (None: not read).
    pub fn via(&self) -> Option<crate::report::KernelVia> {
        use crate::report::KernelVia;
        match self {
            KernelRecord::Off(_) => None,
            KernelRecord::Events(_) => Some(KernelVia::Tracefs { ebpf: None }),
            KernelRecord::Tracefs { ebpf, .. } => Some(KernelVia::Tracefs {
                ebpf: Some(ebpf.clone()),
            }),
            KernelRecord::Bpf { drops, .. } => Some(KernelVia::Ebpf { drops: *drops }),
        }
    }

    /// The record of events read by `via`.
    pub fn from_via(via: &crate::report::KernelVia, events: Vec<KernelEvent>) -> KernelRecord {
        use crate::report::KernelVia;
        match via {
            KernelVia::Tracefs { ebpf: None } => KernelRecord::Events(events),
            KernelVia::Tracefs { ebpf: Some(why) } => KernelRecord::Tracefs {
                events,
                ebpf: why.clone(),
            },
            KernelVia::Ebpf { drops } => KernelRecord::Bpf {
                events,
                drops: *drops,
            },
        }
    }

    /// The same source, with other events (exec: the events kept while it ran).
    pub fn with_events(&self, events: Vec<KernelEvent>) -> KernelRecord {
        match self {
            KernelRecord::Off(why) => KernelRecord::Off(why.clone()),
            KernelRecord::Events(_) => KernelRecord::Events(events),
            KernelRecord::Tracefs { ebpf, .. } => KernelRecord::Tracefs {
                events,
                ebpf: ebpf.clone(),
            },
            KernelRecord::Bpf { drops, .. } => KernelRecord::Bpf {
                events,
                drops: *drops,
            },
        }
    }
}

/// Everything one scenario run observed, before any of it was interpreted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recording {
    pub version: u32,
    /// The scenario's text and the name it was parsed under.
    pub scenario_text: String,
    pub scenario_file: String,
    /// `built-in` or the file's path.
    pub origin: String,
    pub server: SocketAddr,
    pub namespace: String,
    pub read_wait_ms: u64,
    pub settle_ms: u64,
    pub iface: String,
    pub filter: String,
    pub snaplen: u32,
    pub linktype: LinkType,
    pub packets: Vec<RawPacket>,
    pub counters: PcapCounters,
    pub calls: Vec<Call>,
    pub kernel: KernelRecord,
    pub notes: Vec<Note>,
    /// The kernel's table, read between steps for closed connections.
    #[serde(default)]
    pub table: Vec<TableObs>,
    pub held: Vec<Tampered>,
    pub drops: Vec<(Side, Nanos)>,
    pub final_states: Vec<FinalState>,
    pub problems: Vec<StepProblem>,
    pub interrupted: Option<String>,
}

impl Recording {
    /// The scenario the recording ran, parsed again from its text.
    pub fn scenario(&self) -> Result<Scenario, crate::scenario::ParseError> {
        let mut s = crate::scenario::parse(&self.scenario_text, &self.scenario_file)?;
        s.origin = self.origin.clone();
        Ok(s)
    }
}

/// The report of a recorded run: frames decoded, calls and segments
/// correlated, expectations graded.
pub fn assemble(rec: &Recording, scenario: &Scenario) -> Report {
    let (segments, unparsed) = wire::parse_all(rec.linktype, &rec.packets);
    let (kernel_events, kernel) = match (&rec.kernel, rec.kernel.events(), rec.kernel.via()) {
        (_, Some(ev), Some(via)) => (
            ev.to_vec(),
            KernelSource::Tracepoints {
                events: ev.len(),
                via,
            },
        ),
        (KernelRecord::Off(why), _, _) => (Vec::new(), KernelSource::Unavailable(why.clone())),
        _ => (Vec::new(), KernelSource::None),
    };
    let extra = Extra {
        kernel: kernel_events,
        notes: rec.notes.clone(),
        table: rec.table.clone(),
        held: rec.held.clone(),
        drops: rec.drops.clone(),
    };
    let timeline = correlate_with(rec.calls.clone(), segments, extra, Some(rec.server));
    // Count what the timeline kept: tracepoints see the whole machine.
    let kernel = match kernel {
        KernelSource::Tracepoints { via, .. } => KernelSource::Tracepoints {
            events: timeline.kernel_events(),
            via,
        },
        other => other,
    };
    let client = timeline.conns.first().map(|c| c.client).or_else(|| {
        timeline
            .calls()
            .find_map(|(_, c)| c.call.conn().map(|k| k.0))
    });
    let mut report = Report {
        scenario: scenario.name.clone(),
        teaches: scenario.teaches.clone(),
        origin: scenario.origin.clone(),
        client,
        server: Some(rec.server),
        namespace: rec.namespace.clone(),
        pacing: format!(
            "After each step the driver waited for {} ms without a segment; reads give up after {} ms.",
            rec.settle_ms, rec.read_wait_ms
        ),
        timeline,
        capture: CaptureSummary {
            iface: rec.iface.clone(),
            filter: rec.filter.clone(),
            snaplen: rec.snaplen,
            packets: rec.packets.len(),
            unparsed: unparsed.len(),
            counters: Some(rec.counters),
            file: None,
            file_error: None,
        },
        final_states: rec.final_states.clone(),
        problems: rec.problems.clone(),
        key_line: scenario.key_step().map(|s| s.line),
        interrupted: rec.interrupted.clone(),
        kernel,
        expectations: Vec::new(),
        predictions: Vec::new(),
        violations: Vec::new(),
        recorded: Vec::new(),
    };
    report.expectations = crate::scenario::expect::evaluate(scenario, &report);
    report.violations = crate::check::check(&report);
    report
}
