//! The story put in order: every call a span, every result after what it
//! waited for.
//!
//! The attribution rules decide what caused each segment; this pass decides
//! how the timeline tells it, from the same observations:
//!
//! - **during**: a segment left during a call of its sender when its time
//!   falls between the call's entry and return.
//! - **what a call sent**: its own output (the segments whose cause names
//!   it), what its execution released (a window update, or an ACK the
//!   kernel held back until a read emptied the buffer: a pure ACK that left
//!   during a read and acknowledges nothing that arrived during it), and what
//!   the kernel sent meanwhile answering an arriving segment ([`Sent`]).
//! - **spans**: a call during which something happened that it did not do
//!   (a segment from the peer, the other side's call, a note) is shown as
//!   two events: where it was entered ([`Event::Entry`]) and where it
//!   returned, with what woke it. Every other call is one event at its entry.
//! - **state at entry**: the kernel's last report for the socket before the
//!   call, else TCP_INFO read just before it.
//! - **end of file**: a read that returned 0 did so because of the peer's
//!   FIN the receiver got, or of the socket's own shutdown(SHUT_RD).
//!
//! Events are then put in the order they are shown, and every index that
//! points at another event is renumbered.

use super::{AckCause, CallEvent, Cause, EntryEvent, Event, Origin, SegEvent, Timeline};
use crate::model::{Call, CallKind, Nanos, Side};
use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;

/// A segment that left while a call ran, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub segment: usize,
    pub why: SentWhy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SentWhy {
    /// The call's own output: its SYN, data, FIN or RST.
    ByCall,
    /// A pure ACK the call's execution released (a read).
    Released,
    /// The kernel, answering a segment that arrived while the call ran.
    Answer,
}

/// Why a read returned 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eof {
    /// The peer's FIN (the copy the receiver got) arrived before it returned.
    Fin { segment: usize },
    /// No FIN had arrived; this side had shut down reading with this call.
    ShutRd { call: usize },
    /// Neither was observed.
    Unknown,
}

/// Does `call` act on the socket of a kernel or table event with these addresses?
fn same_socket(call: &Call, local: std::net::SocketAddr, remote: std::net::SocketAddr) -> bool {
    match (call.local, call.peer) {
        (Some(l), Some(p)) => l == local && p == remote,
        (Some(l), None) => l == local && remote.port() == 0,
        _ => false,
    }
}

/// The calls' spans and connections, by event index.
struct Span {
    event: usize,
    side: Side,
    conn: Option<usize>,
    start: Nanos,
    end: Nanos,
}

