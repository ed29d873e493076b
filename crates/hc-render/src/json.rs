//! `--format json`: one document per run, schema version 2 (docs/json.md).
//!
//! Schema 2 tells calls as spans: every call has its entry (`t_ns`), its
//! return (`end_ns`), the state at entry (`state_before`) and after
//! (`state_after`); events are listed in the order the timeline shows
//! them, a call that waited sitting where it returned, with an `entry`
//! event where it was entered.
//!
//! The schema is the types below: each field is documented where it is
//! declared, and `docs/schema/run.schema.json` is generated from them
//! (schemars; a test keeps the file in step and checks every recorded run
//! against the types). Keys come out sorted, as before the types existed.

use super::{causes_text, primary_cause};
use hc_core::correlate::story::SentWhy;
use hc_core::correlate::{Eof, Event, Part, Timeline};
use hc_core::model::{CallKind, Side, StateObs, TcpFlags};
use hc_core::report::{KernelSource, KernelVia, Report};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schema version of [`Document`].
pub const SCHEMA: u32 = 2;

/// One run.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Always 2 for this layout.
    pub schema: u32,
    /// The scenario's name (`exec` for a traced program).
    pub scenario: String,
    /// What the scenario teaches, or the connection an exec section is about.
    pub teaches: String,
    /// `built-in`, the scenario file's path, or the traced command.
    pub origin: String,
    pub client: Endpoint,
    pub server: Endpoint,
    /// Where the run happened, in words.
    pub namespace: String,
    /// How the driver paced the run, in words.
    pub pacing: String,
    /// CLOCK_REALTIME nanoseconds of the first event; every `t_ns` is relative to it.
    pub t0_ns: i64,
    /// Calls, segments, kernel state changes and hc-trace's own notes, in time order.
    pub events: Vec<EventDoc>,
    /// The event index of the scenario's `(key)` step.
    pub key_call: Option<usize>,
    pub capture: CaptureDoc,
    /// Each socket's state when the run ended.
    pub final_states: Vec<FinalStateDoc>,
    /// Steps that could not be made as written.
    pub problems: Vec<ProblemDoc>,
    /// Bytes handed to write() against bytes seen on the wire, per side and connection.
    pub streams: Vec<StreamDoc>,
    /// The scenario's `expect` lines with their verdicts.
    pub expectations: Vec<VerdictDoc>,
    /// `--predict` answers, scored.
    pub predictions: Vec<PredictionDoc>,
    /// The signal that stopped the run early (`SIGINT`, `SIGTERM`).
    pub interrupted: Option<String>,
    /// Whether the kernel's tracepoints were read; null when not asked for.
    pub kernel: Option<KernelDoc>,
    /// The run did what it says and captured everything (exit status 0).
    pub ok: bool,
    /// What the story's self-check found: empty when every invariant holds.
    pub self_check: Vec<ViolationDoc>,
}

/// A broken invariant of the story (a bug in hc-trace, or two observations
/// that contradict each other).
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ViolationDoc {
    /// `result-before-cause`, `stale-state`, `nothing-on-the-wire`, `ack-of-unreceived`, `rst-reason`.
    pub invariant: String,
    pub events: Vec<usize>,
    pub detail: String,
}

/// One end of the run's connection.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `127.0.0.1:5555`.
    pub addr: Option<String>,
}

