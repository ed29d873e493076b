//! The correlator: calls + segments -> one timeline in which every segment
//! has a cause. This is where a FIN is attributed to the shutdown() call.
//!
//! Attribution uses only what was observed — flags, who sent the segment,
//! sequence and acknowledgment numbers, and the times of calls — never the
//! scenario's name, so a change in the kernel shows up as a changed timeline:
//!
//! - **SYN**: the latest connect() of that side to that server.
//! - **SYN-ACK**: the kernel, answering the SYN (no call of the server makes it).
//! - **data**: the write()s whose bytes it carries, found by stream offset
//!   (relative sequence number), so timing does not matter: delayed (corked)
//!   data still points at the write that handed it over.
//! - **FIN**: the latest shutdown() or close() of that side on that connection
//!   made before the FIN. (The API contract that FINs come from those calls is
//!   the only knowledge used; which of them sends one is what the wire shows.)
//! - **RST**: if the sending side made a call after the last segment it
//!   received, that call (close() with unread data, say); otherwise the
//!   kernel's answer to the segment it just received, with the side's last
//!   call named as context.
//! - **retransmission**: sequence space already sent; same cause as the original.
//! - **pure ACK**: the kernel; says what it newly acknowledges (data, FIN,
//!   SYN-ACK), or that it is a window update, duplicate ACK or keep-alive.

use crate::model::fault::Tampered;
use crate::model::kernel::{KernelEvent, ReasonKind};
use crate::model::{Call, CallKind, Nanos, Note, Segment, Side, StateObs, TcpState};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;

/// One connection of the timeline, written client end first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Conn {
    pub client: SocketAddr,
    pub server: SocketAddr,
}

/// The part of a segment a cause explains: a FIN on a data segment has two causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Syn,
    SynAck,
    Data,
    Fin,
    Rst,
    Ack,
}

/// Why a segment is on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cause {
    pub part: Part,
    /// The call (its event index) that put it there; None when the kernel sent it on its own.
    pub event: Option<usize>,
    /// The segment (event index) this one answers or acknowledges, when it answers one.
    pub answers: Option<usize>,
    /// In words, built from the observations above.
    pub why: String,
}

/// A call in the timeline, with what it put on the wire.
#[derive(Clone, Debug)]
pub struct CallEvent {
    pub call: Call,
    pub conn: Option<usize>,
    /// Event indices of the segments this call caused (possibly none: a lesson in itself).
    pub caused: Vec<usize>,
    /// The state this socket had after the previous call on it, to show transitions.
    pub state_before: Option<StateObs>,
}

/// A segment in the timeline, with its causes.
#[derive(Clone, Debug)]
pub struct SegEvent {
    pub seg: Segment,
    pub conn: usize,
    pub from: Side,
    /// Sequence number relative to the sender's first (SYN) sequence number.
    pub rel_seq: u32,
    /// Acknowledgment relative to the receiver's first sequence number (ACK flag set).
    pub rel_ack: Option<u32>,
    pub causes: Vec<Cause>,
    /// What this segment newly acknowledges when it also carries something else.
    pub also_acks: Option<String>,
    /// The earlier segment (event index) whose sequence space this one sends again.
    pub retransmission_of: Option<usize>,
    /// The window in bytes, when both SYNs were seen and the scale is known.
    pub win_bytes: Option<u32>,
    /// For an RST: what the kernel's tracepoint said about it, when it was read.
    pub kernel: Option<KernelRst>,
    /// What hc-trace did to this segment after it was captured (held, dropped).
    pub tampered: Option<String>,
}

/// A state change the kernel reported through its tracepoint, as it happened.
#[derive(Clone, Debug)]
pub struct StateEvent {
    pub ts: Nanos,
    pub side: Side,
    pub conn: Option<usize>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub old: TcpState,
    pub new: TcpState,
    /// The state the kernel's table showed for the same connection afterwards,
    /// when the socket went to CLOSE but the connection lived on (TIME_WAIT).
    pub continues_as: Option<TcpState>,
}

/// The kernel's reason for an RST (tcp:tcp_send_reset), next to the
/// correlator's own attribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelRst {
    pub reason: String,
    /// The socket's state when it sent the RST, as the tracepoint said.
    pub state: String,
    /// Whether the reason's kind (an abort by a call, or an answer to a
    /// segment) matches the correlator's cause; None when the reason fits neither.
    pub agrees: Option<bool>,
}

