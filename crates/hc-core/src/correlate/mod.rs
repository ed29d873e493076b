//! The correlator: calls + segments (+ kernel events) -> one timeline in
//! which every segment has its causes. This is where a FIN is attributed to
//! the shutdown() call ([`fin`]).
//!
//! Attribution uses only what was observed — flags, who sent the segment,
//! sequence and acknowledgment numbers, and the times of calls — never the
//! scenario's name, so a change in the kernel shows up as a changed
//! timeline. One file per kind of segment, each with its rule in its module
//! comment and its tests next to it:
//!
//! - [`syn`]: a SYN comes from the latest connect(); a SYN-ACK is the
//!   kernel's answer to the SYN.
//! - [`data`]: data comes from the write()s whose bytes it carries.
//! - [`fin`]: a FIN comes from the latest shutdown() or close().
//! - [`rst`]: an RST comes from the sender's call made after the last
//!   segment it received, or answers that segment.
//! - [`ack`]: a pure ACK is the kernel's; what it newly acknowledges.
//! - retransmissions (here): sequence space already sent; each part (data,
//!   FIN, SYN) keeps the cause of the segment that first sent it.
//!
//! Which end is the client is decided once, for every source, in
//! [`classify`]. Causes are data ([`Cause`], [`Origin`]); their wording is
//! the renderer's (`hc_render::words`). How the story is then put in order —
//! calls as spans, what each call sent while it ran — is [`story`]; the
//! invariants every story must keep are checked by `crate::check`.

pub mod ack;
pub mod classify;
pub mod data;
pub mod fin;
mod kernel;
pub mod rst;
pub mod story;
pub mod syn;
mod tamper;

use crate::model::fault::Tampered;
use crate::model::kernel::KernelEvent;
use crate::model::{Call, CallKind, Nanos, Note, Segment, Side, TableObs, TcpState};
pub use ack::{AckCause, Acked, Flow};
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;
use std::net::SocketAddr;
pub use story::{Eof, Sent};

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

/// Why (one part of) a segment is on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub part: Part,
    pub origin: Origin,
    /// The segment re-sends sequence space first sent by this earlier
    /// segment (an event index); `origin` is then the original's.
    pub resent: Option<usize>,
}

/// What put a part of a segment on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// This call (an event index): the connect() of a SYN, the write() whose
    /// bytes a data segment carries, the shutdown()/close() of a FIN, the
    /// call that made the kernel abort with an RST.
    Call { event: usize },
    /// No call of the sender was recorded for it.
    NoCall,
    /// The kernel's SYN-ACK, answering this SYN (when captured), for the
    /// socket of this listen() call (when recorded).
    SynAck {
        syn: Option<usize>,
        listen: Option<usize>,
    },
    /// The kernel's RST answering this segment; `last_call` is the sender's
    /// last call before it, said as context.
    RstAnswer {
        segment: usize,
        last_call: Option<usize>,
    },
    /// An RST with no call of the sender and no segment to it before it.
    RstUnexplained,
    /// A pure ACK: the kernel's, for this reason.
    Ack(AckCause),
    /// A pure ACK (a window update, or an acknowledgment the kernel had held
    /// back) that this call's execution released: a read that emptied the
    /// receive buffer.
    Released { event: usize, ack: AckCause },
    /// Sequence space sent again that was first sent before the capture started.
    BeforeCapture,
}

impl Cause {
    fn new(part: Part, origin: Origin) -> Cause {
        Cause {
            part,
            origin,
            resent: None,
        }
    }

    /// The call (its event index) that put it there; None when the kernel sent it on its own.
    pub fn event(&self) -> Option<usize> {
        match self.origin {
            Origin::Call { event } | Origin::Released { event, .. } => Some(event),
            _ => None,
        }
    }

