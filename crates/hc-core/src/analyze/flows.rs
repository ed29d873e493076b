//! The connection tracker: segments in capture order -> one close story per
//! connection, emitted as soon as the connection is over.
//!
//! Memory follows the connections open at once, not the file: a connection
//! that closed (both FINs acknowledged, or reset) stays in the table only for
//! [`LINGER_NS`] of capture time, long enough to explain a late RST or a
//! retransmitted FIN that hits its TIME_WAIT, and is then emitted and forgotten.
//!
//! Sequence numbers are compared modulo 2^32 (wrap-safe), and "new" data is
//! what advances the highest sequence number sent, so retransmissions and
//! out-of-order segments are not counted twice. A capture that starts
//! mid-connection counts from the first segment seen.

use super::story::{Close, End, HalfClose, RstKind, Story};
use crate::decode::fast::Seg;
use crate::model::{Nanos, TcpFlags};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// How long (capture time) a closed connection is kept for late segments:
/// Linux's TIME_WAIT lasts 60 s.
pub const LINGER_NS: Nanos = 60_000_000_000;

/// RSTs listed per connection; a flood beyond this is counted, not listed,
/// so one pathological connection cannot grow memory without bound.
const MAX_RSTS: usize = 16;

/// `a < b` in sequence space (RFC 1982 serial arithmetic).
#[inline]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[inline]
fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// One direction: what its sender has put on the wire.
#[derive(Default, Clone)]
struct Dir {
    seen: bool,
    syn_seq: Option<u32>,
    synack: bool,
    /// One past the highest sequence number sent (SYN and FIN included).
    next: u32,
    /// One past the highest data byte sent.
    data_end: u32,
    bytes: u64,
    fin: Option<(u32, Nanos)>,
    fin_repeats: u32,
    /// Highest acknowledgment this sender sent for the other direction.
    acked: Option<u32>,
    last_win: u16,
    rst: bool,
    /// `data_end` when the other end sent its first FIN: what came after is half-close data.
    data_end_at_peer_fin: Option<u32>,
    last_data_ns: Nanos,
    segments: u64,
}

/// A connection being tracked.
struct Conn {
    id: u64,
    ends: [SocketAddr; 2],
    first_ns: Nanos,
    last_ns: Nanos,
    d: [Dir; 2],
    fins: Vec<Close>,
    rsts: Vec<Close>,
    rsts_unlisted: u64,
    anomalies: Vec<String>,
    done_ns: Option<Nanos>,
    /// The previous segment of the connection: (from, flags, len).
    last: Option<(usize, u8, u32)>,
}

impl Conn {
    fn anomaly(&mut self, a: String) {
        if !self.anomalies.contains(&a) && self.anomalies.len() < 16 {
            self.anomalies.push(a);
        }
    }
}

/// What the tracker says about one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub conn: u64,
    /// For FINs and RSTs: the explanation (the pcapng comment).
    pub note: Option<String>,
}

type Key = (SocketAddr, SocketAddr);

fn key(s: &Seg) -> Key {
    if s.src <= s.dst {
        (s.src, s.dst)
    } else {
        (s.dst, s.src)
    }
}

/// The tracker. Feed segments in capture order with [`push`](Self::push).
#[derive(Default)]
pub struct Tracker {
    conns: FxHashMap<Key, Conn>,
    next_id: u64,
    /// Closed connections in the order they closed, to forget them after the linger.
    closed: VecDeque<(Nanos, Key, u64)>,
    now: Nanos,
    pushes: u64,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Connections currently held.
    pub fn open(&self) -> usize {
        self.conns.len()
    }