/// What was captured and where it went.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CaptureDoc {
    pub iface: String,
    /// The BPF filter (tcpdump syntax).
    pub filter: String,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Frames captured.
    pub packets: usize,
    /// Frames that were not TCP segments.
    pub unparsed: usize,
    /// Packets the kernel or the interface dropped (non-zero: the timeline is incomplete).
    pub dropped: u32,
    /// libpcap's own counters (`received` counts both copies on `lo` unless `outgoing_skipped`).
    pub libpcap: Option<LibpcapDoc>,
    /// The saved pcapng.
    pub file: Option<String>,
    /// Why no pcapng was written, when one was asked for.
    pub file_error: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct LibpcapDoc {
    pub received: u32,
    pub dropped: u32,
    pub if_dropped: u32,
    /// The kernel skipped the outgoing copy of each packet on `lo`, so
    /// `received` counts each packet once (false: twice on `lo`).
    #[serde(default)]
    pub outgoing_skipped: bool,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct FinalStateDoc {
    pub side: SideDoc,
    pub addr: String,
    /// null for a listener.
    pub peer: Option<String>,
    /// The kernel's state name (`TIME_WAIT`), `CLOSED` when no socket is left, null when unknown.
    pub state: Option<String>,
    pub state_text: String,
    /// How the state was read: `tcp_info`, `proc_net_tcp`, ...
    pub state_source: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProblemDoc {
    pub line: usize,
    pub step: String,
    pub message: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct StreamDoc {
    pub side: SideDoc,
    pub conn: usize,
    pub written: u64,
    pub on_wire: u64,
    /// An RST ended the connection (unsent data may rightly be missing).
    pub reset: bool,
    /// Every byte that must have been sent was captured.
    pub complete: bool,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct VerdictDoc {
    /// The `expect` line's number in the scenario file.
    pub line: usize,
    pub expect: String,
    pub met: bool,
    /// What was observed, in words.
    pub seen: String,
    /// The call (event index) it was checked against.
    pub event: Option<usize>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PredictionDoc {
    pub line: usize,
    pub step: String,
    pub answer: String,
    pub observed: String,
    pub right: bool,
    pub event: Option<usize>,
}

/// Whether kernel reasons and state changes were read.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct KernelDoc {
    pub available: bool,
    /// Events of this run kept (when available).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub events: Option<usize>,
    /// Why not (when not available).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub why: Option<String>,
    /// How the tracepoints were read: `ebpf` (BPF programs, ring buffer) or
    /// `tracefs` (the ftrace text).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
    /// eBPF: events the ring buffer had no room for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lost: Option<u64>,
    /// tracefs: why the eBPF source was not used, when it was tried.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ebpf_unavailable: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SideDoc {
    Client,
    Server,
}

impl From<Side> for SideDoc {
    fn from(s: Side) -> SideDoc {
        match s {
            Side::Client => SideDoc::Client,
            Side::Server => SideDoc::Server,
        }
    }
}

/// One event of the timeline, told apart by `kind`.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EventDoc {
    Call(CallDoc),
    Entry(EntryDoc),
    Segment(SegmentDoc),
    Note(NoteDoc),
    State(StateDoc),
    Table(TableDoc),
}

/// Where a call that returned later was entered.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct EntryDoc {
    pub i: usize,
    /// The call's entry, ns after `t0_ns`.
    pub t_ns: i64,
    /// The call's own event (where it returned).
    pub call: usize,
}

/// What the kernel's table (sock_diag, read every 5 ms while the wire settles after a step) said of a connection whose descriptor was closed.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct TableDoc {
    pub i: usize,
    pub t_ns: i64,
    pub side: SideDoc,
    pub conn: Option<usize>,
    pub local: String,
    pub peer: String,
    /// The state it holds the connection in; null when no socket is left.
    pub state: Option<String>,
    /// The state known before (the close's reading, or the table's last).
    pub before: Option<String>,
    pub source: String,
}

/// A segment that left while a call ran, and why.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct SentDoc {
    pub segment: usize,
    /// `call`: the call's own output; `released`: a pure ACK its execution
    /// released (a read); `answer`: the kernel answering an arriving segment.
    pub why: String,
}

/// Why a read returned 0.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct EofDoc {
    /// `fin` (the peer's FIN had arrived), `shut_rd` (this side's own
    /// shutdown), `unknown`.
    pub why: String,
    /// The FIN segment, or the shutdown call.
    pub event: Option<usize>,
}