    /// The segment (event index) this one answers or acknowledges, when it answers one.
    pub fn answers(&self) -> Option<usize> {
        match &self.origin {
            Origin::SynAck { syn, .. } => *syn,
            Origin::RstAnswer { segment, .. } => Some(*segment),
            Origin::Ack(AckCause::Of(a))
            | Origin::Released {
                ack: AckCause::Of(a),
                ..
            } => Some(a.last),
            Origin::Ack(AckCause::ProbeAck { probe }) => Some(*probe),
            Origin::Ack(AckCause::Resent { copy }) => Some(*copy),
            _ => None,
        }
    }
}

/// A call in the timeline, with what it put on the wire.
///
/// A call is a span, from entry (`call.start`) to return (`call.end`). When
/// something it did not cause happened in between (it blocked, waiting for
/// the peer), the timeline shows where it was entered ([`Event::Entry`] at
/// `entry`) and this event where it returned.
#[derive(Clone, Debug)]
pub struct CallEvent {
    pub call: Call,
    pub conn: Option<usize>,
    /// Event indices of the segments this call caused: those whose cause
    /// names it (possibly none: a lesson in itself).
    pub caused: Vec<usize>,
    /// Every segment its side sent on its connection while it ran, with why.
    pub sent: Vec<Sent>,
    /// The socket's state at entry: the kernel's last report before the call
    /// when there is one, else TCP_INFO read just before it.
    pub state_entry: Option<TcpState>,
    /// The entry marker's event index, when the call is shown as two lines.
    pub entry: Option<usize>,
    /// What it waited for: the last segment to it (or event) inside its span.
    pub woke_by: Option<usize>,
    /// For a read that returned 0: why.
    pub eof: Option<Eof>,
}

impl CallEvent {
    /// Where the timeline places the call's result: its return when it is
    /// shown as a span, its entry otherwise.
    pub fn shown_at(&self) -> Nanos {
        if self.entry.is_some() {
            self.call.end
        } else {
            self.call.start
        }
    }
}

/// Where a call that returned later was entered.
#[derive(Clone, Debug)]
pub struct EntryEvent {
    /// The call's own event (its result).
    pub call: usize,
    pub ts: Nanos,
}

/// What the kernel's table said of a connection whose descriptor was closed.
#[derive(Clone, Debug)]
pub struct TableEvent {
    pub ts: Nanos,
    pub side: Side,
    pub conn: Option<usize>,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// The state it holds the connection in; None: no socket left.
    pub state: Option<TcpState>,
    /// The state the table (or the call's reading) said before.
    pub before: Option<TcpState>,
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
    pub also_acks: Option<ack::AckOf>,
    /// The earlier segment (event index) whose sequence space this one sends again.
    pub retransmission_of: Option<usize>,
    /// The window in bytes, when both SYNs were seen and the scale is known.
    pub win_bytes: Option<u32>,
    /// For an RST: what the kernel's tracepoint said about it, when it was read.
    pub kernel: Option<KernelRst>,
    /// What hc-trace did to this segment after it was captured (held, dropped).
    pub tampered: Option<Tamper>,
    /// The sender's call (event index) that was running when it left.
    pub during: Option<usize>,
    /// tshark's TCP analysis of it (zero window, window update, ...).
    pub flow: Vec<Flow>,
    /// The window in bytes the sender's peer last advertised (for probes).
    pub peer_win_bytes: Option<u32>,
}

impl SegEvent {
    /// When the receiver got it: at once, when hc-trace released it, or never.
    pub fn delivered(&self) -> Option<Nanos> {
        match self.tampered {
            None => Some(self.seg.ts),
            Some(Tamper::Held { released, .. }) => Some(released),
            Some(Tamper::HeldForever { .. } | Tamper::Dropped { .. }) => None,
        }
    }
}

/// What hc-trace did to a segment on its way (`wire hold`, `wire drop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Held at the receiver's input, delivered at `released`.
    Held { receiver: Side, released: Nanos },
    /// Held at the receiver's input and never delivered.
    HeldForever { receiver: Side },
    /// Dropped at the receiver's input after the capture saw it.
    Dropped { receiver: Side },
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
    /// A call, where it returned (see [`CallEvent`]).
    Call(CallEvent),
    /// Where a call shown as a span was entered.
    Entry(EntryEvent),
    Segment(SegEvent),
    /// A TCP state change from the kernel's tracepoint.
    State(StateEvent),
    /// A closed connection's state in the kernel's table.
    Table(TableEvent),
    /// Something hc-trace did (a fault on the wire).
    Note(Note),
}