pub(super) fn tell(tl: &mut Timeline) {
    let spans: Vec<Span> = tl
        .calls()
        .filter(|(_, c)| c.call.kind != CallKind::Sleep)
        .map(|(i, c)| Span {
            event: i,
            side: c.call.side,
            conn: c.conn,
            start: c.call.start,
            end: c.call.end,
        })
        .collect();
    // During which call of its sender did each segment leave? The calls of
    // each side on each connection, by start; the latest started that spans
    // the segment (found by binary search: this runs for every segment).
    let mut by_conn: HashMap<(Side, usize), Vec<&Span>> = HashMap::default();
    let mut connless: Vec<&Span> = Vec::new();
    for sp in &spans {
        match sp.conn {
            Some(c) => by_conn.entry((sp.side, c)).or_default().push(sp),
            None => connless.push(sp),
        }
    }
    let mut during: Vec<(usize, usize)> = Vec::new();
    for (i, s) in tl.segments() {
        let ts = s.seg.ts;
        let on_conn = by_conn.get(&(s.from, s.conn)).and_then(|list| {
            let n = list.partition_point(|sp| sp.start <= ts);
            list[..n].iter().rev().find(|sp| ts <= sp.end).copied()
        });
        // A failed connect() has no connection of its own: its SYN names it.
        let named = connless
            .iter()
            .filter(|sp| {
                sp.side == s.from
                    && sp.start <= ts
                    && ts <= sp.end
                    && s.causes.iter().any(|c| c.event() == Some(sp.event))
            })
            .max_by_key(|sp| sp.start)
            .copied();
        let pick = match (on_conn, named) {
            (Some(a), Some(b)) => Some(if b.start > a.start { b } else { a }),
            (a, b) => a.or(b),
        };
        if let Some(sp) = pick {
            during.push((i, sp.event));
        }
    }
    for (i, call) in during {
        if let Some(Event::Segment(s)) = tl.events.get_mut(i) {
            s.during = Some(call);
        }
    }
    release_acks(tl);
    // What each call caused and sent.
    let mut caused: Vec<(usize, usize)> = Vec::new();
    let mut sent: Vec<(usize, Sent)> = Vec::new();
    for (i, s) in tl.segments() {
        for c in &s.causes {
            if let Some(ev) = c.event() {
                caused.push((ev, i));
            }
        }
        if let Some(call) = s.during {
            let why = if s
                .causes
                .iter()
                .any(|c| matches!(c.origin, Origin::Released { event, .. } if event == call))
            {
                SentWhy::Released
            } else if s.causes.iter().any(|c| c.event() == Some(call)) {
                SentWhy::ByCall
            } else {
                SentWhy::Answer
            };
            sent.push((call, Sent { segment: i, why }));
        }
    }
    // Pushed segment by segment: a repeat (two parts of one segment from
    // one call) is the call's last entry.
    for (ev, seg) in caused {
        if let Some(Event::Call(call)) = tl.events.get_mut(ev) {
            if call.caused.last() != Some(&seg) {
                call.caused.push(seg);
            }
        }
    }
    for (ev, s) in sent {
        if let Some(Event::Call(call)) = tl.events.get_mut(ev) {
            call.sent.push(s);
        }
    }
    // Entry states, spans, what woke them, end of file.
    let index = Index::new(tl);
    let mut facts: Vec<(usize, Facts)> = Vec::new();
    for sp in &spans {
        facts.push((sp.event, facts_of(tl, &index, sp)));
    }
    for (i, f) in facts {
        if let Some(Event::Call(c)) = tl.events.get_mut(i) {
            c.state_entry = f.state_entry;
            c.woke_by = f.woke_by;
            c.eof = f.eof;
            if f.split {
                // A placeholder: the real index is set when the events are ordered.
                c.entry = Some(usize::MAX);
            }
        }
    }
    order(tl);
}

/// Reads that emptied the receive buffer let the kernel send what it held:
/// a window update, or an ACK of data that had arrived before the read.
fn release_acks(tl: &mut Timeline) {
    let mut released: Vec<(usize, usize)> = Vec::new();
    for (i, s) in tl.segments() {
        let Some(call) = s.during else { continue };
        let Some(Event::Call(c)) = tl.events.get(call) else {
            continue;
        };
        if c.call.kind != CallKind::Read || s.seg.len > 0 || s.seg.flags.fin() {
            continue;
        }
        let release = s.causes.iter().any(|k| match &k.origin {
            Origin::Ack(AckCause::WindowUpdate { from, to }) => to > from,
            Origin::Ack(AckCause::Of(a)) => a.events().iter().all(|&e| {
                tl.segment(e)
                    .and_then(SegEvent::delivered)
                    .is_some_and(|d| d < c.call.start)
            }),
            _ => false,
        });
        if release {
            released.push((i, call));
        }
    }
    for (i, call) in released {
        if let Some(Event::Segment(s)) = tl.events.get_mut(i) {
            for k in &mut s.causes {
                if let Origin::Ack(a) = &k.origin {
                    k.origin = Origin::Released {
                        event: call,
                        ack: a.clone(),
                    };
                }
            }
        }
    }
}