/// A socket call and what it put on the wire.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CallDoc {
    /// The event's index in `events`.
    pub i: usize,
    /// When the call was entered, ns after `t0_ns`.
    pub t_ns: i64,
    /// When it returned, ns after `t0_ns`.
    pub end_ns: i64,
    /// How long the call took.
    pub dur_ns: i64,
    /// Its `entry` event, when it is shown as a span (it returned after
    /// something it did not do happened).
    pub entry: Option<usize>,
    /// What it waited for: the last segment to its side before it returned.
    pub woke_by: Option<usize>,
    /// The socket's state at entry: the kernel's last report, else TCP_INFO
    /// read just before the call; null when unknown.
    pub state_before: Option<String>,
    pub side: SideDoc,
    /// `connect`, `write`, `read`, `shutdown`, `close`, ...
    pub call: String,
    /// The arguments that matter: `SHUT_WR`, `100`.
    pub args: String,
    /// The call as C writes it: `shutdown(12, SHUT_WR)`.
    pub text: String,
    pub fd: Option<i32>,
    pub ret: Option<i64>,
    /// errno's name when it failed.
    pub errno: Option<String>,
    /// A remark on the result (`end of file`).
    pub note: Option<String>,
    /// The socket's state after the call (kernel name, `CLOSED`, or null).
    pub state_after: Option<String>,
    /// The kernel table's state when the descriptor said CLOSE but the connection lived on.
    pub state_table: Option<String>,
    pub state_text: String,
    pub state_source: String,
    /// The scenario line that made the call.
    pub line: Option<usize>,
    /// The traced process that made it (exec).
    pub pid: Option<u32>,
    /// Event indices of the segments it caused (whose cause names it).
    pub caused: Vec<usize>,
    /// Every segment its side sent on its connection while it ran, with why.
    pub sent: Vec<SentDoc>,
    /// For a read that returned 0: why.
    pub eof: Option<EofDoc>,
    /// Index into the connections (null: none).
    pub conn: Option<usize>,
}

/// A captured segment and what put it there.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct SegmentDoc {
    pub i: usize,
    pub t_ns: i64,
    pub from: SideDoc,
    pub conn: usize,
    /// The frame's position in the saved pcapng (0-based).
    pub frame: usize,
    /// `["SYN", "ACK"]`.
    pub flags: Vec<String>,
    /// Sequence number relative to the sender's first.
    pub seq: u32,
    /// Acknowledgment relative to the receiver's first (null without ACK).
    pub ack: Option<u32>,
    /// Payload bytes.
    pub len: u32,
    /// The window field as sent.
    pub win: u16,
    /// The window in bytes, when the scale is known.
    pub win_bytes: Option<u32>,
    pub options: Vec<String>,
    /// The cause that names it best, and all causes in words.
    pub cause: CauseSummary,
    pub causes: Vec<CauseDoc>,
    /// The earlier segment whose sequence space it sends again.
    pub retransmission_of: Option<usize>,
    /// The kernel's reason for an RST.
    pub kernel: Option<KernelRstDoc>,
    /// What hc-trace did to it (held, dropped), in words.
    pub tampered: Option<String>,
    /// The sender's call that was running when it left.
    pub during: Option<usize>,
    /// tshark's TCP analysis flags (`ZeroWindow`, `Window Update`, `Dup ACK`, `Keep-Alive`, ...).
    pub flow: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CauseSummary {
    /// The call that put it there, when one did.
    pub event: Option<usize>,
    pub why: String,
}

/// One cause of one part of a segment.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CauseDoc {
    /// `syn`, `synack`, `data`, `fin`, `rst`, `ack`.
    pub part: String,
    /// The call (event index), or null when the kernel sent it on its own.
    pub event: Option<usize>,
    /// The segment (event index) it answers or acknowledges.
    pub answers: Option<usize>,
    pub why: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct KernelRstDoc {
    pub reason: String,
    pub state: String,
    /// Whether the reason's kind agrees with the attribution (null: no opinion).
    pub agrees: Option<bool>,
}

/// Something hc-trace itself did (a fault on the wire).
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct NoteDoc {
    pub i: usize,
    pub t_ns: i64,
    pub text: String,
    pub line: Option<usize>,
}

/// A state change the kernel reported.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct StateDoc {
    pub i: usize,
    pub t_ns: i64,
    pub side: SideDoc,
    pub conn: Option<usize>,
    pub local: String,
    pub remote: String,
    pub old: String,
    pub new: String,
    /// The state the connection went on in after its socket went to CLOSE.
    pub continues_as: Option<String>,
    pub source: String,
}

/// The JSON document of a run, as a value (keys sorted).
pub fn document(r: &Report) -> Value {
    serde_json::to_value(typed(r)).unwrap_or(Value::Null)
}

fn kind_name(k: CallKind) -> String {
    k.name().to_string()
}

fn part_name(p: Part) -> &'static str {
    match p {
        Part::Syn => "syn",
        Part::SynAck => "synack",
        Part::Data => "data",
        Part::Fin => "fin",
        Part::Rst => "rst",
        Part::Ack => "ack",
    }
}

fn flag_names(f: TcpFlags) -> Vec<String> {
    f.names().into_iter().map(str::to_string).collect()
}