    /// Tracks one segment; connections that are over go to `emit`.
    pub fn push(&mut self, s: &Seg, emit: &mut impl FnMut(Story)) -> Pushed {
        self.pushes += 1;
        if s.ts > self.now {
            self.now = s.ts;
            if self.pushes % 1024 == 0 {
                self.expire(emit);
            }
        }
        let k = key(s);
        let f = TcpFlags(s.flags);
        // A new SYN on a 4-tuple whose connection is over starts a new one.
        // (Looked up only for SYNs: a second hash lookup per segment would cost ~10%.)
        let reuse = f.syn()
            && !f.ack()
            && match self.conns.get(&k) {
                Some(c) => {
                    let x = usize::from(c.ends[0] != s.src);
                    let other_syn = c.d[x].syn_seq.is_some_and(|q| q != s.seq);
                    c.done_ns.is_some() && (other_syn || c.d[x].syn_seq.is_none())
                        || other_syn && s.ts - c.last_ns > 1_000_000_000
                }
                _ => false,
            };
        if reuse {
            if let Some(c) = self.conns.remove(&k) {
                emit(finish(c));
            }
        }
        let id = &mut self.next_id;
        let c = self.conns.entry(k).or_insert_with(|| {
            *id += 1;
            new_conn(*id, s)
        });
        let was_done = c.done_ns.is_some();
        let note = update(c, s);
        if !was_done {
            if let Some(t) = c.done_ns {
                self.closed.push_back((t, k, c.id));
            }
        }
        Pushed { conn: c.id, note }
    }

    /// Emits connections closed longer than the linger ago.
    fn expire(&mut self, emit: &mut impl FnMut(Story)) {
        while let Some(&(t, k, id)) = self.closed.front() {
            if self.now - t < LINGER_NS {
                break;
            }
            self.closed.pop_front();
            if self.conns.get(&k).is_some_and(|c| c.id == id) {
                if let Some(c) = self.conns.remove(&k) {
                    emit(finish(c));
                }
            }
        }
    }

    /// Emits every connection still held, in the order they were first seen.
    pub fn finish(self, emit: &mut impl FnMut(Story)) {
        let mut rest: Vec<Conn> = self.conns.into_values().collect();
        rest.sort_by_key(|c| c.id);
        for c in rest {
            emit(finish(c));
        }
    }

    /// Emits connections that closed (for `watch`: print as soon as they are over).
    pub fn take_closed(&mut self, emit: &mut impl FnMut(Story)) {
        while let Some((_, k, id)) = self.closed.pop_front() {
            if self.conns.get(&k).is_some_and(|c| c.id == id) {
                if let Some(c) = self.conns.remove(&k) {
                    emit(finish(c));
                }
            }
        }
    }
}

fn new_conn(id: u64, s: &Seg) -> Conn {
    let f = TcpFlags(s.flags);
    // `a` is the client end (crate::correlate::classify): the one that sent
    // the SYN; without one, the end with the higher port (ephemeral ports are high).
    let a_is_src = crate::correlate::classify::client_end(s.src, s.dst, f, &[]).0 == s.src;
    let ends = if a_is_src {
        [s.src, s.dst]
    } else {
        [s.dst, s.src]
    };
    let mut c = Conn {
        id,
        ends,
        first_ns: s.ts,
        last_ns: s.ts,
        d: [Dir::default(), Dir::default()],
        fins: Vec::new(),
        rsts: Vec::new(),
        rsts_unlisted: 0,
        anomalies: Vec::new(),
        done_ns: None,
        last: None,
    };
    if !f.syn() {
        c.anomaly("no SYN captured: the capture started mid-connection".into());
    }
    c
}