/// The timeline's events by time, so what lies inside a call's span is
/// found by binary search, not by reading every event for every call.
struct Index {
    /// Segments, state changes, table readings and notes: (time, event).
    by_ts: Vec<(Nanos, usize)>,
    /// Calls by start and by end: (time, event).
    starts: Vec<(Nanos, usize)>,
    ends: Vec<(Nanos, usize)>,
    /// Kernel state changes per (side, local address), in time order.
    states: HashMap<(Side, SocketAddr), Vec<(Nanos, usize)>>,
}

impl Index {
    fn new(tl: &Timeline) -> Index {
        let mut ix = Index {
            by_ts: Vec::new(),
            starts: Vec::new(),
            ends: Vec::new(),
            states: HashMap::default(),
        };
        for (i, e) in tl.events.iter().enumerate() {
            match e {
                Event::Call(c) if c.call.kind != CallKind::Sleep => {
                    ix.starts.push((c.call.start, i));
                    ix.ends.push((c.call.end, i));
                }
                Event::Call(_) | Event::Entry(_) => {}
                Event::State(st) => {
                    ix.states
                        .entry((st.side, st.local))
                        .or_default()
                        .push((st.ts, i));
                    ix.by_ts.push((st.ts, i));
                }
                e => ix.by_ts.push((e.ts(), i)),
            }
        }
        for v in [&mut ix.by_ts, &mut ix.starts, &mut ix.ends] {
            v.sort_unstable();
        }
        for v in ix.states.values_mut() {
            v.sort_unstable();
        }
        ix
    }

    /// The entries of `v` whose time is in [lo, hi].
    fn window(v: &[(Nanos, usize)], lo: Nanos, hi: Nanos) -> &[(Nanos, usize)] {
        let a = v.partition_point(|x| x.0 < lo);
        let b = v.partition_point(|x| x.0 <= hi);
        &v[a..b.max(a)]
    }
}

struct Facts {
    state_entry: Option<crate::model::TcpState>,
    split: bool,
    woke_by: Option<usize>,
    eof: Option<Eof>,
}

