//! The connection tracker: segments in capture order -> one close story per
//! connection, emitted as soon as the connection is over.
//!
//! Memory follows the connections open at once, not the file: a connection
//! that closed (both FINs acknowledged, or reset) stays in the table only for
//! [`LINGER_NS`] of capture time, long enough to explain a late RST or a
//! retransmitted FIN that hits its TIME_WAIT, and is then emitted and forgotten.
//!
//! Sequence numbers are compared modulo 2^32 (wrap-safe). Each data byte is
//! counted once: what advances the highest sequence number sent, and what
//! later fills a gap left below it (a segment the capture saw late), so
//! retransmissions are not counted twice and reordering loses nothing. A
//! capture that starts mid-connection counts from the first segment seen.
//! The payload of an RST is not stream data (RFC 9293 3.5.3: at most a
//! diagnostic) and is not counted.

use super::story::{Close, Discarded, End, HalfClose, RstKind, Story, Unacked};
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

/// Gaps in a direction's data remembered, to count the bytes that fill them.
const MAX_HOLES: usize = 16;

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
    /// When this end last sent a SYN (first or retried).
    last_syn_ns: Nanos,
    synack: bool,
    /// One past the highest sequence number sent (SYN and FIN included).
    next: u32,
    /// One past the highest data byte sent.
    data_end: u32,
    bytes: u64,
    /// Ranges below `data_end` not seen yet: [start, end).
    holes: Vec<(u32, u32)>,
    fin: Option<(u32, Nanos)>,
    fin_frame: u64,
    fin_repeats: u32,
    /// Highest acknowledgment this sender sent for the other direction.
    acked: Option<u32>,
    last_win: u16,
    /// A segment other than an RST with its window captured was seen.
    win_known: bool,
    /// Any segment other than an RST (a socket speaking, not only resets).
    sent_non_rst: bool,
    /// TTL of the last segment other than an RST.
    ttl: Option<u8>,
    rst: bool,
    /// `data_end` when the other end sent its first FIN: what came after is half-close data.
    data_end_at_peer_fin: Option<u32>,
    last_data_ns: Nanos,
    last_data_frame: u64,
    segments: u64,
}

impl Dir {
    /// Bytes this sender sent that `acked` (the other end's highest ACK)
    /// does not cover; `None` when the other end's ACKs are unknown.
    fn unacked(&self, acked: Option<u32>, other_seen: bool) -> Option<u64> {
        match acked {
            Some(a) if after(self.data_end, a) => Some(u64::from(self.data_end.wrapping_sub(a))),
            Some(_) => Some(0),
            None if self.bytes == 0 => Some(0),
            None if !other_seen => None,
            // The other end sent segments but never an ACK: nothing acknowledged.
            None => Some(self.bytes),
        }
    }

    /// Counts the bytes of `[start, end)` that fill a gap below `data_end`.
    fn fill(&mut self, start: u32, end: u32) -> u64 {
        let mut got = 0u64;
        let mut i = 0;
        while i < self.holes.len() {
            let (hs, he) = self.holes[i];
            let (s, e) = (
                if after(start, hs) { start } else { hs },
                if before(end, he) { end } else { he },
            );
            if !after(e, s) {
                i += 1;
                continue;
            }
            got += u64::from(e.wrapping_sub(s));
            // What is left of the hole: before and after the filled part.
            let mut rest = Vec::new();
            if after(s, hs) {
                rest.push((hs, s));
            }
            if before(e, he) {
                rest.push((e, he));
            }
            self.holes.remove(i);
            // The pieces lie outside [start, end): nothing more to fill in them.
            for r in rest {
                self.holes.insert(i, r);
                i += 1;
            }
        }
        // Filling the middle of a gap splits it: keep the newest gaps only.
        while self.holes.len() > MAX_HOLES {
            self.holes.remove(0);
        }
        got
    }
}