#[derive(Clone, Debug)]
pub enum Event {
    Call(CallEvent),
    Segment(SegEvent),
    /// A TCP state change from the kernel's tracepoint.
    State(StateEvent),
    /// Something hc-trace did (a fault on the wire).
    Note(Note),
}

impl Event {
    pub fn ts(&self) -> Nanos {
        match self {
            Event::Call(c) => c.call.start,
            Event::Segment(s) => s.seg.ts,
            Event::State(s) => s.ts,
            Event::Note(n) => n.ts,
        }
    }
}

/// Calls and segments in time order, each segment with its causes.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Time of the first event; the renderers show times relative to it.
    pub t0: Nanos,
    pub events: Vec<Event>,
    pub conns: Vec<Conn>,
}

impl Timeline {
    pub fn segments(&self) -> impl Iterator<Item = (usize, &SegEvent)> {
        self.events.iter().enumerate().filter_map(|(i, e)| match e {
            Event::Segment(s) => Some((i, s)),
            _ => None,
        })
    }
    /// Kernel tracepoint events kept: state changes, and RSTs given a reason.
    pub fn kernel_events(&self) -> usize {
        self.events
            .iter()
            .filter(|e| match e {
                Event::State(_) => true,
                Event::Segment(s) => s.kernel.is_some(),
                _ => false,
            })
            .count()
    }

    pub fn calls(&self) -> impl Iterator<Item = (usize, &CallEvent)> {
        self.events.iter().enumerate().filter_map(|(i, e)| match e {
            Event::Call(c) => Some((i, c)),
            _ => None,
        })
    }
}

/// One direction of a connection: what its sender has put in sequence space.
#[derive(Default)]
struct Dir {
    isn: Option<u32>,
    /// The sender's first segment was a SYN, so relative offsets are stream offsets + 1.
    saw_syn: bool,
    /// End (exclusive, relative) of the sequence space sent so far.
    max_end: u32,
    /// Sequence ranges first sent by each segment event: [start, end).
    sent: Vec<(u32, u32, usize)>,
    /// Highest relative acknowledgment this sender has sent for the other direction.
    acked: Option<u32>,
    last_win: Option<u16>,
    /// Window scale the sender offered in its SYN (RFC 7323); applies once both sides offered one.
    wscale: Option<u8>,
}

fn addr_match(listen: SocketAddr, addr: SocketAddr) -> bool {
    listen.port() == addr.port() && (listen.ip().is_unspecified() || listen.ip() == addr.ip())
}

/// Joins calls and segments into a timeline.
///
/// `server` names the listening address when known (scenario runs); without
/// it, the sender of a SYN is the client and, failing that, the higher port.
pub fn correlate(calls: Vec<Call>, segments: Vec<Segment>, server: Option<SocketAddr>) -> Timeline {
    correlate_with(calls, segments, Extra::default(), server)
}