/// The document of a run, typed.
pub fn typed(r: &Report) -> Document {
    let tl = &r.timeline;
    Document {
        schema: SCHEMA,
        scenario: r.scenario.clone(),
        teaches: r.teaches.clone(),
        origin: r.origin.clone(),
        client: Endpoint {
            addr: r.client.map(|a| a.to_string()),
        },
        server: Endpoint {
            addr: r.server.map(|a| a.to_string()),
        },
        namespace: r.namespace.clone(),
        pacing: r.pacing.clone(),
        t0_ns: tl.t0,
        events: tl
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| event(i, e, tl))
            .collect(),
        key_call: r.key_call(),
        capture: CaptureDoc {
            iface: r.capture.iface.clone(),
            filter: r.capture.filter.clone(),
            snaplen: r.capture.snaplen,
            packets: r.capture.packets,
            unparsed: r.capture.unparsed,
            dropped: r.capture.dropped(),
            libpcap: r.capture.counters.map(|c| LibpcapDoc {
                received: c.received,
                dropped: c.dropped,
                if_dropped: c.if_dropped,
                outgoing_skipped: c.outgoing_skipped,
            }),
            file: r.capture.file.as_ref().map(|p| p.display().to_string()),
            file_error: r.capture.file_error.clone(),
        },
        final_states: r
            .final_states
            .iter()
            .map(|f| FinalStateDoc {
                side: f.side.into(),
                addr: f.local.to_string(),
                peer: f.peer.map(|p| p.to_string()),
                state: f.state.token(),
                state_text: f.state.label(),
                state_source: state_source(&f.state).into(),
            })
            .collect(),
        problems: r
            .problems
            .iter()
            .map(|p| ProblemDoc {
                line: p.line,
                step: p.step.clone(),
                message: p.message.clone(),
            })
            .collect(),
        streams: r
            .streams()
            .iter()
            .map(|s| StreamDoc {
                side: s.side.into(),
                conn: s.conn,
                written: s.written,
                on_wire: s.on_wire,
                reset: s.reset,
                complete: !s.missing(),
            })
            .collect(),
        expectations: r
            .expectations
            .iter()
            .map(|v| VerdictDoc {
                line: v.line,
                expect: v.expect.clone(),
                met: v.met,
                seen: v.seen.clone(),
                event: v.event,
            })
            .collect(),
        predictions: r
            .predictions
            .iter()
            .map(|p| PredictionDoc {
                line: p.line,
                step: p.step.clone(),
                answer: p.answer.clone(),
                observed: p.observed.clone(),
                right: p.right,
                event: p.event,
            })
            .collect(),
        interrupted: r.interrupted.clone(),
        kernel: match &r.kernel {
            KernelSource::Tracepoints { events, via } => Some(KernelDoc {
                available: true,
                events: Some(*events),
                why: None,
                source: Some(via.name().to_string()),
                lost: match via {
                    KernelVia::Ebpf { drops } => Some(*drops),
                    KernelVia::Tracefs { .. } => None,
                },
                ebpf_unavailable: match via {
                    KernelVia::Tracefs { ebpf } => ebpf.clone(),
                    KernelVia::Ebpf { .. } => None,
                },
            }),
            KernelSource::Unavailable(why) => Some(KernelDoc {
                available: false,
                events: None,
                why: Some(why.clone()),
                source: None,
                lost: None,
                ebpf_unavailable: None,
            }),
            KernelSource::None => None,
        },
        ok: r.ok(),
        self_check: r
            .violations
            .iter()
            .map(|v| ViolationDoc {
                invariant: serde_json::to_value(v.invariant)
                    .ok()
                    .and_then(|x| x.as_str().map(str::to_string))
                    .unwrap_or_default(),
                events: v.events.clone(),
                detail: v.detail.clone(),
            })
            .collect(),
    }
}

fn state_source(s: &StateObs) -> &'static str {
    match s {
        StateObs::TcpInfo { .. } => "tcp_info",
        StateObs::ProcNet { .. } => "proc_net_tcp",
        StateObs::Handed { .. } => "tcp_info+proc_net_tcp",
        StateObs::Gone => "proc_net_tcp (no socket left)",
        StateObs::Unknown => "unknown",
    }
}