fn facts_of(tl: &Timeline, ix: &Index, sp: &Span) -> Facts {
    let Some(Event::Call(ce)) = tl.events.get(sp.event) else {
        return Facts {
            state_entry: None,
            split: false,
            woke_by: None,
            eof: None,
        };
    };
    let call = &ce.call;
    // The kernel's last report for this socket before the call: the
    // connection's state (a socket gone to CLOSE whose connection lives on
    // in a time-wait socket is in that state).
    let kernel_state = call
        .local
        .and_then(|l| ix.states.get(&(call.side, l)))
        .and_then(|list| {
            let n = list.partition_point(|x| x.0 <= call.start);
            list[..n]
                .iter()
                .rev()
                .find_map(|&(_, j)| match &tl.events[j] {
                    Event::State(st) if j < sp.event && same_socket(call, st.local, st.remote) => {
                        Some(st.continues_as.unwrap_or(st.new))
                    }
                    _ => None,
                })
        });
    let state_entry = kernel_state.or_else(|| call.state_before.as_ref().and_then(|s| s.state()));
    // What happened inside the span that the call did not do. The peer's
    // reactions to what the call sent are its consequences, not something it
    // waited for: a pure ACK of the call's own segments, and the peer's
    // state changes after the first of them (loopback delivers at once, so
    // they often happen before the call returns).
    let inside = |ts: Nanos| sp.start <= ts && ts <= sp.end;
    let mut own: Vec<usize> = ce
        .sent
        .iter()
        .filter(|x| x.why != SentWhy::Answer)
        .map(|x| x.segment)
        .collect();
    own.sort_unstable();
    let is_own = |j: &usize| own.binary_search(j).is_ok();
    let first_own = own
        .iter()
        .filter_map(|&j| tl.segment(j))
        .map(|s| s.seg.ts)
        .min();
    // A pure ACK of the call's segments, or an RST answering one of them.
    let acks_own = |s: &SegEvent| {
        let pure = s.seg.len == 0 && !(s.seg.flags.syn() || s.seg.flags.fin());
        pure && s.causes.iter().any(|c| match &c.origin {
            Origin::Ack(AckCause::Of(a)) => a.events().iter().any(is_own),
            Origin::RstAnswer { segment, .. } => is_own(segment),
            _ => false,
        })
    };
    let mut foreign: Vec<usize> = Vec::new();
    // The peer's answers to the call's segments: consequences, unless the
    // socket's own state changed after one inside the span (then the
    // call's result, its state, depends on it: an RST that closed it).
    let mut answers: Vec<(usize, Nanos)> = Vec::new();
    let mut own_changes: Vec<Nanos> = Vec::new();
    // What lies inside the span: events by time, calls that start or end in it.
    let mut near: Vec<usize> = Index::window(&ix.by_ts, sp.start, sp.end)
        .iter()
        .chain(Index::window(&ix.starts, sp.start, sp.end))
        .chain(Index::window(&ix.ends, sp.start, sp.end))
        .map(|&(_, j)| j)
        .collect();
    near.sort_unstable();
    near.dedup();
    for j in near {
        if j == sp.event {
            continue;
        }
        let e = &tl.events[j];
        let f = match e {
            Event::Segment(s) => {
                let answer = s.from != call.side && acks_own(s);
                if answer && inside(s.seg.ts) {
                    answers.push((j, s.seg.ts));
                }
                inside(s.seg.ts) && !is_own(&j) && !answer
            }
            Event::State(st) => {
                let own_socket = st.side == call.side
                    && (same_socket(call, st.local, st.remote)
                        || (call.kind == CallKind::Connect && call.peer == Some(st.remote)));
                let reaction = st.side != call.side
                    && Some(st.conn) == Some(sp.conn)
                    && first_own.is_some_and(|t| t <= st.ts);
                if own_socket && inside(st.ts) {
                    own_changes.push(st.ts);
                }
                inside(st.ts) && !own_socket && !reaction
            }
            Event::Call(other) => {
                other.call.kind != CallKind::Sleep
                    && (inside(other.call.start) || inside(other.call.end))
                    && !(other.call.start <= sp.start && sp.end <= other.call.end)
            }
            Event::Table(t) => inside(t.ts),
            Event::Note(n) => inside(n.ts),
            Event::Entry(_) => false,
        };
        if f {
            foreign.push(j);
        }
    }
    // Such an answer is shown inside the span, but it did not wake the call.
    let mut answered: Vec<usize> = Vec::new();
    for (j, ts) in answers {
        if own_changes.iter().any(|&c| c >= ts) {
            foreign.push(j);
            answered.push(j);
        }
    }
    foreign.sort_unstable();
    // What woke it: the first segment to it, delivered inside its span, of
    // the kind its result needed (data for a read that returned data, the
    // FIN for end of file, an RST for a reset, the SYN-ACK for connect(),
    // the handshake's ACK for accept()); for other calls (a write waiting
    // for room) the last one. A traced program may return well after that
    // segment: the tracer sees the return only when it next runs.
    let to_it: Vec<(usize, &SegEvent)> = foreign
        .iter()
        .filter_map(|&j| match &tl.events[j] {
            Event::Segment(s)
                if !answered.contains(&j)
                    && s.from != call.side
                    && (sp.conn.is_none() || Some(s.conn) == sp.conn)
                    && s.delivered().is_some_and(|d| d <= sp.end) =>
            {
                Some((j, s))
            }
            _ => None,
        })
        .collect();
    let needed = |s: &SegEvent| -> Option<bool> {
        let f = s.seg.flags;
        Some(match (call.kind, call.ret, call.errno.as_deref()) {
            (_, _, Some("ECONNRESET" | "ECONNREFUSED" | "EPIPE")) => f.rst(),
            (CallKind::Read, Some(0), _) => f.fin(),
            (CallKind::Read, Some(n), _) if n > 0 => s.seg.len > 0,
            (CallKind::Connect, _, _) => f.syn() || f.rst(),
            (CallKind::Accept, Some(n), _) if n >= 0 => f.ack() && !f.syn(),
            _ => return None,
        })
    };
    let woke_by = match to_it.first().and_then(|(_, s)| needed(s).map(|_| ())) {
        Some(()) => to_it
            .iter()
            .find(|(_, s)| needed(s) == Some(true))
            .map(|(j, _)| *j),
        None => to_it.last().map(|(j, _)| *j),
    };
    let eof = (call.kind == CallKind::Read && call.ret == Some(0)).then(|| eof_of(tl, sp, call));
    Facts {
        state_entry,
        split: !foreign.is_empty(),
        woke_by,
        eof,
    }
}

