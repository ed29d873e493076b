//! Pure ACKs (no data, no SYN, FIN or RST): the kernel's.
//!
//! What an ACK says is read from its acknowledgment number against what
//! the other side has sent: the SYN, data and FIN it newly covers. For each
//! part covered, the ACK answers the copy the receiver actually got (a
//! dropped copy is never acknowledged; a held one only once it was let
//! through): the latest copy delivered before the ACK. The latest part
//! covered is what the ACK "answers".
//!
//! An ACK that covers nothing new is labelled as tshark's TCP analysis
//! labels it ([`flow`], the same rules as Wireshark's `tcp.analysis`
//! flags): a keep-alive (one byte before the next to send — when the
//! receiver's window is 0 this is Linux's window probe), the answer to such
//! a probe, a window update (the window changed, numbers did not), a
//! duplicate ACK (nothing changed), or nothing of these. A segment that
//! carries something else and also acknowledges something new says so too
//! ([`super::SegEvent::also_acks`]).

use super::{Cause, Correlator, Event, Origin, Part, SegCtx};
use crate::model::{Nanos, Side};

/// What a pure ACK is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckCause {
    /// It acknowledges these parts of the other side's sequence space.
    Of(AckOf),
    /// One byte before the next to send (tshark: Keep-Alive). When the
    /// receiver's window is 0, Linux sends exactly this as its window probe.
    KeepAlive { window_probe: bool },
    /// It answers this probe (a keep-alive or a zero-window probe) and
    /// acknowledges nothing new.
    ProbeAck { probe: usize },
    /// The window changed, the numbers did not (tshark: Window Update); in
    /// bytes where the scale is known.
    WindowUpdate { from: u32, to: u32 },
    /// Nothing new: it answers this re-sent copy of bytes (or a FIN) the
    /// receiver already had (tshark: Dup ACK; Linux adds a D-SACK block).
    Resent { copy: usize },
    /// Nothing changed (tshark: Dup ACK).
    Duplicate,
    /// It acknowledges nothing new and is none of the above.
    Nothing,
}

/// The parts of the other side's sequence space an acknowledgment newly
/// covers, in sequence order; `last` is the latest segment covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckOf {
    pub last: usize,
    pub covers: Vec<Acked>,
}

/// One part an acknowledgment covers, named by the copy the receiver got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acked {
    /// The SYN (or SYN-ACK) at this event.
    Syn { event: usize, syn_ack: bool },
    /// Data of these segments, this many bytes in all.
    Data { events: Vec<usize>, bytes: u32 },
    /// The FIN at this event.
    Fin { event: usize },
}

impl AckOf {
    /// Covers a SYN or a FIN (not only data).
    pub fn covers_control(&self) -> bool {
        self.covers
            .iter()
            .any(|a| matches!(a, Acked::Syn { .. } | Acked::Fin { .. }))
    }

    /// Every segment event it names.
    pub fn events(&self) -> Vec<usize> {
        let mut v = Vec::new();
        for a in &self.covers {
            match a {
                Acked::Syn { event, .. } | Acked::Fin { event } => v.push(*event),
                Acked::Data { events, .. } => v.extend(events),
            }
        }
        v
    }
}

/// tshark's TCP analysis flags of a segment (Wireshark's `tcp.analysis.*`),
/// computed with its rules so the two tools agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    ZeroWindow,
    ZeroWindowProbe,
    ZeroWindowProbeAck,
    KeepAlive,
    KeepAliveAck,
    WindowUpdate,
    /// Data up to the right edge of the receiver's advertised window.
    WindowFull,
    DuplicateAck,
}