/// As [`correlate`], with the kernel's tracepoint events: state changes
/// become timeline events of their own and each RST carries the kernel's reason.
pub fn correlate_with(
    calls: Vec<Call>,
    segments: Vec<Segment>,
    extra: Extra,
    server: Option<SocketAddr>,
) -> Timeline {
    let Extra {
        kernel,
        notes,
        held,
        drops,
    } = extra;
    // One time-ordered stream; at the same instant a call comes first (it
    // caused what follows), then segments (in capture order), then kernel notes.
    let mut events: Vec<(Nanos, u8, usize, Pending)> =
        Vec::with_capacity(calls.len() + segments.len());
    for (n, c) in calls.into_iter().enumerate() {
        events.push((c.start, 0, n, Pending::Call(c)));
    }
    for s in segments {
        let frame = s.frame;
        events.push((s.ts, 1, frame, Pending::Seg(s)));
    }
    // Tracepoints are machine-wide and other namespaces may use the same
    // addresses: keep an event only if its exact addresses are a connection
    // of this capture (within its time span), or it happened during one of
    // this run's own calls on that socket (listen, a connect before the
    // port is known). Anything else belongs to someone else.
    let mut spans: HashMap<(SocketAddr, SocketAddr), (Nanos, Nanos)> = HashMap::new();
    for (_, _, _, p) in &events {
        if let Pending::Seg(s) = p {
            for key in [(s.src, s.dst), (s.dst, s.src)] {
                let e = spans.entry(key).or_insert((s.ts, s.ts));
                e.0 = e.0.min(s.ts);
                e.1 = e.1.max(s.ts);
            }
        }
    }
    // The same socket: a listener (no peer) matches remote 0.0.0.0:0; a
    // connecting socket has no port yet when it enters SYN_SENT.
    let same_socket = |c: &Call, local: SocketAddr, remote: SocketAddr| match (c.local, c.peer) {
        (l, Some(p)) if c.kind == CallKind::Connect => {
            p == remote && (local.port() == 0 || l == Some(local))
        }
        (Some(l), None) => l == local && remote.port() == 0,
        (Some(l), Some(p)) => l == local && p == remote,
        _ => false,
    };
    let own_call = |ts: Nanos, local: SocketAddr, remote: SocketAddr| -> Option<Side> {
        events.iter().find_map(|(_, _, _, p)| match p {
            Pending::Call(c)
                if c.start - SLACK <= ts
                    && ts <= c.end + SLACK
                    && same_socket(c, local, remote) =>
            {
                Some(c.side)
            }
            _ => None,
        })
    };
    const SLACK: Nanos = 200_000;
    const SPAN_SLACK: Nanos = 500_000_000;
    let mut kept = Vec::new();
    let mut resets = Vec::new();
    for k in kernel {
        match k {
            KernelEvent::State {
                ts,
                local,
                remote,
                by_us,
                ..
            } => {
                let in_capture = spans
                    .get(&(local, remote))
                    .is_some_and(|(lo, hi)| ts >= lo - SPAN_SLACK && ts <= hi + SPAN_SLACK);
                // Matching by call time is only safe for events that ran in our threads.
                let side = if in_capture || !by_us {
                    None
                } else {
                    own_call(ts, local, remote)
                };
                if in_capture || side.is_some() {
                    kept.push((k, side));
                }
            }
            KernelEvent::SendReset { .. } => resets.push(k),
        }
    }
    for (n, (k, side)) in kept.into_iter().enumerate() {
        events.push((k.ts(), 2, n, Pending::Kernel(k, side)));
    }
    for (n, note) in notes.into_iter().enumerate() {
        events.push((note.ts, 0, n, Pending::Note(note)));
    }
    events.sort_by_key(|(ts, prio, n, _)| (*ts, *prio, *n));
    let events: Vec<Pending> = events.into_iter().map(|(_, _, _, p)| p).collect();
    let t0 = events.first().map_or(0, |e| match e {
        Pending::Call(c) => c.start,
        Pending::Seg(s) => s.ts,
        Pending::Kernel(k, _) => k.ts(),
        Pending::Note(n) => n.ts,
    });

    let mut c = Correlator {
        server,
        conns: Vec::new(),
        conn_index: HashMap::new(),
        dirs: HashMap::new(),
        out: Vec::with_capacity(events.len()),
        states: HashMap::new(),
    };
    for p in events {
        match p {
            Pending::Call(call) => c.push_call(call),
            Pending::Seg(seg) => c.push_segment(seg),
            Pending::Kernel(k, side) => c.push_kernel(k, side),
            Pending::Note(n) => c.out.push(Event::Note(n)),
        }
    }
    c.attach_resets(resets);
    c.mark_tampered(&held, &drops);
    c.note_continuations();
    // Each call lists what it caused.
    let mut caused: Vec<(usize, usize)> = Vec::new();
    for (i, e) in c.out.iter().enumerate() {
        if let Event::Segment(s) = e {
            for cause in &s.causes {
                if let Some(ev) = cause.event {
                    caused.push((ev, i));
                }
            }
        }
    }
    for (ev, seg) in caused {
        if let Some(Event::Call(call)) = c.out.get_mut(ev) {
            if !call.caused.contains(&seg) {
                call.caused.push(seg);
            }
        }
    }
    Timeline {
        t0,
        events: c.out,
        conns: c.conns,
    }
}

enum Pending {
    Call(Call),
    Seg(Segment),
    /// A kernel event, with the side whose call it happened in when that is how it was matched.
    Kernel(KernelEvent, Option<Side>),
    Note(Note),
}

/// What a timeline may hold besides calls and segments.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// Tracepoint events (RST reasons, state changes).
    pub kernel: Vec<KernelEvent>,
    /// What hc-trace itself did.
    pub notes: Vec<Note>,
    /// Segments hc-trace held at their receiver's input.
    pub held: Vec<Tampered>,
    /// When a rule to drop a side's next FIN was set.
    pub drops: Vec<(Side, Nanos)>,
}

struct Correlator {
    server: Option<SocketAddr>,
    conns: Vec<Conn>,
    conn_index: HashMap<(SocketAddr, SocketAddr), (usize, Side)>,
    dirs: HashMap<(usize, Side), Dir>,
    out: Vec<Event>,
    /// Last state seen per socket (side, local, peer), for transitions.
    states: HashMap<(Side, Option<SocketAddr>, Option<SocketAddr>), StateObs>,
}