fn eof_of(tl: &Timeline, sp: &Span, call: &Call) -> Eof {
    let fin = tl.segments().find(|(_, s)| {
        s.from != call.side
            && Some(s.conn) == sp.conn
            && s.seg.flags.fin()
            && s.delivered().is_some_and(|d| d <= sp.end)
    });
    if let Some((segment, _)) = fin {
        return Eof::Fin { segment };
    }
    let shut = tl
        .calls()
        .filter(|(i, c)| {
            *i < sp.event
                && c.call.side == call.side
                && c.call.kind == CallKind::Shutdown
                && c.call.ret == Some(0)
                && matches!(c.call.args.as_str(), "SHUT_RD" | "SHUT_RDWR")
                && c.call.local == call.local
                && c.call.peer == call.peer
        })
        .last();
    match shut {
        Some((call, _)) => Eof::ShutRd { call },
        None => Eof::Unknown,
    }
}

/// Puts the events in the order they are shown — a call shown as a span
/// moves to its return, its entry marker takes its place — and renumbers
/// every reference.
/// Drops the events not kept, renumbering what refers to the others.
pub(super) fn keep_only(tl: &mut Timeline, keep: &[bool]) {
    if keep.iter().all(|&k| k) {
        return;
    }
    let mut new_of = vec![0usize; tl.events.len()];
    let mut n = 0;
    for (i, slot) in new_of.iter_mut().enumerate() {
        *slot = n;
        if keep.get(i).copied().unwrap_or(true) {
            n += 1;
        }
    }
    let m = |i: usize| new_of.get(i).copied().unwrap_or(i);
    let old = std::mem::take(&mut tl.events);
    for (i, mut e) in old.into_iter().enumerate() {
        if !keep.get(i).copied().unwrap_or(true) {
            continue;
        }
        match &mut e {
            Event::Call(c) => remap_call(c, &m),
            Event::Segment(s) => remap_seg(s, &m),
            Event::Entry(en) => en.call = m(en.call),
            Event::State(_) | Event::Table(_) | Event::Note(_) => {}
        }
        tl.events.push(e);
    }
}

fn order(tl: &mut Timeline) {
    let old = std::mem::take(&mut tl.events);
    // (time, after-others-at-that-time, old index, is the entry marker)
    let mut keys: Vec<(Nanos, u8, usize, bool)> = Vec::with_capacity(old.len());
    for (i, e) in old.iter().enumerate() {
        match e {
            Event::Call(c) if c.entry.is_some() => {
                keys.push((c.call.start, 0, i, true));
                keys.push((c.call.end, 1, i, false));
            }
            e => keys.push((e.ts(), 0, i, false)),
        }
    }
    keys.sort_by_key(|k| (k.0, k.1, k.2, !k.3));
    let mut new_of = vec![0usize; old.len()];
    let mut entry_of = vec![None; old.len()];
    for (n, k) in keys.iter().enumerate() {
        if k.3 {
            entry_of[k.2] = Some(n);
        } else {
            new_of[k.2] = n;
        }
    }
    let mut slots: Vec<Option<Event>> = old.into_iter().map(Some).collect();
    let m = |i: usize| new_of.get(i).copied().unwrap_or(i);
    for k in &keys {
        if k.3 {
            tl.events.push(Event::Entry(EntryEvent {
                call: new_of[k.2],
                ts: k.0,
            }));
            continue;
        }
        let Some(mut e) = slots[k.2].take() else {
            continue;
        };
        match &mut e {
            Event::Call(c) => {
                c.entry = entry_of[k.2];
                remap_call(c, &m);
            }
            Event::Segment(s) => remap_seg(s, &m),
            Event::Entry(en) => en.call = m(en.call),
            Event::State(_) | Event::Table(_) | Event::Note(_) => {}
        }
        tl.events.push(e);
    }
}