impl Flow {
    /// tshark's name of the flag, as Wireshark's Info column shows it.
    pub fn name(self) -> &'static str {
        match self {
            Flow::ZeroWindow => "ZeroWindow",
            Flow::ZeroWindowProbe => "ZeroWindowProbe",
            Flow::ZeroWindowProbeAck => "ZeroWindowProbeAck",
            Flow::KeepAlive => "Keep-Alive",
            Flow::KeepAliveAck => "Keep-Alive ACK",
            Flow::WindowUpdate => "Window Update",
            Flow::WindowFull => "Window Full",
            Flow::DuplicateAck => "Dup ACK",
        }
    }

    /// The `tcp.analysis` field tshark sets for it.
    pub fn tshark_field(self) -> &'static str {
        match self {
            Flow::ZeroWindow => "tcp.analysis.zero_window",
            Flow::ZeroWindowProbe => "tcp.analysis.zero_window_probe",
            Flow::ZeroWindowProbeAck => "tcp.analysis.zero_window_probe_ack",
            Flow::KeepAlive => "tcp.analysis.keep_alive",
            Flow::KeepAliveAck => "tcp.analysis.keep_alive_ack",
            Flow::WindowUpdate => "tcp.analysis.window_update",
            Flow::WindowFull => "tcp.analysis.window_full",
            Flow::DuplicateAck => "tcp.analysis.duplicate_ack",
        }
    }
}

/// What acknowledgment `rel_ack` (relative, from `from`, sent at `ts`)
/// newly covers of the other side's sequence space.
pub(super) fn newly_acked(
    c: &Correlator,
    conn: usize,
    from: Side,
    rel_ack: u32,
    ts: Nanos,
) -> Option<AckOf> {
    let me = c.dirs.get(&(conn, from))?;
    let peer = c.dirs.get(&(conn, from.other()))?;
    let prev = me.acked.unwrap_or(0);
    if rel_ack <= prev && me.acked.is_some() {
        return None;
    }
    let mut covers = Vec::new();
    let mut data_bytes = 0u32;
    let mut data_events = Vec::new();
    let mut last = None;
    for r in &peer.sent {
        // Newly covered: ends within (prev, rel_ack]; the first ACK covers from 0.
        let newly = r.end <= rel_ack && (me.acked.is_none() || r.end > prev);
        if !newly {
            continue;
        }
        // The copy the receiver got: the latest delivered before this ACK
        // left; without one, the first copy (the self-check flags it).
        let ev = r
            .copies
            .iter()
            .filter(|(_, d)| d.is_some_and(|d| d <= ts))
            .max_by_key(|(_, d)| *d)
            .map_or(r.first(), |(e, _)| *e);
        last = Some(ev);
        let Event::Segment(ps) = &c.out[ev] else {
            continue;
        };
        let f = ps.seg.flags;
        let start_is_syn = f.syn() && r.start == 0;
        if start_is_syn {
            covers.push(Acked::Syn {
                event: ev,
                syn_ack: f.ack(),
            });
        }
        let fin_here = f.fin() && r.end == ps.rel_seq.wrapping_add(ps.seg.seq_space());
        let bytes = (r.end - r.start) - u32::from(start_is_syn) - u32::from(fin_here);
        if bytes > 0 {
            data_bytes += bytes;
            if !data_events.contains(&ev) {
                data_events.push(ev);
            }
        }
        if fin_here {
            if !data_events.is_empty() {
                covers.push(Acked::Data {
                    events: std::mem::take(&mut data_events),
                    bytes: std::mem::take(&mut data_bytes),
                });
            }
            covers.push(Acked::Fin { event: ev });
        }
    }
    if !data_events.is_empty() {
        covers.push(Acked::Data {
            events: data_events,
            bytes: data_bytes,
        });
    }
    Some(AckOf {
        last: last?,
        covers,
    })
}

/// The window of `s` as tshark computes it: scaled once both sides offered
/// a scale (the SYN's own is never scaled).
fn window(c: &Correlator, s: &SegCtx) -> u32 {
    let me = c.dirs.get(&(s.conn, s.from)).and_then(|d| d.wscale);
    let peer = c.dirs.get(&(s.conn, s.from.other())).and_then(|d| d.wscale);
    match (s.seg.flags.syn(), me, peer) {
        (false, Some(w), Some(_)) => u32::from(s.seg.win) << w.min(14),
        _ => u32::from(s.seg.win),
    }
}