/// A connection being tracked.
struct Conn {
    id: u64,
    ends: [SocketAddr; 2],
    first_ns: Nanos,
    last_ns: Nanos,
    first_frame: u64,
    last_frame: u64,
    d: [Dir; 2],
    fins: Vec<Close>,
    rsts: Vec<Close>,
    /// TTL of each listed RST (evidence when the RST turns out not to be the end's).
    rst_ttls: Vec<u8>,
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
    /// Connections in the order they closed, to forget them after the linger.
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
            // A connection that went on after an RST (forged, ignored) is
            // no longer closed; it is queued again when it closes.
            if self
                .conns
                .get(&k)
                .is_some_and(|c| c.id == id && c.done_ns == Some(t))
            {
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
        while let Some((t, k, id)) = self.closed.pop_front() {
            if self
                .conns
                .get(&k)
                .is_some_and(|c| c.id == id && c.done_ns == Some(t))
            {
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
        first_frame: s.frame,
        last_frame: s.frame,
        d: [Dir::default(), Dir::default()],
        fins: Vec::new(),
        rsts: Vec::new(),
        rst_ttls: Vec::new(),
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
    c.last_frame = c.last_frame.max(s.frame);
    let syn = u32::from(f.syn());
    let peer_fin = c.d[o].fin.is_some();
    // What this segment moves forward, to tell whether the end that sent
    // an RST is still talking (then that RST was not its socket's last word).
    let acked_before = c.d[x].acked;
    let synack_before = c.d[x].synack;
    let fin_before = c.d[x].fin.is_some();
    {
        let d = &mut c.d[x];
        d.segments += 1;
        if f.syn() && d.syn_seq.is_none() {
            d.syn_seq = Some(s.seq);
            d.seen = false;
        }
        if f.syn() {
            d.last_syn_ns = s.ts;
        }
        if f.syn() && f.ack() {
            d.synack = true;
        }
        if !d.seen {
            d.seen = true;
            d.next = s.seq.wrapping_add(syn);
            d.data_end = d.next;
            // The other end's FIN came before anything of this direction:
            // half-close data counts from here.
            if peer_fin && d.data_end_at_peer_fin.is_none() {
                d.data_end_at_peer_fin = Some(d.data_end);
            }
        }
    }
    let start = s.seq.wrapping_add(syn);
    let len = if f.rst() { 0 } else { s.len };
    let dend = start.wrapping_add(len);
    let mut note = None;

    // Data: count what advances the highest byte sent, and what fills a gap below it.
    let mut new_data = false;
    if len > 0 {
        let d = &mut c.d[x];
        if before(start, d.data_end) && !d.holes.is_empty() {
            let top = if before(dend, d.data_end) {
                dend
            } else {
                d.data_end
            };
            d.bytes += d.fill(start, top);
        }
        if after(dend, d.data_end) {
            let from = if after(start, d.data_end) {
                // Bytes between were not captured (yet): remember the gap.
                if d.holes.len() == MAX_HOLES {
                    d.holes.remove(0);
                }
                d.holes.push((d.data_end, start));
                start
            } else {
                d.data_end
            };
            d.bytes += u64::from(dend.wrapping_sub(from));
            d.data_end = dend;
            d.last_data_ns = s.ts;
            d.last_data_frame = s.frame;
            new_data = true;
            if let Some((fseq, _)) = d.fin {
                if after(dend, fseq) {
                    c.anomaly(format!(
                        "data after FIN: {} sent new data beyond its own FIN",
                        me.name()
                    ));
                }
            }
        }
    }
    {
        let d = &mut c.d[x];
        let end = dend.wrapping_add(u32::from(f.fin()));
        if after(end, d.next) {
            d.next = end;
        }
        // An RST's acknowledgment says what arrived, not what was taken:
        // the data it covers is discarded with the connection (Windows
        // acknowledges data that reaches a closed socket in the RST itself).
        if f.ack() && !f.rst() && d.acked.is_none_or(|p| after(s.ack, p)) {
            d.acked = Some(s.ack);
        }
    }

    // An end that reset the connection and then moves it forward (answers
    // the SYN, sends new data, acknowledges more, closes) was not reset:
    // its earlier RSTs did not end the connection.
    if !f.rst() && c.d[x].rst {
        let progress = (f.syn() && f.ack() && !synack_before)
            || new_data
            || (f.ack() && acked_before.is_none_or(|p| after(s.ack, p)))
            || (f.fin() && !fin_before);
        if progress {
            went_on(c, s, x);
        }
    }

    if f.fin() {
        note = Some(fin(c, s, x, dend));
    }
    if f.rst() {
        let (kind, why) = classify_rst(c, s, x);
        let discarded = discarded(c, x);
        let mut text = format!("INFERRED ({}): {why}", kind.label());
        if s.len > 0 {
            text.push_str(&format!(
                "; the RST carries {} B of data (a diagnostic at most, not stream data: not counted)",
                s.len
            ));
        }
        note = Some(match note {
            Some(n) => format!("{n}; RST: {text}"),
            None => format!("RST from {}: {text}", me.name()),
        });
        if c.rsts.len() < MAX_RSTS {
            c.rsts.push(Close {
                from: me,
                t_ns: s.ts,
                frame: s.frame,
                why: text,
                kind: Some(kind),
                discarded: Some(discarded),
            });
            c.rst_ttls.push(s.ttl);
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
            // advertised before the close (by a segment other than an RST).
            if c.d[i].win_known && c.d[i].last_win == 0 {
                c.anomaly(format!(
                    "zero window at close: {} last advertised a window of 0",
                    e.name()
                ));
            }
        }
    }
    if !f.rst() {
        let d = &mut c.d[x];
        d.sent_non_rst = true;
        d.ttl = Some(s.ttl);
        if s.has_window() {
            d.last_win = s.win;
            d.win_known = true;
        }
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

/// `x` moved the connection forward after its RSTs: they were not the end.
fn went_on(c: &mut Conn, s: &Seg, x: usize) {
    let me = End::from_idx(x);
    let what = if TcpFlags(s.flags).syn() {
        "a SYN-ACK"
    } else if s.len > 0 {
        "new data"
    } else if TcpFlags(s.flags).fin() {
        "a FIN"
    } else {
        "an acknowledgment of new data"
    };
    let ttl_now = s.ttl;
    let syn_of_peer = c.d[1 - x].syn_seq;
    let peer_syn_ns = c.d[1 - x].last_syn_ns;
    for (r, &ttl) in c.rsts.iter_mut().zip(&c.rst_ttls) {
        if r.from != me || r.kind == Some(RstKind::Ignored) {
            continue;
        }
        let retried = r.kind == Some(RstKind::Refused) && peer_syn_ns > r.t_ns;
        let cause = if retried {
            format!(
                "{} sent its SYN again after it (Windows retries a refused connect) and this time got an answer",
                me.other().name()
            )
        } else {
            format!(
                "it was forged (injected by a third party with {}'s address) or its sequence number was \
                 outside the window and the receiver dropped it",
                me.name()
            )
        };
        let mut why = format!(
            "INFERRED (ignored): the connection went on after this RST: {} sent {what} {} later (frame {}), \
             so the RST did not end it: {cause}",
            me.name(),
            crate::time::ms(s.ts - r.t_ns),
            s.frame,
        );
        if ttl != ttl_now {
            why.push_str(&format!(
                "; its TTL ({ttl}) differs from that of {}'s next segment ({ttl_now}), as a packet from elsewhere would",
                me.name()
            ));
        }
        if r.kind == Some(RstKind::Refused) && !retried {
            if let Some(isn) = syn_of_peer {
                why.push_str(&format!(
                    " (an RST answering a SYN is accepted only if it acknowledges the SYN, ack {}; see \
                     RFC 9293 3.10.7.3)",
                    isn.wrapping_add(1)
                ));
            }
        }
        r.why = why;
        r.kind = Some(RstKind::Ignored);
    }
    c.d[x].rst = false;
    // Closed only by what still stands: both FINs acknowledged, or a later RST.
    c.done_ns = None;
    c.anomaly(format!(
        "{} sent an RST and then went on: the RST was forged or not accepted",
        me.name()
    ));
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
            c.d[x].fin_frame = s.frame;
            let why = match c.d[o].fin {
                None => {
                    if c.d[o].seen {
                        c.d[o].data_end_at_peer_fin = Some(c.d[o].data_end);
                    }
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
                    let t = crate::time::ms(s.ts - t);
                    let more = if after_bytes > 0 {
                        format!(", after sending {after_bytes} B more")
                    } else {
                        String::new()
                    };
                    match (acked_peer, after_bytes > 0) {
                        (false, _) => format!(
                            "{} sent its FIN {t} after {}'s without acknowledging it{more}: the FINs crossed \
                             (a simultaneous close)",
                            me.name(),
                            peer.name()
                        ),
                        (true, true) => {
                            format!("{} answers {}'s FIN {t} later{more}", me.name(), peer.name())
                        }
                        (true, false) => format!(
                            "{} answers {}'s FIN {t} later (passive close)",
                            me.name(),
                            peer.name()
                        ),
                    }
                }
            };
            c.fins.push(Close {
                from: me,
                t_ns: s.ts,
                frame: s.frame,
                why: why.clone(),
                kind: None,
                discarded: None,
            });
            why
        }
    }
}

/// What an RST from `x` throws away: data in flight either way that the
/// receiving end had not acknowledged.
fn discarded(c: &Conn, x: usize) -> Discarded {
    let o = 1 - x;
    let (dx, dp) = (&c.d[x], &c.d[o]);
    let span = |d: &Dir, bytes: Option<u64>| {
        bytes.map(|b| Unacked {
            bytes: b,
            last_frame: (b > 0).then_some(d.last_data_frame),
        })
    };
    Discarded {
        sent: span(dx, dx.unacked(dp.acked, dp.seen)),
        received: if dp.seen {
            span(dp, dp.unacked(dx.acked, dx.sent_non_rst))
        } else {
            None
        },
    }
}

/// Why `x` most likely sent this RST, from what the wire showed so far.
fn classify_rst(c: &Conn, s: &Seg, x: usize) -> (RstKind, String) {
    let o = 1 - x;
    let me = End::from_idx(x).name();
    let peer = End::from_idx(x).other().name();
    let f = TcpFlags(s.flags);
    let (dx, dp) = (&c.d[x], &c.d[o]);
    // Segments of x before this one (this one is already counted).
    let x_sent_before = dx.segments > 1;
    let last_from_peer = c.last.is_some_and(|(from, _, _)| from == o);
    let rst_ack = if f.ack() {
        "the RST carries an ACK of what it received, as a socket resetting its own connection does"
    } else if last_from_peer {
        "the RST has no ACK flag and takes its sequence number from the segment it answers, as the kernel's stateless reply does"
    } else if !dp.seen {
        "the RST has no ACK flag: nothing from the other end had been captured to acknowledge"
    } else {
        "the RST has no ACK flag"
    };
    let last_peer_syn = c
        .last
        .is_some_and(|(from, fl, _)| from == o && TcpFlags(fl).syn() && !TcpFlags(fl).ack());
    let last_peer_had_data = c
        .last
        .is_some_and(|(from, fl, len)| from == o && (len > 0 || TcpFlags(fl).fin()));
    // An end that never answered the SYN and only ever sent RSTs refuses
    // each SYN (a retried SYN gets its own RST).
    if dp.syn_seq.is_some()
        && !dp.synack
        && !dx.synack
        && !dx.sent_non_rst
        && (!x_sent_before || last_peer_syn)
    {
        let again = if dx.rst {
            " again (the SYN was retried)"
        } else {
            ""
        };
        return (
            RstKind::Refused,
            format!(
                "answers {peer}'s SYN{again}: nothing was listening on {} (connection refused), or a firewall rejected it",
                c.ends[x]
            ),
        );
    }
    if dx.rst {
        let answers = if last_from_peer {
            format!("this RST answers a further segment from {peer}")
        } else {
            format!("nothing from {peer} came in between: the RST was sent again")
        };
        return (
            RstKind::Repeat,
            format!("{me} had already reset the connection; {answers}"),
        );
    }
    if !x_sent_before && !dp.seen {
        return (
            RstKind::Unknown,
            "nothing else of this connection was captured before this RST".into(),
        );
    }
    // Data from the peer that x never acknowledged, after x had closed:
    // x's socket was gone (close(), not shutdown(SHUT_WR)), so it could not
    // take the data. Checked before "both FINs": crossing FINs do not make
    // unacknowledged data any less discarded.
    let unacked_in = dp.unacked(dx.acked, dx.sent_non_rst).unwrap_or(0);
    if let Some((_, fin_t)) = dx.fin {
        let late = unacked_in > 0
            || (dx.acked.is_none() && (dp.last_data_ns > fin_t || last_peer_had_data));
        if late {
            let both = if dp.fin.is_some() {
                format!(
                    "; {peer}'s FIN came too (the FINs crossed), which does not deliver the data"
                )
            } else {
                String::new()
            };
            let what = if unacked_in > 0 {
                format!(
                    "{unacked_in} B from {peer} that {me} never acknowledged (the last in frame {})",
                    dp.last_data_frame
                )
            } else {
                format!("data from {peer} that arrived after {me}'s FIN")
            };
            return (
                RstKind::DataAfterClose,
                format!(
                    "answers {what}: {me} had closed (its FIN, frame {}, was {} before this RST) and could not take \
                     them{both}: {me} called close(), not shutdown(SHUT_WR), so the data could not be delivered; {rst_ack}",
                    dx.fin_frame,
                    crate::time::ms(s.ts - fin_t)
                ),
            );
        }
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
        let unacked = if unacked_in > 0 {
            format!(" ({unacked_in} B of it never acknowledged)")
        } else {
            String::new()
        };
        format!(
            "{me} had received {received} B from {peer}{unacked}: close() with data still unread discards it and resets, \
             or SO_LINGER 0 was set"
        )
    } else if !dp.seen && dx.syn_seq.is_some() && !dx.synack {
        format!(
            "nothing from {peer} had been captured: {me} gave up its connect before any answer \
             (the application aborted it, or SO_LINGER 0 was set)"
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
    // neither answered a SYN nor was ignored).
    let first_fin = c.fins.first().map(|f| (f.t_ns, f.from));
    let first_rst = c
        .rsts
        .iter()
        .find(|r| !matches!(r.kind, Some(RstKind::Refused | RstKind::Ignored)))
        .map(|r| (r.t_ns, r.from));
    let active_closer = match (first_fin, first_rst) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b.1 } else { a.1 }),
        (Some(a), None) | (None, Some(a)) => Some(a.1),
        (None, None) => None,
    };
    let half_close = c.fins.first().and_then(|first| {
        let closer = first.from.idx();
        let other = &c.d[1 - closer];
        let mark = other.data_end_at_peer_fin?;
        // Only what the closer accepted (acknowledged) was a half-close;
        // without any ACK from the closer captured, what was sent.
        let (end, refused) = match c.d[closer].acked {
            Some(a) if before(a, other.data_end) => (a, false),
            Some(_) => (other.data_end, false),
            None => (
                other.data_end,
                // Data the closer refused with an RST was not a half-close.
                c.rsts
                    .iter()
                    .any(|r| r.from.idx() == closer && r.kind == Some(RstKind::DataAfterClose)),
            ),
        };
        let bytes = if after(end, mark) {
            u64::from(end.wrapping_sub(mark))
        } else {
            0
        };
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
        first_frame: c.first_frame,
        last_frame: c.last_frame,
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