fn event(i: usize, e: &Event, tl: &Timeline) -> EventDoc {
    let t0 = tl.t0;
    match e {
        Event::Call(ce) => {
            let c = &ce.call;
            EventDoc::Call(CallDoc {
                i,
                t_ns: c.start - t0,
                end_ns: c.end - t0,
                dur_ns: c.end - c.start,
                entry: ce.entry,
                woke_by: ce.woke_by,
                state_before: ce.state_entry.map(|s| s.name().into_owned()),
                side: c.side.into(),
                call: kind_name(c.kind),
                args: c.args.clone(),
                text: c.text.clone(),
                fd: c.fd,
                ret: c.ret,
                errno: c.errno.clone(),
                note: c.note.clone(),
                state_after: c.state_after.token(),
                state_table: match &c.state_after {
                    StateObs::Handed { table, .. } => Some(table.name().into_owned()),
                    _ => None,
                },
                state_text: c.state_after.label(),
                state_source: state_source(&c.state_after).into(),
                line: c.line,
                pid: c.pid,
                caused: ce.caused.clone(),
                sent: ce
                    .sent
                    .iter()
                    .map(|x| SentDoc {
                        segment: x.segment,
                        why: match x.why {
                            SentWhy::ByCall => "call",
                            SentWhy::Released => "released",
                            SentWhy::Answer => "answer",
                        }
                        .into(),
                    })
                    .collect(),
                eof: ce.eof.map(|e| match e {
                    Eof::Fin { segment } => EofDoc {
                        why: "fin".into(),
                        event: Some(segment),
                    },
                    Eof::ShutRd { call } => EofDoc {
                        why: "shut_rd".into(),
                        event: Some(call),
                    },
                    Eof::Unknown => EofDoc {
                        why: "unknown".into(),
                        event: None,
                    },
                }),
                conn: ce.conn,
            })
        }
        Event::Entry(en) => EventDoc::Entry(EntryDoc {
            i,
            t_ns: en.ts - t0,
            call: en.call,
        }),
        Event::Table(t) => EventDoc::Table(TableDoc {
            i,
            t_ns: t.ts - t0,
            side: t.side.into(),
            conn: t.conn,
            local: t.local.to_string(),
            peer: t.peer.to_string(),
            state: t.state.map(|s| s.name().into_owned()),
            before: t.before.map(|s| s.name().into_owned()),
            source: "sock_diag, read every 5 ms while the wire settles".into(),
        }),
        Event::Segment(s) => EventDoc::Segment(SegmentDoc {
            i,
            t_ns: s.seg.ts - t0,
            from: s.from.into(),
            conn: s.conn,
            frame: s.seg.frame,
            flags: flag_names(s.seg.flags),
            seq: s.rel_seq,
            ack: s.rel_ack,
            len: s.seg.len,
            win: s.seg.win,
            win_bytes: s.win_bytes,
            options: s.seg.options.iter().map(|o| o.to_string()).collect(),
            cause: CauseSummary {
                event: primary_cause(s).and_then(|c| c.event()),
                why: causes_text(tl, s),
            },
            causes: s
                .causes
                .iter()
                .map(|c| CauseDoc {
                    part: part_name(c.part).into(),
                    event: c.event(),
                    answers: c.answers(),
                    why: crate::words::why(tl, s, c),
                })
                .collect(),
            retransmission_of: s.retransmission_of,
            kernel: s.kernel.as_ref().map(|k| KernelRstDoc {
                reason: k.reason.clone(),
                state: k.state.clone(),
                agrees: k.agrees,
            }),
            tampered: s
                .tampered
                .as_ref()
                .map(|t| crate::words::tamper_text(s, t, t0)),
            during: s.during,
            flow: s.flow.iter().map(|f| f.name().to_string()).collect(),
        }),
        Event::Note(n) => EventDoc::Note(NoteDoc {
            i,
            t_ns: n.ts - t0,
            text: n.text.clone(),
            line: n.line,
        }),
        Event::State(st) => EventDoc::State(StateDoc {
            i,
            t_ns: st.ts - t0,
            side: st.side.into(),
            conn: st.conn,
            local: st.local.to_string(),
            remote: st.remote.to_string(),
            old: st.old.name().into_owned(),
            new: st.new.name().into_owned(),
            continues_as: st.continues_as.map(|t| t.name().into_owned()),
            source: "tracepoint sock:inet_sock_set_state".into(),
        }),
    }
}

/// The JSON Schema of [`Document`] (docs/schema/run.schema.json).
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(Document)).unwrap_or(Value::Null)
}