/// tshark's analysis flags of segment `s`, from what its direction sent
/// before it (`fwd`) and what the other direction last advertised (`rev`).
pub(super) fn flow(c: &Correlator, s: &SegCtx, rel_ack: Option<u32>) -> Vec<Flow> {
    let Some(fwd) = c.dirs.get(&(s.conn, s.from)) else {
        return Vec::new();
    };
    let rev = c.dirs.get(&(s.conn, s.from.other()));
    let f = s.seg.flags;
    let control = f.syn() || f.fin() || f.rst();
    let seglen = s.seg.len;
    let win = window(c, s);
    let nextseq = fwd.max_end;
    // Nothing to compare with before the direction's first segment.
    if fwd.last_win_bytes.is_none() {
        return if win == 0 && !control {
            vec![Flow::ZeroWindow]
        } else {
            Vec::new()
        };
    }
    let same_numbers = s.rel == nextseq && rel_ack == fwd.last_ack;
    let rev_win = rev.and_then(|r| r.last_win_bytes);
    let rev_flags: &[Flow] = rev.map_or(&[], |r| &r.last_flow);
    let mut out = Vec::new();
    if seglen == 1 && s.rel == nextseq && rev_win == Some(0) {
        return vec![Flow::ZeroWindowProbe];
    }
    if win == 0 && !control {
        out.push(Flow::ZeroWindow);
    }
    // Fills the receiver's window to its edge: its last ACK plus its window.
    let edge = rev.and_then(|r| Some(r.last_ack?.wrapping_add(r.last_win_bytes?)));
    if seglen > 0 && !control && edge == Some(s.rel.wrapping_add(seglen)) {
        out.push(Flow::WindowFull);
    }
    if (seglen == 0 || seglen == 1) && s.rel.wrapping_add(1) == nextseq && !control {
        out.push(Flow::KeepAlive);
    }
    if seglen == 0 && win != 0 && Some(win) != fwd.last_win_bytes && same_numbers && !control {
        out.push(Flow::WindowUpdate);
    }
    let repeats = seglen == 0 && Some(win) == fwd.last_win_bytes && s.rel == nextseq && !control;
    if repeats && win != 0 && rel_ack == fwd.last_ack && rev_flags.contains(&Flow::KeepAlive) {
        out.push(Flow::KeepAliveAck);
        return out;
    }
    let acks_probe = rel_ack == fwd.last_ack || rel_ack == fwd.last_ack.map(|a| a.wrapping_add(1));
    if repeats && win == 0 && acks_probe && rev_flags.contains(&Flow::ZeroWindowProbe) {
        out.push(Flow::ZeroWindowProbeAck);
        return out;
    }
    if repeats && win != 0 && rel_ack == fwd.last_ack {
        out.push(Flow::DuplicateAck);
    }
    out
}

pub(super) fn ack_cause(c: &Correlator, s: &SegCtx, acked: Option<AckOf>, flow: &[Flow]) -> Cause {
    let d = &c.dirs[&(s.conn, s.from)];
    let probe = || {
        c.latest_segment(s.from.other(), s.conn).and_then(|(i, p)| {
            p.flow
                .iter()
                .any(|f| matches!(f, Flow::KeepAlive | Flow::ZeroWindowProbe))
                .then_some(i)
        })
    };
    let why = match acked {
        Some(a) => AckCause::Of(a),
        None if flow.contains(&Flow::KeepAlive) => AckCause::KeepAlive {
            window_probe: c
                .dirs
                .get(&(s.conn, s.from.other()))
                .and_then(|p| p.last_win_bytes)
                == Some(0),
        },
        // A changed window is news of its own (a read made room), even
        // when a probe was the peer's last segment.
        None if flow.contains(&Flow::WindowUpdate) => AckCause::WindowUpdate {
            from: d.last_win_bytes.unwrap_or_default(),
            to: window(c, s),
        },
        None if probe().is_some() => AckCause::ProbeAck {
            probe: probe().unwrap_or_default(),
        },
        None => match resent_copy(c, s) {
            Some(copy) => AckCause::Resent { copy },
            None if flow.contains(&Flow::DuplicateAck) => AckCause::Duplicate,
            None => AckCause::Nothing,
        },
    };
    Cause::new(Part::Ack, Origin::Ack(why))
}