/// Applies one segment; returns the note for a FIN or RST.
fn update(c: &mut Conn, s: &Seg) -> Option<String> {
    let f = TcpFlags(s.flags);
    let x = usize::from(c.ends[0] != s.src);
    let o = 1 - x;
    let me = End::from_idx(x);
    let peer = me.other();
    c.last_ns = c.last_ns.max(s.ts);
    let syn = u32::from(f.syn());
    {
        let d = &mut c.d[x];
        d.segments += 1;
        if f.syn() && d.syn_seq.is_none() {
            d.syn_seq = Some(s.seq);
            d.seen = false;
        }
        if f.syn() && f.ack() {
            d.synack = true;
        }
        if !d.seen {
            d.seen = true;
            d.next = s.seq.wrapping_add(syn);
            d.data_end = d.next;
        }
    }
    let start = s.seq.wrapping_add(syn);
    let dend = start.wrapping_add(s.len);
    let mut note = None;

    // Data: count what advances the highest byte sent.
    if s.len > 0 && after(dend, c.d[x].data_end) {
        let d = &mut c.d[x];
        let from = if after(start, d.data_end) {
            start
        } else {
            d.data_end
        };
        d.bytes += u64::from(dend.wrapping_sub(from));
        d.data_end = dend;
        d.last_data_ns = s.ts;
        if let Some((fseq, _)) = d.fin {
            if after(dend, fseq) {
                c.anomaly(format!(
                    "data after FIN: {} sent new data beyond its own FIN",
                    me.name()
                ));
            }
        }
    }
    {
        let d = &mut c.d[x];
        let end = dend.wrapping_add(u32::from(f.fin()));
        if after(end, d.next) {
            d.next = end;
        }
        if f.ack() && d.acked.is_none_or(|p| after(s.ack, p)) {
            d.acked = Some(s.ack);
        }
    }

    if f.fin() {
        note = Some(fin(c, s, x, dend));
    }
    if f.rst() {
        let (kind, why) = classify_rst(c, s, x);
        let text = format!("INFERRED ({}): {why}", kind.label());
        note = Some(match note {
            Some(n) => format!("{n}; RST: {text}"),
            None => format!("RST from {}: {text}", me.name()),
        });
        if c.rsts.len() < MAX_RSTS {
            c.rsts.push(Close {
                from: me,
                t_ns: s.ts,
                why: text,
                kind: Some(kind),
            });
        } else {
            c.rsts_unlisted += 1;
        }
        c.d[x].rst = true;
        if c.done_ns.is_none() {
            c.done_ns = Some(s.ts);
        }
    }
    if f.fin() || f.rst() {
        for (i, e) in [(x, me), (o, peer)] {
            // This segment's own window does not count: only what was
            // advertised before the close.
            let prior = if i == x {
                c.d[i].segments > 1
            } else {
                c.d[i].segments > 0
            };
            if prior && c.d[i].last_win == 0 {
                c.anomaly(format!(
                    "zero window at close: {} last advertised a window of 0",
                    e.name()
                ));
            }
        }
    }
    if !f.rst() {
        c.d[x].last_win = s.win;
    }

    // Over on the wire once both FINs are acknowledged.
    if c.done_ns.is_none() {
        if let (Some((fa, _)), Some((fb, _))) = (c.d[0].fin, c.d[1].fin) {
            let acked = |d: &Dir, fseq: u32| d.acked.is_some_and(|a| after(a, fseq));
            if acked(&c.d[1], fa) && acked(&c.d[0], fb) {
                c.done_ns = Some(s.ts);
            }
        }
    }
    c.last = Some((x, s.flags, s.len));
    note
}