fn remap_call(c: &mut CallEvent, m: &impl Fn(usize) -> usize) {
    for x in &mut c.caused {
        *x = m(*x);
    }
    c.caused.sort_unstable();
    for s in &mut c.sent {
        s.segment = m(s.segment);
    }
    // Sorted by segment: the checks look segments up in it.
    c.sent.sort_by_key(|s| s.segment);
    c.woke_by = c.woke_by.map(m);
    c.eof = c.eof.map(|e| match e {
        Eof::Fin { segment } => Eof::Fin {
            segment: m(segment),
        },
        Eof::ShutRd { call } => Eof::ShutRd { call: m(call) },
        Eof::Unknown => Eof::Unknown,
    });
}

fn remap_ack(a: &mut AckCause, m: &impl Fn(usize) -> usize) {
    match a {
        AckCause::Of(of) => remap_of(of, m),
        AckCause::ProbeAck { probe } => *probe = m(*probe),
        AckCause::Resent { copy } => *copy = m(*copy),
        _ => {}
    }
}

fn remap_of(of: &mut super::ack::AckOf, m: &impl Fn(usize) -> usize) {
    of.last = m(of.last);
    for c in &mut of.covers {
        match c {
            super::Acked::Syn { event, .. } | super::Acked::Fin { event } => *event = m(*event),
            super::Acked::Data { events, .. } => {
                for e in events {
                    *e = m(*e);
                }
            }
        }
    }
}

fn remap_cause(c: &mut Cause, m: &impl Fn(usize) -> usize) {
    c.resent = c.resent.map(m);
    match &mut c.origin {
        Origin::Call { event } => *event = m(*event),
        Origin::SynAck { syn, listen } => {
            *syn = syn.map(m);
            *listen = listen.map(m);
        }
        Origin::RstAnswer { segment, last_call } => {
            *segment = m(*segment);
            *last_call = last_call.map(m);
        }
        Origin::Ack(a) => remap_ack(a, m),
        Origin::Released { event, ack } => {
            *event = m(*event);
            remap_ack(ack, m);
        }
        Origin::NoCall | Origin::RstUnexplained | Origin::BeforeCapture => {}
    }
}