/// The copy an ACK that acknowledges nothing new answers: the last segment
/// the ACK's sender received before it left, when that was a retransmission
/// of sequence space it had acknowledged already.
fn resent_copy(c: &Correlator, s: &SegCtx) -> Option<usize> {
    let rel_ack = s.rel_ack?;
    let (i, last) = c
        .out
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::Segment(x) if x.conn == s.conn && x.from == s.from.other() => {
                x.delivered().filter(|&d| d <= s.seg.ts).map(|d| (d, i, x))
            }
            _ => None,
        })
        .max_by_key(|(d, i, _)| (*d, *i))
        .map(|(_, i, x)| (i, x))?;
    let end = last.rel_seq.wrapping_add(last.seg.seq_space());
    let resent = last.retransmission_of.is_some() && last.seg.seq_space() > 0;
    (resent && end == rel_ack).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use super::*;
    use crate::model::fault::Tampered;
    use crate::testkit::{addr, Script, A, C, F, MS, P, S};

    fn ack_of(s: &SegEvent) -> AckCause {
        match &cause(s, Part::Ack).origin {
            Origin::Ack(a) | Origin::Released { ack: a, .. } => a.clone(),
            other => panic!("not an ACK cause: {other:?}"),
        }
    }

    fn seg_by_frame(t: &Timeline, frame: usize) -> (usize, &SegEvent) {
        t.segments()
            .find(|(_, s)| s.seg.frame == frame)
            .unwrap_or_else(|| panic!("no frame {frame}"))
    }

    #[test]
    fn the_handshakes_ack_covers_the_syn_ack() {
        let t = Script::new().handshake().run();
        let (sa, _) = nth_seg(&t, 1);
        assert_eq!(
            ack_of(nth_seg(&t, 2).1),
            AckCause::Of(AckOf {
                last: sa,
                covers: vec![Acked::Syn {
                    event: sa,
                    syn_ack: true
                }]
            })
        );
    }

    #[test]
    fn data_then_fin_are_covered_in_order() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(3, Side::Client, P | A, 100)
            .call_at(4, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(4, Side::Client, F | A, 0)
            .seg_at(5, Side::Server, A, 0)
            .run();
        let (d, _) = seg_by_frame(&t, 3);
        let (f, _) = seg_by_frame(&t, 4);
        assert_eq!(
            ack_of(seg_by_frame(&t, 5).1),
            AckCause::Of(AckOf {
                last: f,
                covers: vec![
                    Acked::Data {
                        events: vec![d],
                        bytes: 100
                    },
                    Acked::Fin { event: f }
                ]
            })
        );
    }

    #[test]
    fn nothing_new_is_a_window_update_or_a_duplicate() {
        let mut s = Script::new();
        s.handshake().seg_at(3, Side::Client, A, 0);
        let mut parts = s.parts();
        let t = correlate(parts.0.clone(), parts.1.clone(), None);
        assert_eq!(ack_of(seg_by_frame(&t, 3).1), AckCause::Duplicate);
        assert_eq!(seg_by_frame(&t, 3).1.flow, vec![Flow::DuplicateAck]);
        parts.1[3].win = 1024;
        let t = correlate(parts.0.clone(), parts.1.clone(), None);
        assert_eq!(
            ack_of(seg_by_frame(&t, 3).1),
            AckCause::WindowUpdate {
                from: 512,
                to: 1024
            }
        );
        assert_eq!(seg_by_frame(&t, 3).1.flow, vec![Flow::WindowUpdate]);
        // A zero window is no window update and no duplicate (tshark's rules).
        parts.1[3].win = 0;
        let t = correlate(parts.0, parts.1, None);
        assert_eq!(ack_of(seg_by_frame(&t, 3).1), AckCause::Nothing);
        assert_eq!(seg_by_frame(&t, 3).1.flow, vec![Flow::ZeroWindow]);
    }

    #[test]
    fn after_a_reordered_ack_the_next_is_compared_with_it() {
        // tshark compares a segment's numbers with its direction's last
        // segment, not with the highest ACK: after a reordered (lower) ACK,
        // the highest one again is neither a window update nor a duplicate.
        let mut s = Script::new();
        s.handshake()
            .call_at(3, Side::Server, CallKind::Write, "200", 200)
            .seg_at(3, Side::Server, A, 100)
            .seg_at(4, Side::Server, P | A, 100)
            .seg_at(5, Side::Client, A, 0);
        let mut parts = s.parts();
        parts.1[5].win = 1024;
        let mut late = parts.1[5].clone();
        late.frame = 6;
        late.ts += 1_000;
        late.ack = late.ack.wrapping_sub(100);
        late.win = 2048;
        let mut again = parts.1[5].clone();
        again.frame = 7;
        again.ts += 2_000;
        parts.1.push(late);
        parts.1.push(again.clone());
        let t = correlate(parts.0.clone(), parts.1.clone(), None);
        assert_eq!(seg_by_frame(&t, 6).1.flow, vec![]);
        assert_eq!(seg_by_frame(&t, 7).1.flow, vec![]);
        // Negative control: without the reordered ACK, frame 7 repeats
        // frame 5 with the same window: a duplicate ACK.
        parts.1.retain(|p| p.frame != 6);
        let t = correlate(parts.0, parts.1, None);
        assert_eq!(seg_by_frame(&t, 7).1.flow, vec![Flow::DuplicateAck]);
    }

    #[test]
    fn a_probe_of_a_zero_window_and_its_answer() {
        let mut s = Script::new();
        s.handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(3, Side::Client, P | A, 100)
            .seg_at(4, Side::Server, A, 0);
        let mut parts = s.parts();
        parts.1[4].win = 0; // the server's ACK closes the window
                            // Linux's probe: no data, one before the next byte to send.
        let mut probe = parts.1[3].clone();
        probe.frame = 5;
        probe.ts = 200 * MS;
        probe.seq = probe.seq + 100 - 1;
        probe.len = 0;
        probe.flags = crate::model::TcpFlags(A);
        let mut answer = parts.1[4].clone();
        answer.frame = 6;
        answer.ts = 200 * MS + 50_000;
        parts.1.push(probe);
        parts.1.push(answer);
        let t = correlate(parts.0, parts.1, None);
        let (p, ps) = seg_by_frame(&t, 5);
        assert_eq!(ack_of(ps), AckCause::KeepAlive { window_probe: true });
        assert_eq!(ps.flow, vec![Flow::KeepAlive]);
        let (_, ans) = seg_by_frame(&t, 6);
        assert_eq!(ack_of(ans), AckCause::ProbeAck { probe: p });
        assert_eq!(
            ans.flow,
            vec![Flow::ZeroWindow],
            "tshark: ZeroWindow, not Dup ACK"
        );
    }

    #[test]
    fn the_ack_of_a_dropped_fin_names_the_copy_that_arrived() {
        let (calls, segs) = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .resend_at(210, 3)
            .seg_at(211, Side::Server, A, 0)
            .parts();
        let extra = Extra {
            drops: vec![(Side::Client, 2 * MS)],
            ..Default::default()
        };
        let t = correlate_with(calls, segs, extra, Some(addr(S)));
        let (first, f) = seg_by_frame(&t, 3);
        assert!(matches!(f.tampered, Some(Tamper::Dropped { .. })));
        let (again, _) = seg_by_frame(&t, 4);
        let ack = cause(seg_by_frame(&t, 5).1, Part::Ack);
        assert_eq!(
            ack.answers(),
            Some(again),
            "not #{first}, which was dropped"
        );
    }

    #[test]
    fn the_ack_of_a_held_fin_waits_for_its_delivery() {
        let (calls, segs) = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .resend_at(210, 3)
            .seg_at(211, Side::Server, A, 0)
            .parts();
        // The first copy was held until 800 ms: the ACK at 211 ms answers the second.
        let held = vec![Tampered {
            src: addr(C),
            dst: addr(S),
            seq: segs[3].seq,
            flags: segs[3].flags,
            from: segs[3].ts,
            released: Some(800 * MS),
        }];
        let extra = Extra {
            held,
            ..Default::default()
        };
        let t = correlate_with(calls, segs, extra, Some(addr(S)));
        let (again, _) = seg_by_frame(&t, 4);
        assert_eq!(
            cause(seg_by_frame(&t, 5).1, Part::Ack).answers(),
            Some(again)
        );
    }

    #[test]
    fn the_fin_ack_carried_by_the_peers_next_data_is_noted() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .call_at(4, Side::Server, CallKind::Write, "200", 200)
            .seg_at(4, Side::Server, P | A, 200)
            .run();
        let (fin, _) = seg_by_frame(&t, 3);
        let (_, data) = seg_by_frame(&t, 4);
        assert_eq!(
            data.also_acks,
            Some(AckOf {
                last: fin,
                covers: vec![Acked::Fin { event: fin }]
            })
        );
    }
}