/// Records a FIN and says what it means.
fn fin(c: &mut Conn, s: &Seg, x: usize, fseq: u32) -> String {
    let me = End::from_idx(x);
    let peer = me.other();
    let o = 1 - x;
    match c.d[x].fin {
        Some((seq, t)) if seq == fseq => {
            c.d[x].fin_repeats += 1;
            let n = c.d[x].fin_repeats;
            c.anomaly(format!("repeated FIN from {}", me.name()));
            format!(
                "FIN from {} sent again ({n}x, first {} earlier): not yet acknowledged by {}",
                me.name(),
                crate::time::ms(s.ts - t),
                peer.name()
            )
        }
        Some(_) => {
            c.anomaly(format!(
                "FIN from {} at a different sequence number than its first FIN",
                me.name()
            ));
            format!(
                "FIN from {} at a new sequence number (a second FIN)",
                me.name()
            )
        }
        None => {
            c.d[x].fin = Some((fseq, s.ts));
            let why = match c.d[o].fin {
                None => {
                    c.d[o].data_end_at_peer_fin = Some(c.d[o].data_end);
                    format!(
                        "first FIN: {} closed its sending side first (close() or shutdown(SHUT_WR)) after sending {} B; \
                         {} can still send",
                        me.name(),
                        c.d[x].bytes,
                        peer.name()
                    )
                }
                Some((_, t)) => {
                    let after_bytes = c.d[x]
                        .data_end_at_peer_fin
                        .map_or(0, |e| u64::from(c.d[x].data_end.wrapping_sub(e)));
                    let acked_peer = c.d[x]
                        .acked
                        .zip(c.d[o].fin)
                        .is_some_and(|(a, (pf, _))| after(a, pf));
                    let simultaneous = if acked_peer {
                        ""
                    } else {
                        " (before acknowledging it: simultaneous close)"
                    };
                    if after_bytes > 0 {
                        format!(
                            "{} answers {}'s FIN {} later{simultaneous}, after sending {after_bytes} B more (half-close)",
                            me.name(),
                            peer.name(),
                            crate::time::ms(s.ts - t)
                        )
                    } else {
                        format!(
                            "{} answers {}'s FIN {} later{simultaneous} (passive close)",
                            me.name(),
                            peer.name(),
                            crate::time::ms(s.ts - t)
                        )
                    }
                }
            };
            c.fins.push(Close {
                from: me,
                t_ns: s.ts,
                why: why.clone(),
                kind: None,
            });
            why
        }
    }
}

/// Why `x` most likely sent this RST, from what the wire showed so far.
fn classify_rst(c: &Conn, s: &Seg, x: usize) -> (RstKind, String) {
    let o = 1 - x;
    let me = End::from_idx(x).name();
    let peer = End::from_idx(x).other().name();
    let f = TcpFlags(s.flags);
    let (dx, dp) = (&c.d[x], &c.d[o]);
    let rst_ack = if f.ack() {
        "the RST carries an ACK of what it received, as a socket resetting its own connection does"
    } else {
        "the RST has no ACK flag and takes its sequence number from the segment it answers, as the kernel's stateless reply does"
    };
    // Segments of x before this one (this one is already counted).
    let x_sent_before = dx.segments > 1;
    let last_from_peer = c.last.is_some_and(|(from, _, _)| from == o);
    let last_peer_had_data = c
        .last
        .is_some_and(|(from, fl, len)| from == o && (len > 0 || TcpFlags(fl).fin()));
    if dx.rst {
        return (
            RstKind::Repeat,
            format!("{me} had already reset the connection; this RST answers a further segment from {peer}"),
        );
    }
    if dp.syn_seq.is_some() && !dp.synack && !dx.synack && !x_sent_before {
        return (
            RstKind::Refused,
            format!(
                "answers {peer}'s SYN: nothing was listening on {} (connection refused), or a firewall rejected it",
                c.ends[x]
            ),
        );
    }
    if !x_sent_before && !dp.seen {
        return (
            RstKind::Unknown,
            "nothing else of this connection was captured before this RST".into(),
        );
    }
    if dx.fin.is_some() && dp.fin.is_some() {
        return (
            RstKind::AfterFins,
            format!(
                "both ends had sent their FIN; a segment from {peer} reached a socket of {me} that was already gone \
                 (closed, or a lost last ACK retransmitted into TIME_WAIT's end); {rst_ack}"
            ),
        );
    }
    if let Some((_, fin_t)) = dx.fin {
        let late = dp.last_data_ns > fin_t || last_peer_had_data;
        if late {
            let bytes = dp
                .data_end_at_peer_fin
                .map_or(0, |e| u64::from(dp.data_end.wrapping_sub(e)));
            return (
                RstKind::DataAfterClose,
                format!(
                    "answers data from {peer} that arrived after {me} had closed ({me}'s FIN was {} earlier; \
                     {bytes} B came after it): {me} called close(), not shutdown(SHUT_WR), so the data could not be \
                     delivered; {rst_ack}",
                    crate::time::ms(s.ts - fin_t)
                ),
            );
        }
    }
    if !f.ack() && last_from_peer {
        return (
            RstKind::NoSocket,
            format!(
                "answers {peer}'s last segment: {me} had no socket that accepted it (already closed or aborted, \
                 or the host restarted); {rst_ack}"
            ),
        );
    }
    let received = dp.bytes;
    let after_own_fin = if dx.fin.is_some() {
        " after its own FIN".to_string()
    } else {
        " instead of a FIN".to_string()
    };
    let detail = if received > 0 {
        format!(
            "{me} had received {received} B from {peer}: close() with data still unread discards it and resets, \
             or SO_LINGER 0 was set"
        )
    } else {
        format!("{me} had received no data: SO_LINGER with a 0 timeout, or the application aborted the connection")
    };
    (
        RstKind::Abortive,
        format!("abortive close: {me} sent an RST{after_own_fin}; {detail}; {rst_ack}"),
    )
}