impl Correlator {
    fn push_call(&mut self, call: Call) {
        let conn = call.conn().and_then(|(c, s)| {
            self.conns
                .iter()
                .position(|k| k.client == c && k.server == s)
        });
        let key = (call.side, call.local, call.peer);
        let state_before = self.states.get(&key).cloned();
        if call.local.is_some() {
            self.states.insert(key, call.state_after.clone());
        }
        self.out.push(Event::Call(CallEvent {
            call,
            conn,
            caused: Vec::new(),
            state_before,
        }));
    }

    /// Which connection a segment belongs to and which side sent it.
    fn classify(&mut self, seg: &Segment) -> (usize, Side) {
        if let Some(&(i, side)) = self.conn_index.get(&(seg.src, seg.dst)) {
            return (i, side);
        }
        let from = match self.server {
            Some(srv) if addr_match(srv, seg.src) => Side::Server,
            Some(srv) if addr_match(srv, seg.dst) => Side::Client,
            _ if seg.flags.syn() && !seg.flags.ack() => Side::Client,
            _ if seg.flags.syn() => Side::Server,
            _ if seg.src.port() > seg.dst.port() => Side::Client,
            _ => Side::Server,
        };
        let conn = match from {
            Side::Client => Conn {
                client: seg.src,
                server: seg.dst,
            },
            Side::Server => Conn {
                client: seg.dst,
                server: seg.src,
            },
        };
        let i = self.conns.len();
        self.conns.push(conn);
        self.conn_index
            .insert((conn.client, conn.server), (i, Side::Client));
        self.conn_index
            .insert((conn.server, conn.client), (i, Side::Server));
        // Calls made before the first segment of this connection now know their connection.
        for e in &mut self.out {
            if let Event::Call(ce) = e {
                if ce.conn.is_none() && ce.call.conn() == Some((conn.client, conn.server)) {
                    ce.conn = Some(i);
                }
            }
        }
        (i, from)
    }

    /// Does `call` act on connection `conn`? A server's listening socket counts
    /// for the connections to its port (closing it affects those not yet accepted).
    fn touches(&self, call: &Call, conn: usize) -> bool {
        let k = self.conns[conn];
        if call.conn() == Some((k.client, k.server)) {
            return true;
        }
        match call.side {
            Side::Client => {
                // After a failed connect getsockname says 0.0.0.0:port: match the port.
                call.kind == CallKind::Connect
                    && call.peer == Some(k.server)
                    && call.local.is_none_or(|l| addr_match(l, k.client))
            }
            Side::Server => {
                call.peer.is_none() && call.local.is_some_and(|l| addr_match(l, k.server))
            }
        }
    }