fn remap_seg(s: &mut SegEvent, m: &impl Fn(usize) -> usize) {
    for c in &mut s.causes {
        remap_cause(c, m);
    }
    if let Some(a) = &mut s.also_acks {
        remap_of(a, m);
    }
    s.retransmission_of = s.retransmission_of.map(m);
    s.during = s.during.map(m);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use super::*;
    use crate::testkit::{Script, A, F, MS, P};

    fn ix(t: &Timeline, f: impl Fn(&Event) -> bool) -> usize {
        t.events.iter().position(f).expect("the event is there")
    }

    #[test]
    fn a_blocking_read_returns_after_the_fin_that_woke_it() {
        // read entered at 3 ms, the FIN arrives at 150 ms, read = 0 at 150.1 ms.
        let mut s = Script::new();
        s.handshake()
            .call_at(3, Side::Server, CallKind::Read, "", 0)
            .seg_at(150, Side::Client, F | A, 0);
        let (mut calls, segs) = s.parts();
        let read = calls
            .iter_mut()
            .find(|c| c.kind == CallKind::Read)
            .expect("read");
        read.end = 150 * MS + 100_000;
        let t = correlate(calls, segs, Some(crate::testkit::addr(crate::testkit::S)));
        let (ri, rc) = call_of(&t, CallKind::Read, Side::Server, 0);
        let fin = ix(&t, |e| matches!(e, Event::Segment(s) if s.seg.flags.fin()));
        let entry = rc.entry.expect("shown as a span");
        assert!(
            entry < fin && fin < ri,
            "entry #{entry}, FIN #{fin}, result #{ri}"
        );
        assert!(matches!(&t.events[entry], Event::Entry(e) if e.call == ri));
        assert_eq!(rc.woke_by, Some(fin));
        assert_eq!(rc.eof, Some(Eof::Fin { segment: fin }));
    }

    #[test]
    fn a_call_that_only_did_its_own_work_stays_one_line() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .run();
        let (_, c) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
        assert_eq!(c.entry, None);
    }

    #[test]
    fn the_state_at_entry_is_the_kernels_last_report_not_the_previous_calls() {
        use crate::model::kernel::KernelEvent;
        use crate::testkit::{addr, C, S};
        // The server's socket went to CLOSE_WAIT (the client's FIN) before its read.
        let (calls, segs) = Script::new()
            .handshake()
            .seg_at(3, Side::Client, F | A, 0)
            .call(Side::Server, CallKind::Read, "", 0, TcpState::CLOSE_WAIT)
            .parts();
        let kernel = vec![KernelEvent::State {
            ts: 3 * MS + 60_000,
            local: addr(S),
            remote: addr(C),
            old: TcpState::ESTABLISHED,
            new: TcpState::CLOSE_WAIT,
            by_us: false,
        }];
        let extra = Extra {
            kernel,
            ..Default::default()
        };
        let t = correlate_with(calls, segs, extra, Some(addr(S)));
        let (_, read) = call_of(&t, CallKind::Read, Side::Server, 0);
        assert_eq!(
            read.state_entry,
            Some(TcpState::CLOSE_WAIT),
            "no change during the read"
        );
    }

    #[test]
    fn a_window_update_sent_during_a_read_is_the_reads() {
        let mut s = Script::new();
        s.handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(3, Side::Client, P | A, 100)
            .seg_at(3, Side::Server, A, 0)
            .call_at(10, Side::Server, CallKind::Read, "", 100)
            .seg_at(10, Side::Server, A, 0);
        let (mut calls, mut segs) = s.parts();
        segs[5].win = 4096; // the read freed the buffer: the window opens
        let read = calls
            .iter_mut()
            .find(|c| c.kind == CallKind::Read)
            .expect("read");
        read.end = 10 * MS + 200_000; // the window update left before it returned
        let t = correlate(calls, segs, Some(crate::testkit::addr(crate::testkit::S)));
        let (ri, read) = call_of(&t, CallKind::Read, Side::Server, 0);
        let (wu, seg) = nth_seg(&t, 5);
        assert!(matches!(seg.causes[0].origin, Origin::Released { event, .. } if event == ri));
        assert_eq!(read.caused, vec![wu], "not 'nothing on the wire'");
        assert_eq!(
            read.sent,
            vec![Sent {
                segment: wu,
                why: SentWhy::Released
            }]
        );
    }

    #[test]
    fn a_read_after_its_own_shut_rd_is_no_end_of_file() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_RD", 0)
            .call_at(4, Side::Client, CallKind::Read, "", 0)
            .run();
        let (shut, _) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
        let (_, read) = call_of(&t, CallKind::Read, Side::Client, 0);
        assert_eq!(read.eof, Some(Eof::ShutRd { call: shut }));
    }
}