impl Event {
    /// Where the timeline places the event.
    pub fn ts(&self) -> Nanos {
        match self {
            Event::Call(c) => c.shown_at(),
            Event::Entry(e) => e.ts,
            Event::Segment(s) => s.seg.ts,
            Event::State(s) => s.ts,
            Event::Table(t) => t.ts,
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
    /// Paths a side's processes used that no traced call shows (exec:
    /// `io_uring`), named wherever a segment of that side has no recorded
    /// call. Filled in by the source, not by the correlator.
    pub untraced: Vec<(Side, String)>,
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

    /// The call at event `i`, if that event is a call.
    pub fn call(&self, i: usize) -> Option<&Call> {
        match self.events.get(i) {
            Some(Event::Call(c)) => Some(&c.call),
            _ => None,
        }
    }

    /// The segment at event `i`, if that event is a segment.
    pub fn segment(&self, i: usize) -> Option<&SegEvent> {
        match self.events.get(i) {
            Some(Event::Segment(s)) => Some(s),
            _ => None,
        }
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
    /// Sequence ranges [start, end), each with every copy sent of it: the
    /// event and when the receiver got it (None: never).
    sent: Vec<Range>,
    /// Highest relative acknowledgment this sender has sent for the other direction.
    acked: Option<u32>,
    /// The relative acknowledgment of its last segment, lower than `acked`
    /// after a reordered ACK: tshark's flow flags compare with this one.
    last_ack: Option<u32>,
    last_win: Option<u16>,
    /// The last window it advertised, in bytes where the scale is known.
    last_win_bytes: Option<u32>,
    /// Window scale the sender offered in its SYN (RFC 7323); applies once both sides offered one.
    wscale: Option<u8>,
    /// tshark's analysis of its last segment.
    last_flow: Vec<Flow>,
}

/// A range of sequence space and every copy of it that was sent.
struct Range {
    start: u32,
    end: u32,
    copies: Vec<(usize, Option<Nanos>)>,
}

impl Range {
    /// The segment that first sent it.
    fn first(&self) -> usize {
        self.copies[0].0
    }
}

/// Joins calls and segments into a timeline.
///
/// `server` names the listening address when known (scenario runs); without
/// it, the sender of a SYN is the client and, failing that, the higher port.
pub fn correlate(calls: Vec<Call>, segments: Vec<Segment>, server: Option<SocketAddr>) -> Timeline {
    correlate_with(calls, segments, Extra::default(), server)
}

/// What a timeline may hold besides calls and segments.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// Tracepoint events (RST reasons, state changes).
    pub kernel: Vec<KernelEvent>,
    /// What hc-trace itself did.
    pub notes: Vec<Note>,
    /// The kernel's table, read between steps for closed connections.
    pub table: Vec<TableObs>,
    /// Segments hc-trace held at their receiver's input.
    pub held: Vec<Tampered>,
    /// When a rule to drop a side's next FIN was set.
    pub drops: Vec<(Side, Nanos)>,
}

/// Something to place on the timeline, before it is correlated.
enum Pending {
    Call(Call),
    Seg(Segment),
    /// A kernel event, with the side whose call it happened in when that is how it was matched.
    Kernel(KernelEvent, Option<Side>),
    Table(TableObs),
    Note(Note),
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
        table,
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
    let (kept, resets) = kernel::keep_ours(kernel, &events);
    for (n, (k, side)) in kept.into_iter().enumerate() {
        events.push((k.ts(), 2, n, Pending::Kernel(k, side)));
    }
    for (n, note) in notes.into_iter().enumerate() {
        events.push((note.ts, 0, n, Pending::Note(note)));
    }
    for (n, t) in table.into_iter().enumerate() {
        events.push((t.ts, 3, n, Pending::Table(t)));
    }
    events.sort_by_key(|(ts, prio, n, _)| (*ts, *prio, *n));
    let t0 = events.first().map_or(0, |(ts, ..)| *ts);

    let mut c = Correlator {
        server,
        conns: Vec::new(),
        conn_index: HashMap::default(),
        dirs: HashMap::default(),
        out: Vec::with_capacity(events.len()),
        tamper: tamper::Tamperer::new(held, drops),
        table_last: HashMap::default(),
    };
    for (_, _, _, p) in events {
        match p {
            Pending::Call(call) => c.push_call(call),
            Pending::Seg(seg) => c.push_segment(seg),
            Pending::Kernel(k, side) => c.push_kernel(k, side),
            Pending::Table(t) => c.push_table(t),
            Pending::Note(n) => c.out.push(Event::Note(n)),
        }
    }
    c.attach_resets(resets);
    let keep = c.note_continuations();
    let mut tl = Timeline {
        t0,
        events: c.out,
        conns: c.conns,
        untraced: Vec::new(),
    };
    story::keep_only(&mut tl, &keep);
    story::tell(&mut tl);
    tl
}

struct Correlator {
    server: Option<SocketAddr>,
    conns: Vec<Conn>,
    conn_index: HashMap<(SocketAddr, SocketAddr), (usize, Side)>,
    dirs: HashMap<(usize, Side), Dir>,
    out: Vec<Event>,
    /// What hc-trace did to segments, matched as they come.
    tamper: tamper::Tamperer,
    /// The last state known of each closed connection (its close's reading,
    /// then the table's), so a table line says what it changed from.
    table_last: HashMap<(Side, SocketAddr, SocketAddr), Option<TcpState>>,
}

/// What a rule needs to know about the segment it explains.
struct SegCtx<'a> {
    seg: &'a Segment,
    conn: usize,
    from: Side,
    /// Sequence number relative to the sender's first.
    rel: u32,
    /// The sender's first segment was a SYN (relative 1 is stream offset 0).
    saw_syn: bool,
    /// End of the sequence space the sender had sent before this segment.
    already: u32,
    /// Acknowledgment number relative to the peer's first, when ACK is set.
    rel_ack: Option<u32>,
}

impl Correlator {
    fn push_call(&mut self, call: Call) {
        let conn = call.conn().and_then(|(c, s)| {
            self.conns
                .iter()
                .position(|k| k.client == c && k.server == s)
        });
        if let (CallKind::Close, Some(l), Some(p)) = (call.kind, call.local, call.peer) {
            self.table_last
                .insert((call.side, l, p), call.state_after.state());
        }
        self.out.push(Event::Call(CallEvent {
            call,
            conn,
            caused: Vec::new(),
            sent: Vec::new(),
            state_entry: None,
            entry: None,
            woke_by: None,
            eof: None,
        }));
    }