/// The finished story of a connection.
fn finish(c: Conn) -> Story {
    let mut c = c;
    // The active closer: whoever ended their side first (FIN, or an RST that
    // was not the answer to a SYN).
    let first_fin = c.fins.first().map(|f| (f.t_ns, f.from));
    let first_rst = c
        .rsts
        .iter()
        .find(|r| r.kind != Some(RstKind::Refused))
        .map(|r| (r.t_ns, r.from));
    let active_closer = match (first_fin, first_rst) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b.1 } else { a.1 }),
        (Some(a), None) | (None, Some(a)) => Some(a.1),
        (None, None) => None,
    };
    let half_close = c.fins.first().and_then(|first| {
        let closer = first.from.idx();
        let other = &c.d[1 - closer];
        let bytes = other
            .data_end_at_peer_fin
            .map_or(0, |e| u64::from(other.data_end.wrapping_sub(e)));
        // Data the closer refused with an RST was not a half-close.
        let refused = c
            .rsts
            .iter()
            .any(|r| r.from.idx() == closer && r.kind == Some(RstKind::DataAfterClose));
        if bytes == 0 || refused {
            return None;
        }
        let end = c
            .fins
            .iter()
            .find(|f| f.from.idx() != closer)
            .map(|f| f.t_ns)
            .or_else(|| c.rsts.first().map(|r| r.t_ns))
            .unwrap_or(other.last_data_ns);
        Some(HalfClose {
            bytes_after_first_fin: bytes,
            duration_ns: end - first.t_ns,
        })
    });
    if c.rsts_unlisted > 0 {
        let n = c.rsts_unlisted;
        c.anomaly(format!("{n} more RSTs not listed"));
    }
    let closed = c.done_ns.is_some();
    if !closed {
        c.anomaly(
            "no close seen: the capture ended (or the connection went idle) before it closed"
                .into(),
        );
    }
    Story {
        id: c.id,
        a: c.ends[0],
        b: c.ends[1],
        first_ns: c.first_ns,
        last_ns: c.last_ns,
        syn_captured: c.d[0].syn_seq.is_some(),
        segments: c.d[0].segments + c.d[1].segments,
        bytes_a_to_b: c.d[0].bytes,
        bytes_b_to_a: c.d[1].bytes,
        fins: c.fins,
        rsts: c.rsts,
        active_closer,
        half_close,
        anomalies: c.anomalies,
        closed,
    }
}

#[cfg(test)]
#[path = "flows_tests.rs"]
mod tests;