    /// The latest call of `side` on `conn` that started at or before `ts` and passes `pick`.
    fn latest_call(
        &self,
        side: Side,
        conn: usize,
        ts: Nanos,
        pick: impl Fn(&Call) -> bool,
    ) -> Option<(usize, &Call)> {
        self.out
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, e)| match e {
                Event::Call(ce)
                    if ce.call.side == side
                        && ce.call.start <= ts
                        && pick(&ce.call)
                        && self.touches(&ce.call, conn) =>
                {
                    Some((i, &ce.call))
                }
                _ => None,
            })
    }

    /// The latest segment of `conn` sent by `side` before now.
    fn latest_segment(&self, side: Side, conn: usize) -> Option<(usize, &SegEvent)> {
        self.out
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, e)| match e {
                Event::Segment(s) if s.conn == conn && s.from == side => Some((i, s)),
                _ => None,
            })
    }

    fn push_segment(&mut self, seg: Segment) {
        let idx = self.out.len();
        let (conn, from) = self.classify(&seg);
        let peer_isn = self.dirs.get(&(conn, from.other())).and_then(|d| d.isn);
        let d = self.dirs.entry((conn, from)).or_default();
        if seg.flags.syn() {
            d.wscale = seg.options.iter().find_map(|o| match o {
                crate::model::TcpOpt::WindowScale(w) => Some(*w),
                _ => None,
            });
        }
        if d.isn.is_none() {
            // Without the SYN, count from just before the first byte seen.
            d.isn = Some(if seg.flags.syn() {
                seg.seq
            } else {
                seg.seq.wrapping_sub(1)
            });
            d.saw_syn = seg.flags.syn();
        }
        let rel = seg.seq.wrapping_sub(d.isn.unwrap_or(seg.seq));
        let rel_ack =
            (seg.flags.ack()).then(|| peer_isn.map_or(seg.ack, |isn| seg.ack.wrapping_sub(isn)));
        let space = seg.seq_space();
        let end = rel.wrapping_add(space);
        let already = d.max_end;
        let saw_syn = d.saw_syn;

        let mut causes = Vec::new();
        let mut retransmission_of = None;
        if space > 0 && end <= already && !(rel == 0 && already == 0) {
            // Everything in it was sent before: a retransmission.
            let orig = self.dirs[&(conn, from)]
                .sent
                .iter()
                .find(|(s, e, _)| *s <= rel && rel < *e)
                .map(|&(_, _, ev)| ev);
            retransmission_of = orig;
            match orig.and_then(|o| match &self.out[o] {
                Event::Segment(s) => Some((o, s)),
                _ => None,
            }) {
                Some((o, os)) => {
                    let gap = ms(seg.ts - os.seg.ts);
                    for oc in &os.causes {
                        causes.push(Cause {
                            why: format!("retransmission of #{o} ({gap} later): {}", oc.why),
                            ..oc.clone()
                        });
                    }
                }
                None => causes.push(Cause {
                    part: Part::Data,
                    event: None,
                    answers: None,
                    why: "retransmission of sequence space sent before the capture started".into(),
                }),
            }
        } else {
            self.new_parts(&seg, idx, conn, from, rel, saw_syn, already, &mut causes);
        }

        // What it acknowledges of the other direction.
        let acked_desc = rel_ack.and_then(|a| self.describe_ack(conn, from, a));
        let pure_ack = space == 0 && !seg.flags.rst();
        let mut also_acks = None;
        if pure_ack {
            let d = &self.dirs[&(conn, from)];
            let (answers, why) = match &acked_desc {
                Some((ev, text)) => (Some(*ev), format!("kernel: ACK of {text}")),
                None if rel.wrapping_add(1) == d.max_end && d.max_end > 1 => (
                    None,
                    "kernel: keep-alive or window probe (one byte before the next to send)".into(),
                ),
                None => match d.last_win {
                    Some(w) if w != seg.win => (
                        None,
                        format!("kernel: window update (win {w} → {})", seg.win),
                    ),
                    _ => (
                        None,
                        "kernel: duplicate ACK (acknowledges nothing new)".into(),
                    ),
                },
            };
            causes.push(Cause {
                part: Part::Ack,
                event: None,
                answers,
                why,
            });
        } else if let Some((ev, text)) = &acked_desc {
            if !causes.iter().any(|c| c.answers == Some(*ev)) {
                also_acks = Some(text.clone());
            }
        }

        let peer_scale = self.dirs.get(&(conn, from.other())).map(|p| p.wscale);
        let d = self.dirs.entry((conn, from)).or_default();
        // The SYN's own window is never scaled; later ones are when both sides offered a scale.
        let win_bytes = match (seg.flags.syn(), d.wscale, peer_scale) {
            (true, _, _) => Some(u32::from(seg.win)),
            (false, Some(w), Some(Some(_))) => Some(u32::from(seg.win) << w.min(14)),
            _ => None,
        };
        if let Some(a) = rel_ack {
            if d.acked.is_none_or(|p| a > p) {
                d.acked = Some(a);
            }
        }
        d.last_win = Some(seg.win);
        if space > 0 && end > d.max_end {
            d.sent.push((rel.max(already), end, idx));
            d.max_end = end;
        }
        self.out.push(Event::Segment(SegEvent {
            seg,
            conn,
            from,
            rel_seq: rel,
            rel_ack,
            causes,
            also_acks,
            retransmission_of,
            win_bytes,
            kernel: None,
            tampered: None,
        }));
    }

    /// A state change from the tracepoint, kept when it belongs to this run:
    /// a connection already seen, the server's listener, or a client connecting to it.
    fn push_kernel(&mut self, k: KernelEvent, during_call_of: Option<Side>) {
        let KernelEvent::State {
            ts,
            local,
            remote,
            old,
            new,
            ..
        } = k
        else {
            return;
        };
        let known = self.conn_index.get(&(local, remote)).copied();
        let (side, conn) = match (known, during_call_of) {
            (Some((i, side)), _) => (side, Some(i)),
            (None, Some(side)) => (side, None),
            // In the capture but not yet classified (µs rounding put it
            // before its first segment): the server end holds the listening port.
            (None, None) => match self.server {
                Some(srv) if addr_match(srv, local) => (Side::Server, None),
                _ => (Side::Client, None),
            },
        };
        self.out.push(Event::State(StateEvent {
            ts,
            side,
            conn,
            local,
            remote,
            old,
            new,
            continues_as: None,
        }));
    }

    /// Gives each RST the kernel's reason: the tcp_send_reset event with the
    /// same addresses closest in time. The tracepoint may fire just before
    /// the packet is sent or just after (on close() the RST is already on
    /// `lo` when it fires), and its time has microsecond resolution.
    fn attach_resets(&mut self, resets: Vec<KernelEvent>) {
        const WINDOW: Nanos = 20_000_000;
        for r in resets {
            let KernelEvent::SendReset {
                ts,
                src,
                dst,
                state,
                reason,
            } = r
            else {
                continue;
            };
            let nearest = self
                .out
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match e {
                    Event::Segment(s)
                        if s.seg.flags.rst()
                            && s.kernel.is_none()
                            && s.seg.src == src
                            && s.seg.dst == dst =>
                    {
                        Some((i, (s.seg.ts - ts).abs()))
                    }
                    _ => None,
                })
                .filter(|(_, d)| *d <= WINDOW)
                .min_by_key(|(_, d)| *d)
                .map(|(i, _)| i);
            if let Some(Event::Segment(s)) = nearest.and_then(|i| self.out.get_mut(i)) {
                let ours = s
                    .causes
                    .iter()
                    .find(|c| c.part == Part::Rst)
                    .map(|c| c.event.is_some());
                let agrees = match (crate::model::kernel::reason_kind(&reason), ours) {
                    (Some(ReasonKind::Call), Some(by_call)) => Some(by_call),
                    (Some(ReasonKind::Answer), Some(by_call)) => Some(!by_call),
                    _ => None,
                };
                s.kernel = Some(KernelRst {
                    reason,
                    state,
                    agrees,
                });
            }
        }
    }

    /// Says on each segment what hc-trace did to it: held at its receiver's
    /// input (matched by addresses and sequence number), or dropped (the
    /// first FIN of that side after the drop rule was set: the rule drops
    /// exactly one per connection).
    fn mark_tampered(&mut self, held: &[Tampered], drops: &[(Side, Nanos)]) {
        let t0 = self.out.first().map_or(0, Event::ts);
        for h in held {
            let hit = self.out.iter_mut().find_map(|e| match e {
                Event::Segment(s)
                    if s.tampered.is_none()
                        && s.seg.src == h.src
                        && s.seg.dst == h.dst
                        && s.seg.seq == h.seq
                        && s.seg.flags == h.flags
                        && s.seg.ts <= h.from + 1_000_000 =>
                {
                    Some(s)
                }
                _ => None,
            });
            if let Some(s) = hit {
                let whom = s.from.other();
                s.tampered = Some(match h.released {
                    Some(r) => format!(
                        "held by hc-trace at the {whom}'s input for {}, delivered at {:.3} ms",
                        ms(r - s.seg.ts),
                        (r - t0) as f64 / 1e6
                    ),
                    None => format!("held by hc-trace at the {whom}'s input and never delivered"),
                });
            }
        }
        for &(side, since) in drops {
            let hit = self.out.iter_mut().find_map(|e| match e {
                Event::Segment(s) if s.from == side && s.seg.flags.fin() && s.seg.ts >= since => {
                    Some(s)
                }
                _ => None,
            });
            if let Some(s) = hit {
                s.tampered = Some(format!(
                    "dropped by hc-trace at the {}'s input after the capture saw it (nftables rule): the {} never received it",
                    side.other(),
                    side.other()
                ));
            }
        }
    }

    /// A socket the tracepoint saw go to CLOSE may live on in the kernel's
    /// table (Linux hands a connection entering TIME_WAIT to a small
    /// separate socket, which the tracepoint does not report). When a later
    /// call's state reading found the same connection in the table, say so.
    fn note_continuations(&mut self) {
        let mut later: Vec<(usize, TcpState)> = Vec::new();
        for (i, e) in self.out.iter().enumerate() {
            if let Event::State(st) = e {
                if st.new != TcpState::CLOSE {
                    continue;
                }
                let found = self.out[i..].iter().find_map(|e| match e {
                    Event::Call(c)
                        if c.call.side == st.side
                            && c.call.local == Some(st.local)
                            && c.call.peer == Some(st.remote) =>
                    {
                        match &c.call.state_after {
                            StateObs::Handed { table, .. } => Some(*table),
                            StateObs::ProcNet { state } if *state != TcpState::CLOSE => {
                                Some(*state)
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                });
                if let Some(t) = found {
                    later.push((i, t));
                }
            }
        }
        for (i, t) in later {
            if let Event::State(st) = &mut self.out[i] {
                st.continues_as = Some(t);
            }
        }
    }

    /// Causes for the new parts of a segment: SYN, data, FIN, RST.
    #[allow(clippy::too_many_arguments)]
    fn new_parts(
        &self,
        seg: &Segment,
        idx: usize,
        conn: usize,
        from: Side,
        rel: u32,
        saw_syn: bool,
        already: u32,
        causes: &mut Vec<Cause>,
    ) {
        let f = seg.flags;
        let who = from.name();
        if f.syn() && !f.ack() {
            let c = self.latest_call(from, conn, seg.ts, |c| c.kind == CallKind::Connect);
            causes.push(match c {
                Some((i, call)) => Cause {
                    part: Part::Syn,
                    event: Some(i),
                    answers: None,
                    why: format!("{who} {} #{i}", call_name(call)),
                },
                None => Cause {
                    part: Part::Syn,
                    event: None,
                    answers: None,
                    why: format!("no connect() of the {who} recorded before this SYN"),
                },
            });
        } else if f.syn() {
            let syn = self
                .latest_segment(from.other(), conn)
                .filter(|(_, s)| s.seg.flags.syn())
                .map(|(i, _)| i);
            let listen = self.latest_call(from, conn, seg.ts, |c| {
                c.kind == CallKind::Listen && c.ret == Some(0)
            });
            let mut why = match syn {
                Some(s) => format!("kernel: answers {} SYN #{s}", from.other()),
                None => "kernel: SYN-ACK (the SYN it answers was not captured)".to_string(),
            };
            if let Some((l, _)) = listen {
                why.push_str(&format!(" for the socket of listen() #{l}"));
            }
            causes.push(Cause {
                part: Part::SynAck,
                event: None,
                answers: syn,
                why,
            });
        }
        if seg.len > 0 {
            let first = rel.max(already).max(1);
            let last = rel.wrapping_add(seg.len);
            // Relative sequence 1 is stream offset 0 when the SYN was seen.
            let writes: Vec<(usize, &Call)> = if saw_syn {
                let (lo, hi) = (u64::from(first - 1), u64::from(last - 1));
                self.out
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| match e {
                        Event::Call(ce)
                            if ce.call.side == from
                                && ce.call.kind == CallKind::Write
                                && ce.call.conn()
                                    == Some((self.conns[conn].client, self.conns[conn].server))
                                && ce.call.stream.is_some_and(|(a, b)| a < hi && lo < b) =>
                        {
                            Some((i, &ce.call))
                        }
                        _ => None,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            if writes.is_empty() {
                causes.push(Cause {
                    part: Part::Data,
                    event: None,
                    answers: None,
                    why: format!("data: no write() of the {who} recorded for these bytes"),
                });
            }
            for (i, call) in writes {
                let (a, b) = call.stream.unwrap_or_default();
                let delay = late(seg.ts, call.end);
                causes.push(Cause {
                    part: Part::Data,
                    event: Some(i),
                    answers: None,
                    why: format!(
                        "data from {who} {} #{i} (stream bytes {a}..{b}){delay}",
                        call_name(call)
                    ),
                });
            }
        }
        if f.fin() {
            let c = self.latest_call(from, conn, seg.ts, |c| {
                matches!(c.kind, CallKind::Shutdown | CallKind::Close)
            });
            causes.push(match c {
                Some((i, call)) => Cause {
                    part: Part::Fin,
                    event: Some(i),
                    answers: None,
                    why: format!(
                        "FIN from {who} {} #{i}{}",
                        call_name(call),
                        late(seg.ts, call.end)
                    ),
                },
                None => Cause {
                    part: Part::Fin,
                    event: None,
                    answers: None,
                    why: format!("FIN: no shutdown() or close() of the {who} recorded before it"),
                },
            });
        }
        if f.rst() {
            causes.push(self.rst_cause(seg, idx, conn, from));
        }
    }

    fn rst_cause(&self, seg: &Segment, _idx: usize, conn: usize, from: Side) -> Cause {
        let who = from.name();
        let call = self.latest_call(from, conn, seg.ts, |c| c.kind != CallKind::Sleep);
        let received = self.latest_segment(from.other(), conn);
        let call_after_last_received = |c: &Call| received.is_none_or(|(_, s)| s.seg.ts < c.start);
        match (call, received) {
            (Some((i, c)), _) if call_after_last_received(c) => Cause {
                part: Part::Rst,
                event: Some(i),
                answers: None,
                why: format!(
                    "RST from {who} {} #{i}{}",
                    call_name(c),
                    late(seg.ts, c.end)
                ),
            },
            (c, Some((r, rs))) => {
                let context = match c {
                    Some((i, c)) => format!(
                        "; the {who}'s last call, {} #{i}, was {} before that segment",
                        call_name(c),
                        ms(rs.seg.ts - c.start)
                    ),
                    None => format!("; the {who} had made no call"),
                };
                Cause {
                    part: Part::Rst,
                    event: None,
                    answers: Some(r),
                    why: format!(
                        "kernel: RST answering {} {} #{r}{context}",
                        from.other(),
                        seg_kind(&rs.seg)
                    ),
                }
            }
            (_, None) => Cause {
                part: Part::Rst,
                event: None,
                answers: None,
                why: format!("RST: no call of the {who} and no segment to it before it"),
            },
        }
    }

    /// What an acknowledgment number newly covers of the other side's sequence
    /// space: the latest event covered, and a description such as "server FIN #9".
    fn describe_ack(&self, conn: usize, from: Side, rel_ack: u32) -> Option<(usize, String)> {
        let me = self.dirs.get(&(conn, from))?;
        let peer = self.dirs.get(&(conn, from.other()))?;
        let prev = me.acked.unwrap_or(0);
        if rel_ack <= prev && me.acked.is_some() {
            return None;
        }
        let mut parts = Vec::new();
        let mut data_bytes = 0u32;
        let mut data_events = Vec::new();
        let mut last = None;
        for &(s, e, ev) in &peer.sent {
            // Newly covered: ends within (prev, rel_ack]; the first ACK covers from 0.
            let newly = e <= rel_ack && (me.acked.is_none() || e > prev);
            if !newly {
                continue;
            }
            last = Some(ev);
            let Event::Segment(ps) = &self.out[ev] else {
                continue;
            };
            let f = ps.seg.flags;
            let other = from.other().name();
            if f.syn() {
                parts.push(format!(
                    "{other} {} #{ev}",
                    if f.ack() { "SYN-ACK" } else { "SYN" }
                ));
            }
            if ps.seg.len > 0 {
                data_bytes += (e - s) - u32::from(f.syn()) - u32::from(f.fin());
                data_events.push(ev);
            }
            if f.fin() {
                if !data_events.is_empty() {
                    parts.push(data_text(other, data_bytes, &data_events));
                    data_events.clear();
                    data_bytes = 0;
                }
                parts.push(format!("{other} FIN #{ev}"));
            }
        }
        if !data_events.is_empty() {
            parts.push(data_text(from.other().name(), data_bytes, &data_events));
        }
        let last = last?;
        Some((last, parts.join(" and ")))
    }
}

fn data_text(who: &str, bytes: u32, events: &[usize]) -> String {
    let refs = match events {
        [one] => format!("#{one}"),
        [first, .., last] => format!("#{first}..#{last}"),
        [] => String::new(),
    };
    format!("{who} data {refs} ({bytes} B)")
}

/// How a segment is named in an explanation: "data", "FIN", "SYN"...
fn seg_kind(s: &Segment) -> String {
    let f = s.flags;
    let mut k = Vec::new();
    if f.syn() {
        k.push("SYN");
    }
    if s.len > 0 {
        k.push("data");
    }
    if f.fin() {
        k.push("FIN");
    }
    if f.rst() {
        k.push("RST");
    }
    if k.is_empty() {
        k.push("ACK");
    }
    k.join("+")
}

/// A call as named in causes: `shutdown(SHUT_WR)`, `close()`, `send(100)`.
pub fn call_name(c: &Call) -> String {
    match c.kind {
        CallKind::Shutdown => format!("shutdown({})", c.args),
        CallKind::Write => format!("write({})", c.args),
        CallKind::Setsockopt => format!("setsockopt({})", c.args),
        k => format!("{}()", k.name()),
    }
}

/// " (sent 12.3 ms after the call returned)" when the segment came noticeably late.
fn late(ts: Nanos, call_end: Nanos) -> String {
    let d = ts - call_end;
    if d > 1_000_000 {
        format!(" (sent {} after the call returned)", ms(d))
    } else {
        String::new()
    }
}

pub use crate::time::ms;

#[cfg(test)]
mod tests;