    /// A table reading, kept as a line when it says something new.
    fn push_table(&mut self, t: TableObs) {
        let key = (t.side, t.local, t.peer);
        // Repeats are dropped later, once the kernel's word is known too.
        let before = self.table_last.get(&key).copied().flatten();
        self.table_last.insert(key, t.state);
        let conn = self.conn_index.get(&(t.local, t.peer)).map(|&(i, _)| i);
        self.out.push(Event::Table(TableEvent {
            ts: t.ts,
            side: t.side,
            conn,
            local: t.local,
            peer: t.peer,
            state: t.state,
            before,
        }));
    }

    /// Which connection a segment belongs to and which side sent it.
    fn classify(&mut self, seg: &Segment) -> (usize, Side) {
        if let Some(&(i, side)) = self.conn_index.get(&(seg.src, seg.dst)) {
            return (i, side);
        }
        let listeners: Vec<SocketAddr> = self.server.into_iter().collect();
        let (client, server) = classify::client_end(seg.src, seg.dst, seg.flags, &listeners);
        let from = if seg.src == client {
            Side::Client
        } else {
            Side::Server
        };
        let conn = Conn { client, server };
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
                    && call
                        .local
                        .is_none_or(|l| crate::model::addr_match(l, k.client))
            }
            Side::Server => {
                call.peer.is_none()
                    && call
                        .local
                        .is_some_and(|l| crate::model::addr_match(l, k.server))
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
        let tampered = self.tamper.mark(&seg, from);
        let delivered = match tampered {
            None => Some(seg.ts),
            Some(Tamper::Held { released, .. }) => Some(released),
            Some(_) => None,
        };
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
        // Sequence space below what was sent already, but never sent: the
        // capture saw this segment after a later one (loopback segments of
        // two CPUs can be captured out of order). It is an original, not a
        // retransmission of something sent before the capture started.
        let reordered = d.saw_syn
            && space > 0
            && end <= already
            && !d.sent.iter().any(|r| r.start < end && rel < r.end);
        let ctx = SegCtx {
            seg: &seg,
            conn,
            from,
            rel,
            saw_syn: d.saw_syn,
            // A reordered original is new from its own first byte.
            already: if reordered { rel } else { already },
            rel_ack,
        };

        let resent = space > 0 && end <= already && !(rel == 0 && already == 0) && !reordered;
        let (mut causes, retransmission_of) = if resent {
            self.resent_causes(&ctx, end)
        } else {
            (self.fresh_causes(&ctx), None)
        };

        // What it acknowledges of the other direction, and what tshark's
        // analysis would say of its window and numbers.
        let acked = rel_ack.and_then(|a| ack::newly_acked(self, conn, from, a, seg.ts));
        let flow = ack::flow(self, &ctx, rel_ack);
        let pure_ack = space == 0 && !seg.flags.rst();
        let mut also_acks = None;
        if pure_ack {
            causes.push(ack::ack_cause(self, &ctx, acked, &flow));
        } else if let Some(a) = acked {
            if !causes.iter().any(|c| c.answers() == Some(a.last)) {
                also_acks = Some(a);
            }
        }

        let (win_bytes, peer_win_bytes) = self.note_sent(&ctx, idx, delivered, end, already, &flow);
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
            tampered,
            during: None,
            flow,
            peer_win_bytes,
        }));
    }

    /// A segment with nothing new in it: each part keeps the cause of the
    /// segment that first sent that part (a FIN added to re-sent data gets
    /// its own rule); and which segment first sent its start.
    fn resent_causes(&self, ctx: &SegCtx, end: u32) -> (Vec<Cause>, Option<usize>) {
        let seg = ctx.seg;
        let rel = ctx.rel;
        let dir = &self.dirs[&(ctx.conn, ctx.from)];
        let first_of = |pos: u32| {
            dir.sent
                .iter()
                .find(|r| r.start <= pos && pos < r.end)
                .map(Range::first)
        };
        let mut parts: Vec<(Part, u32)> = Vec::new();
        if seg.flags.syn() {
            let syn = if seg.flags.ack() {
                Part::SynAck
            } else {
                Part::Syn
            };
            parts.push((syn, rel));
        }
        if seg.len > 0 {
            parts.push((Part::Data, rel + u32::from(seg.flags.syn())));
        }
        if seg.flags.fin() {
            parts.push((Part::Fin, end - 1));
        }
        let mut causes = Vec::new();
        for (part, pos) in parts {
            let orig = first_of(pos).and_then(|o| match &self.out[o] {
                Event::Segment(s) => Some((o, s)),
                _ => None,
            });
            let Some((o, os)) = orig else {
                causes.push(Cause::new(part, Origin::BeforeCapture));
                continue;
            };
            let before = causes.len();
            causes.extend(os.causes.iter().filter(|c| c.part == part).map(|oc| Cause {
                resent: Some(o),
                ..oc.clone()
            }));
            if causes.len() == before {
                // The original sent these bytes without this part (data sent
                // again with the FIN): its own rule.
                causes.extend(self.fresh_part(part, ctx).into_iter().map(|c| Cause {
                    resent: Some(o),
                    ..c
                }));
            }
        }
        (causes, first_of(rel))
    }

    /// A segment with something new: each part by its kind's rule.
    fn fresh_causes(&self, ctx: &SegCtx) -> Vec<Cause> {
        let f = ctx.seg.flags;
        let mut causes = Vec::new();
        if f.syn() && !f.ack() {
            causes.push(syn::syn_cause(self, ctx));
        } else if f.syn() {
            causes.push(syn::syn_ack_cause(self, ctx));
        }
        if ctx.seg.len > 0 {
            causes.extend(data::data_causes(self, ctx));
        }
        if f.fin() {
            causes.push(fin::fin_cause(self, ctx));
        }
        if f.rst() {
            causes.push(rst::rst_cause(self, ctx));
        }
        causes
    }

    /// Books what the segment said about its direction (highest ACK, window,
    /// flags, the sequence space sent and every copy of it with when it was
    /// delivered); returns its window in bytes and the peer's last one.
    fn note_sent(
        &mut self,
        ctx: &SegCtx,
        idx: usize,
        delivered: Option<Nanos>,
        end: u32,
        already: u32,
        flow: &[Flow],
    ) -> (Option<u32>, Option<u32>) {
        let (seg, conn, from, rel, rel_ack) = (ctx.seg, ctx.conn, ctx.from, ctx.rel, ctx.rel_ack);
        let space = seg.seq_space();
        let peer = self.dirs.get(&(conn, from.other()));
        let peer_scale = peer.map(|p| p.wscale);
        let peer_win_bytes = peer.and_then(|p| p.last_win_bytes);
        // A reordered original (captured after a later segment) is given to
        // the rules as new from its own first byte: `ctx.already` is then its
        // start, below the direction's highest end.
        let reordered = ctx.already != already;
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
        d.last_ack = rel_ack;
        d.last_win = Some(seg.win);
        d.last_win_bytes = win_bytes.or(Some(u32::from(seg.win)));
        d.last_flow = flow.to_vec();
        if space > 0 {
            if end > d.max_end {
                d.sent.push(Range {
                    start: rel.max(already),
                    end,
                    copies: vec![(idx, delivered)],
                });
                d.max_end = end;
            } else if reordered {
                // Kept in sequence order: what an ACK newly covers is read
                // in that order, its last range being the one acknowledged.
                let at = d.sent.partition_point(|r| r.start < rel);
                d.sent.insert(
                    at,
                    Range {
                        start: rel,
                        end,
                        copies: vec![(idx, delivered)],
                    },
                );
            }
            // A copy of every range it sends again.
            for r in d.sent.iter_mut() {
                if r.start < end && rel < r.end && r.first() != idx {
                    r.copies.push((idx, delivered));
                }
            }
        }
        (win_bytes, peer_win_bytes)
    }

    /// The cause of one part of a segment by its own rule.
    fn fresh_part(&self, part: Part, ctx: &SegCtx) -> Vec<Cause> {
        match part {
            Part::Syn => vec![syn::syn_cause(self, ctx)],
            Part::SynAck => vec![syn::syn_ack_cause(self, ctx)],
            Part::Data => data::data_causes(self, ctx),
            Part::Fin => vec![fin::fin_cause(self, ctx)],
            Part::Rst => vec![rst::rst_cause(self, ctx)],
            Part::Ack => Vec::new(),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    pub fn nth_seg(t: &Timeline, n: usize) -> (usize, &SegEvent) {
        t.segments()
            .nth(n)
            .unwrap_or_else(|| panic!("no segment {n}"))
    }

    pub fn call_of(t: &Timeline, kind: CallKind, side: Side, nth: usize) -> (usize, &CallEvent) {
        t.calls()
            .filter(|(_, c)| c.call.kind == kind && c.call.side == side)
            .nth(nth)
            .unwrap_or_else(|| panic!("no {kind:?} call"))
    }

    pub fn cause(s: &SegEvent, part: Part) -> &Cause {
        s.causes
            .iter()
            .find(|c| c.part == part)
            .unwrap_or_else(|| panic!("no {part:?} cause in {:?}", s.causes))
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use crate::model::TcpFlags;
    use crate::testkit::{addr, Script, A, C, F, P, R};

    #[test]
    fn a_retransmitted_fin_keeps_the_originals_cause() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .resend_at(250, 3)
            .seg_at(251, Side::Server, A, 0)
            .run();
        let (shut, sh) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
        let (first, _) = nth_seg(&t, 3);
        let (again_i, again) = nth_seg(&t, 4);
        assert_eq!(again.retransmission_of, Some(first));
        let c = cause(again, Part::Fin);
        assert_eq!(c.event(), Some(shut));
        assert_eq!(c.resent, Some(first));
        assert_eq!(sh.caused, vec![first, again_i]);
        // Both copies arrived; the ACK after the second answers the second.
        let ack = cause(nth_seg(&t, 5).1, Part::Ack);
        assert!(
            matches!(&ack.origin, Origin::Ack(AckCause::Of(a)) if a.covers == vec![Acked::Fin { event: again_i }]),
            "{ack:?}"
        );
    }

    #[test]
    fn a_segment_captured_after_a_later_one_is_an_original_not_a_retransmission() {
        let mut s = Script::new();
        s.handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(4, Side::Client, P | A, 100)
            .seg_at(4, Side::Client, P | A, 100)
            .seg_at(5, Side::Server, A, 0);
        let (calls, mut segs) = s.parts();
        // Loopback on two CPUs: the capture saw the second segment first.
        let n = segs.len();
        segs.swap(n - 3, n - 2);
        segs[n - 3].frame = n - 3;
        segs[n - 2].frame = n - 2;
        let t = correlate(calls, segs, Some(addr(crate::testkit::S)));
        let (w1, _) = call_of(&t, CallKind::Write, Side::Client, 0);
        let (w2, _) = call_of(&t, CallKind::Write, Side::Client, 1);
        let (_, later) = nth_seg(&t, 3);
        let (_, earlier) = nth_seg(&t, 4);
        assert_eq!(cause(later, Part::Data).event(), Some(w2));
        assert_eq!(
            (
                cause(earlier, Part::Data).event(),
                earlier.retransmission_of
            ),
            (Some(w1), None),
            "the first bytes, captured second, are still the first write's: {:?}",
            earlier.causes
        );
        // The ACK of both is the ACK of the one that ends where it points
        // (the later bytes), not of the one captured last.
        let (_, ack) = nth_seg(&t, 5);
        let of = ack.causes.iter().find_map(|c| match &c.origin {
            Origin::Ack(AckCause::Of(a)) => Some(a.last),
            _ => None,
        });
        assert_eq!(of, Some(nth_seg(&t, 3).0), "{:?}", ack.causes);
        // Negative control: the same bytes sent again are a retransmission.
        let mut s = Script::new();
        s.handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(4, Side::Client, P | A, 100)
            .resend_at(300, 3);
        let t = s.run();
        assert!(nth_seg(&t, 4).1.retransmission_of.is_some());
    }

    #[test]
    fn without_calls_every_segment_still_has_a_cause() {
        let mut s = Script::new();
        s.seg_at(0, Side::Client, TcpFlags::SYN, 0)
            .seg_at(0, Side::Server, TcpFlags::SYN | A, 0)
            .seg_at(0, Side::Client, A, 0)
            .seg_at(1, Side::Client, P | A, 10)
            .seg_at(1, Side::Client, F | A, 0)
            .seg_at(1, Side::Server, R, 0);
        let t = correlate(vec![], s.parts().1, None);
        assert_eq!(t.conns.len(), 1);
        assert_eq!(t.conns[0].client, addr(C), "the SYN's sender is the client");
        for (_, seg) in t.segments() {
            assert!(!seg.causes.is_empty(), "segment {seg:?} has a cause");
        }
    }
}
